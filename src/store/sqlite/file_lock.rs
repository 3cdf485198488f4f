//! One runtime per SQLite file, whatever name the file is opened by.
//!
//! The lock is an OS lock (`flock`) on the database file itself, so a symlink, a hard link
//! or a relative path from another folder meets the same lock as the name it was first
//! opened by. SQLite's own locks are POSIX record locks, which `flock` does not touch, but
//! closing *any* descriptor of a file drops every record lock the process holds on it: so
//! the descriptor taken here is never closed. It stays in a process-wide table keyed by
//! the file's identity (device and inode), unlocked when its runtime detaches and reused by
//! the next one.

use std::collections::hash_map::{self, HashMap};
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use crate::store::{Result, StoreError};

/// A held runtime lock; give it back with [`release`].
pub(crate) struct RuntimeLock {
    file: Arc<File>,
    key: FileKey,
}

type FileKey = (u64, u64);

struct Entry {
    file: Arc<File>,
    held: bool,
}

fn table() -> &'static Mutex<HashMap<FileKey, Entry>> {
    static TABLE: OnceLock<Mutex<HashMap<FileKey, Entry>>> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> (FileKey, u64) {
    use std::os::unix::fs::MetadataExt;
    ((meta.dev(), meta.ino()), meta.nlink())
}

#[cfg(not(unix))]
fn identity(_meta: &std::fs::Metadata) -> (FileKey, u64) {
    // Without inode numbers every file shares one key: at most one runtime per process,
    // and the OS lock still refuses a second process.
    ((0, 0), 1)
}

fn locked(path: &Path) -> StoreError {
    StoreError::Locked(format!(
        "another runtime is already running on {} (one runtime per SQLite file, whatever name it is opened by; other processes may use a Client)",
        path.display()
    ))
}

/// Refuses a database file that has more than one name: SQLite keeps its write-ahead log
/// and shared-memory index beside the name it was opened by, so two names of one file
/// would mean two logs for one database.
pub(crate) fn refuse_hard_links(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // created by the open that follows
    };
    let (_, names) = identity(&meta);
    if names > 1 {
        return Err(StoreError::Locked(format!(
            "the SQLite file {} has {names} names (hard links); SQLite keeps its write-ahead log beside the name, so a database must have exactly one: remove the other links or copy the file",
            path.display()
        )));
    }
    Ok(())
}

/// Takes the runtime lock of the database file at `path`, or fails with
/// [`StoreError::Locked`] when a runtime of this or another process holds it.
pub(crate) fn acquire(path: &Path) -> Result<RuntimeLock> {
    let cannot =
        |e: std::io::Error| StoreError::Config(format!("cannot open {}: {e}", path.display()));
    // The identity comes from `stat`, not from a new descriptor: closing a second
    // descriptor of a file SQLite has open would drop SQLite's record locks.
    let (key, names) = identity(&std::fs::metadata(path).map_err(cannot)?);
    if names > 1 {
        refuse_hard_links(path)?;
    }
    let mut table = table().lock().unwrap();
    let entry = match table.entry(key) {
        hash_map::Entry::Occupied(entry) => entry.into_mut(),
        hash_map::Entry::Vacant(slot) => slot.insert(Entry {
            file: Arc::new(OpenOptions::new().read(true).open(path).map_err(cannot)?),
            held: false,
        }),
    };
    if entry.held || entry.file.try_lock().is_err() {
        return Err(locked(path));
    }
    entry.held = true;
    Ok(RuntimeLock {
        file: entry.file.clone(),
        key,
    })
}

/// Gives a runtime lock back; the descriptor stays open (see the module's comment).
pub(crate) fn release(lock: RuntimeLock) {
    let _ = lock.file.unlock();
    if let Some(entry) = table().lock().unwrap().get_mut(&lock.key) {
        entry.held = false;
    }
}
