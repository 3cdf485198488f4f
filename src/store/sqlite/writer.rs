//! The writer: one thread owns the database connection and runs every operation, many
//! callers' at a time, in one transaction (a savepoint each).
//!
//! Operations are synchronous closures on the raw SQLite handle, so a batch costs one
//! wake-up of this thread rather than a trip to another thread per statement. sqlx opens
//! the connection and runs the migrations; the writer then takes its handle for good
//! (`lock_handle`) and hands it back when the provider goes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use super::SqliteProvider;
use crate::store::{Result, StoreError};

/// The connection as the operations see it.
pub(super) type Db = rusqlite::Connection;

/// Most operations one transaction carries.
const MAX_BATCH: usize = 256;

/// A queued operation: runs inside the writer's transaction, answers after the commit.
pub(super) trait WriteOp: Send {
    /// Reads need no savepoint: there is nothing of theirs to roll back.
    fn read_only(&self) -> bool;
    /// Runs the operation; whether it succeeded.
    fn run(&mut self, db: &Db) -> bool;
    fn finish(self: Box<Self>, commit: std::result::Result<(), String>);
}

struct Op<T, F> {
    read_only: bool,
    f: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> WriteOp for Op<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Db) -> Result<T> + Send + 'static,
{
    fn read_only(&self) -> bool {
        self.read_only
    }

    fn run(&mut self, db: &Db) -> bool {
        let f = self.f.take().expect("an op runs once");
        let result = f(db);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: std::result::Result<(), String>) {
        let answer = match (self.result, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (_, Err(e)) => Err(StoreError::Config(format!("commit failed: {e}"))),
            (None, Ok(())) => Err(StoreError::Closed),
        };
        let _ = self.reply.send(answer);
    }
}

impl SqliteProvider {
    /// Runs `f` on the writer's connection inside a batched transaction.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        self.queue(false, f).await
    }

    /// Like [`Self::write`] for an operation that only reads.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        self.queue(true, f).await
    }

    async fn queue<T, F>(&self, read_only: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let op: Box<dyn WriteOp> = Box::new(Op {
            read_only,
            f: Some(f),
            result: None,
            reply,
        });
        self.ops.send(op).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// How the writer batches: transactions, and the operations they carried.
#[derive(Default)]
pub(super) struct BatchCounters {
    pub transactions: AtomicU64,
    pub operations: AtomicU64,
}

/// Starts the writer thread on `conn` (and, for a file, the checkpointer beside it); it
/// ends once every sender of `rx` is gone.
pub(super) fn spawn_writer(
    conn: SqliteConnection,
    rx: mpsc::UnboundedReceiver<Box<dyn WriteOp>>,
    batches: Arc<BatchCounters>,
    file: Option<PathBuf>,
) -> Result<()> {
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("reprise-sqlite".into())
        .spawn(move || {
            let checkpointer = file.and_then(|path| Checkpointer::start(&path));
            writer(runtime, conn, rx, batches, checkpointer);
        })
        .map_err(|e| StoreError::Open(format!("cannot start the SQLite writer thread: {e}")))?;
    Ok(())
}

/// How often the checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// The writer checkpoints by itself only if the WAL grows past this many pages (the
/// checkpointer is behind): 20,000 pages of 4 KiB.
const WRITER_CHECKPOINT_PAGES: u32 = 20_000;

/// A thread with a connection of its own that checkpoints the WAL (`PASSIVE`: it never
/// blocks the writer), so the writer does not stop a commit for it. SQLite's own
/// checkpoint runs inside the commit that crosses 1,000 pages and syncs the database file:
/// a few milliseconds on the round trip that pays it.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Option<Self> {
        let db = match rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ) {
            Ok(db) => db,
            Err(e) => {
                tracing::warn!(error = %e, "no checkpointer connection; the writer checkpoints by itself");
                return None;
            }
        };
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("reprise-sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                    if let Err(e) = db.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                        tracing::debug!(error = %e, "checkpoint failed; the next one retries");
                    }
                }
            })
            .ok()?;
        Some(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn writer(
    runtime: tokio::runtime::Handle,
    mut conn: SqliteConnection,
    mut rx: mpsc::UnboundedReceiver<Box<dyn WriteOp>>,
    batches: Arc<BatchCounters>,
    checkpointer: Option<Checkpointer>,
) {
    // sqlx's connection thread stays parked on the handle's lock while the writer holds it.
    let mut locked = match runtime.block_on(conn.lock_handle()) {
        Ok(locked) => locked,
        Err(e) => return refuse_all(&mut rx, &e.to_string()),
    };
    let handle = locked.as_raw_handle();
    // SAFETY: the handle stays open while `conn` lives, and `locked` keeps sqlx off it;
    // `db` does not own it and is dropped first.
    let db = match unsafe { rusqlite::Connection::from_handle(handle.as_ptr()) } {
        Ok(db) => db,
        Err(e) => return refuse_all(&mut rx, &e.to_string()),
    };
    db.set_prepared_statement_cache_capacity(256);
    if checkpointer.is_some() {
        let _ = db.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}"
        ));
    }
    while let Some(first) = rx.blocking_recv() {
        let mut ops = vec![first];
        while ops.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        batches.transactions.fetch_add(1, Ordering::Relaxed);
        batches
            .operations
            .fetch_add(ops.len() as u64, Ordering::Relaxed);
        run_batch(&db, ops);
    }
    // Statements are finalized before the handle goes back to sqlx, which closes it; the
    // checkpointer closes first, so the writer's connection is the last one and its close
    // checkpoints the rest and removes the WAL.
    drop(db);
    drop(checkpointer);
    drop(locked);
    drop(conn);
}

fn refuse_all(rx: &mut mpsc::UnboundedReceiver<Box<dyn WriteOp>>, error: &str) {
    while let Some(op) = rx.blocking_recv() {
        op.finish(Err(format!("the SQLite connection is unusable: {error}")));
    }
}

/// One transaction: a savepoint per write, so one that fails never undoes the others; a
/// lone operation that fails rolls the transaction back.
fn run_batch(db: &Db, mut ops: Vec<Box<dyn WriteOp>>) {
    if let Err(e) = db.execute_batch("BEGIN IMMEDIATE") {
        for op in ops {
            op.finish(Err(e.to_string()));
        }
        return;
    }
    let commit = if let [op] = ops.as_mut_slice() {
        if op.run(db) {
            db.execute_batch("COMMIT")
        } else {
            db.execute_batch("ROLLBACK")
        }
    } else {
        for op in ops.iter_mut() {
            if op.read_only() {
                op.run(db);
                continue;
            }
            let _ = db.execute_batch("SAVEPOINT op");
            let undo = if op.run(db) {
                "RELEASE op"
            } else {
                "ROLLBACK TO op; RELEASE op"
            };
            let _ = db.execute_batch(undo);
        }
        db.execute_batch("COMMIT")
    };
    let commit = commit.map_err(|e| {
        let _ = db.execute_batch("ROLLBACK");
        e.to_string()
    });
    for op in ops {
        op.finish(commit.clone());
    }
}
