//! The writer: one task owns the single write connection and runs every operation, many
//! callers' at a time, in one transaction (a savepoint each).

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
    fn run<'c>(&'c mut self, conn: &'c mut SqliteConnection) -> BoxFuture<'c, bool>;
    fn finish(self: Box<Self>, commit: std::result::Result<(), String>);
}

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
        if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
            for op in ops {
                op.finish(Err(e.to_string()));
            }
            continue;
        }
        let single = ops.len() == 1;
        let mut lone_failed = false;
        // Each write in a batch runs in a savepoint, so one failed operation never undoes
        // the others. The statements between two writes are merged into one round trip
        // (`RELEASE op; SAVEPOINT op`): sqlx's per-statement cost dominates here.
        let mut open_savepoint = false;
        for op in ops.iter_mut() {
            if single {
                lone_failed = !op.run(&mut conn).await;
                continue;
            }
            if op.read_only() {
                op.run(&mut conn).await;
                continue;
            }
            let begin = if open_savepoint {
                "RELEASE op; SAVEPOINT op"
            } else {
                "SAVEPOINT op"
            };
            let _ = conn.execute(sqlx::raw_sql(begin)).await;
            open_savepoint = true;
            if !op.run(&mut conn).await {
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
}
