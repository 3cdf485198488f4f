//! The writer: one task owns the single write connection and runs every operation, many
//! callers' at a time, in one transaction (a savepoint each).
//!
//! The hot operations (claims, turns, activity results, starts) are synchronous: they run
//! on the raw SQLite handle under one lock per batch, so a batch costs one trip to sqlx's
//! connection thread instead of one per statement. The others run through sqlx.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::sqlite::SqliteConnection;
use sqlx::Executor;
use tokio::sync::{mpsc, oneshot};

use super::SqliteProvider;
use crate::store::{Result, StoreError};

pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Most operations one transaction carries.
const MAX_BATCH: usize = 256;

/// A queued write: runs inside the writer's transaction, answers after the commit.
pub(super) trait WriteOp: Send {
    /// Reads need no savepoint: there is nothing of theirs to roll back.
    fn read_only(&self) -> bool;
    /// Runs on the raw connection ([`Self::run_sync`]) rather than through sqlx.
    fn is_sync(&self) -> bool {
        false
    }
    fn run<'c>(&'c mut self, conn: &'c mut SqliteConnection) -> BoxFuture<'c, bool>;
    fn run_sync(&mut self, _db: &Db) -> bool {
        unreachable!("an operation that runs through sqlx")
    }
    fn finish(self: Box<Self>, commit: std::result::Result<(), String>);
}

/// The writer connection's raw handle, for the synchronous operations.
pub(super) type Db = rusqlite::Connection;

struct TypedOp<T, F> {
    read_only: bool,
    f: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> WriteOp for TypedOp<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
{
    fn read_only(&self) -> bool {
        self.read_only
    }

    fn run<'c>(&'c mut self, conn: &'c mut SqliteConnection) -> BoxFuture<'c, bool> {
        let f = self.f.take().expect("an op runs once");
        Box::pin(async move {
            let result = f(conn).await;
            let ok = result.is_ok();
            self.result = Some(result);
            ok
        })
    }

    fn finish(self: Box<Self>, commit: std::result::Result<(), String>) {
        let _ = self.reply.send(answer(self.result, commit));
    }
}

struct SyncOp<T, F> {
    f: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> WriteOp for SyncOp<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Db) -> Result<T> + Send + 'static,
{
    fn read_only(&self) -> bool {
        false
    }

    fn is_sync(&self) -> bool {
        true
    }

    fn run<'c>(&'c mut self, _conn: &'c mut SqliteConnection) -> BoxFuture<'c, bool> {
        unreachable!("a synchronous operation")
    }

    fn run_sync(&mut self, db: &Db) -> bool {
        let f = self.f.take().expect("an op runs once");
        let result = f(db);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: std::result::Result<(), String>) {
        let _ = self.reply.send(answer(self.result, commit));
    }
}

/// What a caller gets once the batch is over: its result if the batch committed.
fn answer<T>(result: Option<Result<T>>, commit: std::result::Result<(), String>) -> Result<T> {
    match (result, commit) {
        (Some(Err(e)), _) => Err(e),
        (Some(Ok(v)), Ok(())) => Ok(v),
        (_, Err(e)) => Err(StoreError::Config(format!("commit failed: {e}"))),
        (None, Ok(())) => Err(StoreError::Closed),
    }
}

impl SqliteProvider {
    /// Runs `f` on the writer's raw connection inside a batched transaction.
    pub(super) async fn write_sync<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let op: Box<dyn WriteOp> = Box::new(SyncOp {
            f: Some(f),
            result: None,
            reply,
        });
        self.ops.send(op).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on the writer connection inside a batched transaction.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.queue(false, f).await
    }

    /// Like [`Self::write`] for an operation that only reads.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.queue(true, f).await
    }

    async fn queue<T, F>(&self, read_only: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let op: Box<dyn WriteOp> = Box::new(TypedOp {
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

pub(super) async fn writer(
    mut conn: SqliteConnection,
    mut rx: mpsc::UnboundedReceiver<Box<dyn WriteOp>>,
    batches: Arc<BatchCounters>,
) {
    let db = match raw_connection(&mut conn).await {
        Ok(db) => db,
        Err(e) => {
            while let Some(op) = rx.recv().await {
                op.finish(Err(format!("the SQLite connection is unusable: {e}")));
            }
            return;
        }
    };
    while let Some(first) = rx.recv().await {
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
        // Operations in one batch come from callers waiting at once, none of them answered
        // yet: running the synchronous ones in a transaction before the others' is one
        // order they could have run in.
        let (sync_ops, async_ops): (Vec<_>, Vec<_>) = ops.into_iter().partition(|op| op.is_sync());
        if !sync_ops.is_empty() {
            match conn.lock_handle().await {
                Ok(_locked) => run_batch_sync(&db, sync_ops),
                Err(e) => {
                    for op in sync_ops {
                        op.finish(Err(e.to_string()));
                    }
                }
            }
        }
        if !async_ops.is_empty() {
            run_batch(&mut conn, async_ops).await;
        }
    }
    // The raw connection's statements are finalized while the handle is locked.
    let locked = conn.lock_handle().await;
    drop(db);
    drop(locked);
}

/// The writer connection's handle as a rusqlite connection that does not own it: it is
/// only used while [`SqliteConnection::lock_handle`] holds sqlx's worker off it, and is
/// dropped before the sqlx connection closes.
async fn raw_connection(conn: &mut SqliteConnection) -> Result<Db> {
    let mut locked = conn.lock_handle().await?;
    let handle = locked.as_raw_handle();
    // SAFETY: the handle is open for as long as `conn`, which outlives `db` (see `writer`).
    let db = unsafe { rusqlite::Connection::from_handle(handle.as_ptr()) }?;
    db.set_prepared_statement_cache_capacity(256);
    Ok(db)
}

/// One transaction of synchronous operations: a savepoint each, so one that fails never
/// undoes the others; a lone operation that fails rolls the transaction back.
fn run_batch_sync(db: &Db, mut ops: Vec<Box<dyn WriteOp>>) {
    if let Err(e) = db.execute_batch("BEGIN IMMEDIATE") {
        for op in ops {
            op.finish(Err(e.to_string()));
        }
        return;
    }
    let commit = if let [op] = ops.as_mut_slice() {
        if op.run_sync(db) {
            db.execute_batch("COMMIT")
        } else {
            db.execute_batch("ROLLBACK")
        }
    } else {
        for op in ops.iter_mut() {
            let _ = db.execute_batch("SAVEPOINT op");
            if op.run_sync(db) {
                let _ = db.execute_batch("RELEASE op");
            } else {
                let _ = db.execute_batch("ROLLBACK TO op; RELEASE op");
            }
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

/// One transaction of operations that run through sqlx.
async fn run_batch(conn: &mut SqliteConnection, mut ops: Vec<Box<dyn WriteOp>>) {
    if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
        for op in ops {
            op.finish(Err(e.to_string()));
        }
        return;
    }
    let single = ops.len() == 1;
    let mut lone_failed = false;
    // Each write in a batch runs in a savepoint, so one failed operation never undoes
    // the others. The statements between two writes are merged into one round trip
    // (`RELEASE op; SAVEPOINT op`): sqlx's per-statement cost dominates here.
    let mut open_savepoint = false;
    for op in ops.iter_mut() {
        if single {
            lone_failed = !op.run(&mut *conn).await;
            continue;
        }
        if op.read_only() {
            op.run(&mut *conn).await;
            continue;
        }
        let begin = if open_savepoint {
            "RELEASE op; SAVEPOINT op"
        } else {
            "SAVEPOINT op"
        };
        let _ = conn.execute(sqlx::raw_sql(begin)).await;
        open_savepoint = true;
        if !op.run(&mut *conn).await {
            let _ = conn
                .execute(sqlx::raw_sql("ROLLBACK TO op; RELEASE op"))
                .await;
            open_savepoint = false;
        }
    }
    let commit = if lone_failed {
        conn.execute("ROLLBACK").await.map(|_| ())
    } else if open_savepoint {
        conn.execute(sqlx::raw_sql("RELEASE op; COMMIT"))
            .await
            .map(|_| ())
    } else {
        conn.execute("COMMIT").await.map(|_| ())
    };
    let commit = match commit {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = conn.execute("ROLLBACK").await;
            Err(e.to_string())
        }
    };
    for op in ops {
        op.finish(commit.clone());
    }
}
