//! The SQLite provider: one writer connection owned by a task that batches many callers'
//! operations into one transaction (a savepoint each), WAL, one runtime per file under an
//! OS file lock.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Executor, QueryBuilder, Row, Sqlite};
use tokio::sync::{mpsc, oneshot};

use super::{
    directly_claimed, executions_to_prune, ActivityAttempt, ActivityItem, ActivityResult, Clock,
    DeleteFilter, Deletion, DirectClaim, ExecutionInfo, InstanceFilter, InstanceInfo, InstancePage,
    InstanceUpdate, Lease, OrchestrationClaim, OrchestrationItem, PageCursor, Provider,
    QueueDepths, Result, StoreError, SystemMetrics, TurnCommit, Wakers,
};
use crate::engine::{
    event_data, event_from_row, message_data, message_from_row, ActivityRequest, HistoryRow,
    Message, QueuedMessage, RewindPlan, StartRequest,
};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Most operations one transaction carries.
const MAX_BATCH: usize = 256;

/// How long an instance with a row this version cannot read is kept out of claims.
const UNREADABLE_RETRY_MS: i64 = 60_000;

/// A queued write: runs inside the writer's transaction, answers after the commit.
trait WriteOp: Send {
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

/// Options for [`SqliteProvider::open`].
#[derive(Debug, Clone, Default)]
pub struct SqliteOptions {
    /// `synchronous=FULL` (fsync every commit) instead of `NORMAL`.
    pub synchronous_full: bool,
}

pub struct SqliteProvider {
    ops: mpsc::UnboundedSender<Box<dyn WriteOp>>,
    batches: Arc<BatchCounters>,
    wakers: Arc<Wakers>,
    path: Option<PathBuf>,
    runtime_lock: Mutex<Option<File>>,
    clock: Arc<Clock>,
    /// A runtime runs on this provider object: it is the file's only runtime, so every
    /// commit that changes an instance happens here and signals the wakers.
    local_runtime: std::sync::atomic::AtomicBool,
}

/// `sqlite:path`, `sqlite://path` or a bare path; query parameters are ignored.
pub fn parse_sqlite_url(url: &str) -> Result<PathBuf> {
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(StoreError::Config("the SQLite path is empty".into()));
    }
    let rest = trimmed
        .strip_prefix("sqlite://")
        .or_else(|| trimmed.strip_prefix("sqlite:"))
        .unwrap_or(trimmed);
    if trimmed.contains("://") && !trimmed.starts_with("sqlite://") {
        return Err(StoreError::Config(format!(
            "'{url}' is not a SQLite URL (expected sqlite:path or a file path)"
        )));
    }
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Config(format!(
            "'{url}' names no file (use SqliteProvider.inMemory() for a memory database)"
        )));
    }
    Ok(PathBuf::from(path))
}

impl SqliteProvider {
    pub async fn open(url: &str, options: SqliteOptions) -> Result<Arc<Self>> {
        let path = parse_sqlite_url(url)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Config(format!("cannot create folder {}: {e}", dir.display()))
            })?;
        }
        let connect = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.synchronous_full {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(Duration::from_secs(10))
            .disable_statement_logging();
        Self::start(connect, Some(path)).await
    }

    pub async fn in_memory() -> Result<Arc<Self>> {
        let connect =
            SqliteConnectOptions::from_str("sqlite::memory:")?.disable_statement_logging();
        Self::start(connect, None).await
    }

    async fn start(connect: SqliteConnectOptions, path: Option<PathBuf>) -> Result<Arc<Self>> {
        let mut conn = connect.connect().await?;
        sqlx::migrate!("./migrations/sqlite")
            .run_direct(&mut conn)
            .await?;
        let (ops, rx) = mpsc::unbounded_channel();
        let batches = Arc::new(BatchCounters::default());
        tokio::spawn(writer(conn, rx, batches.clone()));
        Ok(Arc::new(SqliteProvider {
            ops,
            batches,
            wakers: Arc::new(Wakers::default()),
            path,
            runtime_lock: Mutex::new(None),
            clock: Arc::new(Clock::default()),
            local_runtime: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Runs `f` on the writer connection inside a batched transaction.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.queue(false, f).await
    }

    /// Like [`Self::write`] for an operation that only reads.
    async fn read<T, F>(&self, f: F) -> Result<T>
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

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// How the writer batches: transactions, and the operations they carried.
#[derive(Default)]
struct BatchCounters {
    transactions: AtomicU64,
    operations: AtomicU64,
}

async fn writer(
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

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn history_row(row: &SqliteRow) -> Result<HistoryRow> {
    Ok(HistoryRow {
        event_id: row.get::<i64, _>("event_id") as u64,
        ts: row.get("ts"),
        event: event_from_row(row.get("kind"), row.get("data")).map_err(corrupt)?,
    })
}

fn instance_info(row: &SqliteRow) -> InstanceInfo {
    InstanceInfo {
        instance_id: row.get("instance_id"),
        name: row.get("name"),
        version: row.get("version"),
        status: row.get("status"),
        execution_id: row.get::<i64, _>("execution_id") as u64,
        input: row.get("input"),
        output: row.get("output"),
        error: row.get("error"),
        error_code: row.get("error_code"),
        custom_status: row.get("custom_status"),
        custom_status_version: row.get("custom_status_version"),
        parent_instance_id: row.get("parent_instance_id"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

fn activity_item(row: &SqliteRow) -> Result<ActivityItem> {
    let retry: Option<String> = row.get("retry");
    Ok(ActivityItem {
        seq: row.get("seq"),
        generation: row.get("generation"),
        instance_id: row.get("instance_id"),
        execution_id: row.get::<i64, _>("execution_id") as u64,
        task: row.get::<i64, _>("task") as u32,
        name: row.get("name"),
        input: row.get("input"),
        attempt: row.get::<i64, _>("attempt") as u32,
        retry: retry
            .map(|r| serde_json::from_str(&r))
            .transpose()
            .map_err(corrupt)?,
        deliveries: row.get::<i64, _>("deliveries") as u32,
        created_at: row.get("created_at"),
    })
}

/// Columns of an orchestrator-queue row for a message.
fn message_columns(message: &Message) -> (Option<i64>, Option<i64>) {
    match message {
        Message::ActivityCompleted {
            execution_id, task, ..
        }
        | Message::ActivityFailed {
            execution_id, task, ..
        }
        | Message::TimerFired { execution_id, task }
        | Message::ChildCompleted {
            execution_id, task, ..
        }
        | Message::ChildFailed {
            execution_id, task, ..
        } => (Some(*execution_id as i64), Some(*task as i64)),
        _ => (None, None),
    }
}

struct QueueInsert {
    instance_id: String,
    message: Message,
    visible_at: i64,
}

async fn insert_messages(conn: &mut SqliteConnection, rows: &[QueueInsert]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO orchestrator_queue (instance_id, kind, execution_id, task, visible_at, data) ",
    );
    qb.push_values(rows, |mut b, r| {
        let (exec, task) = message_columns(&r.message);
        b.push_bind(r.instance_id.clone())
            .push_bind(r.message.kind())
            .push_bind(exec)
            .push_bind(task)
            .push_bind(r.visible_at)
            .push_bind(message_data(&r.message));
    });
    qb.build().execute(&mut *conn).await?;
    Ok(())
}

/// Inserts an instance and its start message unless the id exists.
async fn create_instance_in(
    conn: &mut SqliteConnection,
    start: &StartRequest,
    now: i64,
) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO instances (instance_id, name, version, status, input, parent_instance_id, created_at, updated_at)
         VALUES (?1, ?2, ?3, 'Running', ?4, ?5, ?6, ?6) ON CONFLICT (instance_id) DO NOTHING",
    )
    .bind(&start.instance_id)
    .bind(&start.name)
    .bind(&start.version)
    .bind(start.input.get())
    .bind(start.parent.as_ref().map(|p| p.instance_id.clone()))
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        let message = Message::Start {
            name: start.name.clone(),
            version: start.version.clone(),
            input: start.input.clone(),
            parent: start.parent.clone(),
            events: vec![],
            custom_status: None,
        };
        insert_messages(
            conn,
            &[QueueInsert {
                instance_id: start.instance_id.clone(),
                message,
                visible_at: now,
            }],
        )
        .await?;
    }
    Ok(inserted)
}

fn in_list(qb: &mut QueryBuilder<Sqlite>, values: impl IntoIterator<Item = i64>) {
    let mut sep = qb.separated(", ");
    for v in values {
        sep.push_bind(v);
    }
    sep.push_unseparated(")");
}

/// Inserts worker rows; with `claim`, the first `claim.count` are written already leased to
/// `claim.owner` (generation 1, first delivery). Returns `(task, seq)` of the claimed rows.
async fn insert_activities(
    conn: &mut SqliteConnection,
    instance_id: &str,
    execution_id: i64,
    now: i64,
    activities: &[ActivityRequest],
    claim: Option<(&DirectClaim, i64)>,
) -> Result<Vec<(u32, i64)>> {
    if activities.is_empty() {
        return Ok(Vec::new());
    }
    let claimed = claim.map_or(0, |(d, _)| d.count);
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO worker_queue (instance_id, execution_id, task, name, input, retry, visible_at,
            created_at, lock_owner, lock_until, generation, deliveries) ",
    );
    qb.push_values(activities.iter().enumerate(), |mut b, (i, a)| {
        let lease = claim.filter(|_| i < claimed);
        b.push_bind(instance_id)
            .push_bind(execution_id)
            .push_bind(a.task as i64)
            .push_bind(&a.name)
            .push_bind(a.input.get())
            .push_bind(
                a.retry
                    .as_ref()
                    .map(|r| serde_json::to_string(r).unwrap_or_default()),
            )
            .push_bind(now)
            .push_bind(now)
            .push_bind(lease.map(|(d, _)| d.owner.clone()))
            // From the clock at commit, not the turn's claim time: the turn may have run long.
            .push_bind(lease.map_or(0, |(d, commit_now)| commit_now + d.lease_ms))
            .push_bind(lease.is_some() as i64)
            .push_bind(lease.is_some() as i64);
    });
    if claimed == 0 {
        qb.build().execute(&mut *conn).await?;
        return Ok(Vec::new());
    }
    qb.push(" RETURNING task, seq, lock_owner IS NOT NULL AS leased");
    let rows = qb.build().fetch_all(&mut *conn).await?;
    Ok(rows
        .iter()
        .filter(|r| r.get::<bool, _>("leased"))
        .map(|r| (r.get::<i64, _>("task") as u32, r.get::<i64, _>("seq")))
        .collect())
}

/// Applies a rewind plan (see [`Provider::rewind_instance`]).
async fn rewind_in(
    conn: &mut SqliteConnection,
    instance_id: &str,
    plan: &RewindPlan,
    updated_at: i64,
    now: i64,
) -> Result<bool> {
    let exec = plan.execution_id as i64;
    let (status_set, status_value) = match &plan.custom_status {
        Some(value) => (1i64, value.as_ref().map(|v| v.get().to_owned())),
        None => (0, None),
    };
    let updated = sqlx::query(
        "UPDATE instances SET status = 'Running', output = NULL, error = NULL, error_code = NULL,
            updated_at = ?1, lock_owner = NULL, lock_until = 0, generation = generation + 1,
            custom_status = CASE WHEN ?2 THEN ?3 ELSE custom_status END,
            custom_status_version = custom_status_version + ?2
         WHERE instance_id = ?4 AND status = 'Failed' AND execution_id = ?5 AND updated_at = ?7
           AND (SELECT MAX(event_id) FROM history WHERE instance_id = ?4 AND execution_id = ?5) = ?6",
    )
    .bind(now)
    .bind(status_set)
    .bind(status_value)
    .bind(instance_id)
    .bind(exec)
    .bind(plan.last_event_id as i64)
    .bind(updated_at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    sqlx::query(
        "DELETE FROM history WHERE instance_id = ?1 AND execution_id = ?2 AND event_id >= ?3",
    )
    .bind(instance_id)
    .bind(exec)
    .bind(plan.truncate_from as i64)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM orchestrator_queue WHERE instance_id = ?1 AND execution_id = ?2
           AND kind IN ('ChildCompleted', 'ChildFailed')",
    )
    .bind(instance_id)
    .bind(exec)
    .execute(&mut *conn)
    .await?;
    if !plan.open_children.is_empty() {
        let mut qb = QueryBuilder::new(
            "DELETE FROM orchestrator_queue WHERE kind = 'Cancel' AND instance_id IN (",
        );
        let mut sep = qb.separated(", ");
        for (_, child) in &plan.open_children {
            sep.push_bind(child.clone());
        }
        sep.push_unseparated(")");
        qb.build().execute(&mut *conn).await?;
    }
    insert_activities(conn, instance_id, exec, now, &plan.activities, None).await?;
    let rows: Vec<QueueInsert> = plan
        .messages
        .iter()
        .map(|(message, visible_at)| QueueInsert {
            instance_id: instance_id.to_owned(),
            message: message.clone(),
            visible_at: visible_at.unwrap_or(now),
        })
        .collect();
    insert_messages(conn, &rows).await?;
    Ok(true)
}

/// Claims up to `max` instances with visible messages and no live lease (only among `only`
/// when given): their messages (deliveries + 1) and current histories.
async fn claim_in(
    conn: &mut SqliteConnection,
    owner: &str,
    lease_ms: i64,
    max: usize,
    only: Option<&[String]>,
    now: i64,
) -> Result<Vec<OrchestrationItem>> {
    if max == 0 || only.is_some_and(|ids| ids.is_empty()) {
        return Ok(Vec::new());
    }
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("UPDATE instances SET lock_owner = ");
    qb.push_bind(owner.to_owned())
        .push(", lock_until = ")
        .push_bind(now + lease_ms)
        .push(
            ", generation = generation + 1 WHERE instance_id IN (
                    SELECT DISTINCT q.instance_id FROM orchestrator_queue q
                    JOIN instances i ON i.instance_id = q.instance_id
                    WHERE q.visible_at <= ",
        )
        .push_bind(now)
        .push(" AND i.lock_until <= ")
        .push_bind(now);
    if let Some(ids) = only {
        qb.push(" AND q.instance_id IN (");
        let mut sep = qb.separated(", ");
        for id in ids {
            sep.push_bind(id.clone());
        }
        sep.push_unseparated(")");
    }
    qb.push(" LIMIT ")
        .push_bind(max as i64)
        .push(") RETURNING instance_id, execution_id, generation, name, created_at");
    let claimed = qb.build().fetch_all(&mut *conn).await?;
    if claimed.is_empty() {
        return Ok(vec![]);
    }
    // One statement for every claimed instance's messages, one for histories.
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "UPDATE orchestrator_queue SET deliveries = deliveries + 1 WHERE visible_at <= ",
    );
    qb.push_bind(now).push(" AND instance_id IN (");
    let mut sep = qb.separated(", ");
    for row in &claimed {
        sep.push_bind(row.get::<String, _>("instance_id"));
    }
    qb.push(") RETURNING instance_id, seq, kind, data, deliveries");
    let mut messages: HashMap<String, Vec<SqliteRow>> = HashMap::new();
    for r in qb.build().fetch_all(&mut *conn).await? {
        messages.entry(r.get("instance_id")).or_default().push(r);
    }
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT instance_id, event_id, ts, kind, data FROM history WHERE (instance_id, execution_id) IN (VALUES ",
        );
    let mut sep = qb.separated(", ");
    for row in &claimed {
        sep.push("(")
            .push_bind_unseparated(row.get::<String, _>("instance_id"))
            .push_unseparated(", ")
            .push_bind_unseparated(row.get::<i64, _>("execution_id"))
            .push_unseparated(")");
    }
    qb.push(") ORDER BY instance_id, event_id");
    let mut histories: HashMap<String, Vec<SqliteRow>> = HashMap::new();
    for r in qb.build().fetch_all(&mut *conn).await? {
        histories.entry(r.get("instance_id")).or_default().push(r);
    }
    let mut items = Vec::with_capacity(claimed.len());
    let mut unreadable = Vec::new();
    for row in claimed {
        let instance_id: String = row.get("instance_id");
        let parsed = (|| -> Result<(Vec<QueuedMessage>, Vec<HistoryRow>)> {
            let mut queued = messages
                .remove(&instance_id)
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    Ok(QueuedMessage {
                        seq: r.get("seq"),
                        deliveries: r.get::<i64, _>("deliveries") as u32,
                        message: message_from_row(r.get("kind"), r.get("data")).map_err(corrupt)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            queued.sort_by_key(|m| m.seq);
            let history = histories
                .remove(&instance_id)
                .unwrap_or_default()
                .iter()
                .map(history_row)
                .collect::<Result<Vec<_>>>()?;
            Ok((queued, history))
        })();
        match parsed {
            Ok((messages, history)) => items.push(OrchestrationItem {
                execution_id: row.get::<i64, _>("execution_id") as u64,
                generation: row.get("generation"),
                name: row.get("name"),
                created_at: row.get("created_at"),
                instance_id,
                history,
                messages,
                now,
            }),
            Err(e) => {
                // One unreadable row must not stall every other instance.
                tracing::warn!(%instance_id, error = %e, "instance has an unreadable row; set aside for a minute");
                unreadable.push(instance_id);
            }
        }
    }
    if !unreadable.is_empty() {
        let mut qb = QueryBuilder::new("UPDATE instances SET lock_until = ");
        qb.push_bind(now + UNREADABLE_RETRY_MS)
            .push(" WHERE instance_id IN (");
        let mut sep = qb.separated(", ");
        for id in unreadable {
            sep.push_bind(id);
        }
        sep.push_unseparated(")");
        qb.build().execute(&mut *conn).await?;
    }
    Ok(items)
}

/// `clock_now` is the store's clock as the transaction runs (direct claims lease from it).
async fn commit_turn_in(
    conn: &mut SqliteConnection,
    c: TurnCommit,
    clock_now: i64,
) -> Result<Vec<ActivityItem>> {
    let out = &c.outcome;
    let InstanceUpdate {
        status,
        output,
        error,
        error_code,
        continued,
        name,
        version,
    } = InstanceUpdate::of(out);
    // Fencing first: nothing is written unless this generation still holds the instance.
    let fenced = sqlx::query(
        "UPDATE instances SET lock_owner = NULL, lock_until = 0, updated_at = ?1,
            name = COALESCE(?2, name), version = COALESCE(?3, version),
            status = COALESCE(?4, status), output = COALESCE(?5, output),
            error = COALESCE(?6, error), error_code = COALESCE(?7, error_code),
            custom_status = CASE WHEN ?8 IS NULL THEN custom_status ELSE ?8 END,
            custom_status_version = custom_status_version + (?8 IS NOT NULL),
            execution_id = execution_id + ?9
         WHERE instance_id = ?10 AND generation = ?11 AND execution_id = ?12",
    )
    .bind(c.now)
    .bind(name)
    .bind(version)
    .bind(status)
    .bind(output)
    .bind(error)
    .bind(error_code)
    .bind(out.custom_status.as_ref().map(|v| v.get().to_owned()))
    .bind(continued as i64)
    .bind(&c.instance_id)
    .bind(c.generation)
    .bind(c.execution_id as i64)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if fenced == 0 {
        return Err(StoreError::LeaseLost(format!(
            "instance '{}' (generation {})",
            c.instance_id, c.generation
        )));
    }
    let exec = c.execution_id as i64;
    if !out.events.is_empty() {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO history (instance_id, execution_id, event_id, kind, task, ts, data) ",
        );
        qb.push_values(out.events.iter().enumerate(), |mut b, (i, e)| {
            b.push_bind(&c.instance_id)
                .push_bind(exec)
                .push_bind((c.first_event_id + i as u64) as i64)
                .push_bind(e.kind())
                .push_bind(e.task().map(|t| t as i64))
                .push_bind(c.now)
                .push_bind(event_data(e));
        });
        qb.build().execute(&mut *conn).await?;
    }
    if !out.consumed.is_empty() {
        let mut qb = QueryBuilder::new("DELETE FROM orchestrator_queue WHERE seq IN (");
        in_list(&mut qb, out.consumed.iter().copied());
        qb.build().execute(&mut *conn).await?;
    }
    // Race losers, and everything still queued when the execution ends.
    if !out.canceled_activities.is_empty() {
        let mut qb = QueryBuilder::new("DELETE FROM worker_queue WHERE instance_id = ");
        qb.push_bind(&c.instance_id)
            .push(" AND execution_id = ")
            .push_bind(exec)
            .push(" AND task IN (");
        in_list(&mut qb, out.canceled_activities.iter().map(|t| *t as i64));
        qb.build().execute(&mut *conn).await?;
    }
    if !out.canceled_timers.is_empty() {
        let mut qb = QueryBuilder::new(
            "DELETE FROM orchestrator_queue WHERE kind = 'TimerFired' AND instance_id = ",
        );
        qb.push_bind(&c.instance_id)
            .push(" AND execution_id = ")
            .push_bind(exec)
            .push(" AND task IN (");
        in_list(&mut qb, out.canceled_timers.iter().map(|t| *t as i64));
        qb.build().execute(&mut *conn).await?;
    }
    let claimed = insert_activities(
        conn,
        &c.instance_id,
        exec,
        c.now,
        &out.activities,
        c.claim.as_ref().map(|d| (d, clock_now)),
    )
    .await?;
    let mut queue: Vec<QueueInsert> = Vec::new();
    for start in &out.starts {
        let created = create_instance_in(conn, start, c.now).await?;
        if let (false, Some(parent)) = (created, &start.parent) {
            // The id is taken: the parent must hear of it rather than wait forever.
            queue.push(QueueInsert {
                instance_id: parent.instance_id.clone(),
                message: Message::ChildFailed {
                    execution_id: parent.execution_id,
                    task: parent.task,
                    error: crate::engine::TaskError::with_code(
                        format!("an instance with id '{}' already exists", start.instance_id),
                        "ERR_ALREADY_EXISTS",
                    ),
                },
                visible_at: c.now,
            });
        }
    }
    queue.extend(out.timers.iter().map(|t| QueueInsert {
        instance_id: c.instance_id.clone(),
        message: Message::TimerFired {
            execution_id: c.execution_id,
            task: t.task,
        },
        visible_at: t.fire_at,
    }));
    queue.extend(out.messages.iter().map(|m| QueueInsert {
        instance_id: m.instance_id.clone(),
        message: m.message.clone(),
        visible_at: c.now,
    }));
    insert_messages(conn, &queue).await?;
    Ok(directly_claimed(&c, &claimed))
}

impl SqliteProvider {
    /// Records activity outcomes (each fenced by its row's generation) and, with `claim`,
    /// claims the instances they woke in the same transaction.
    async fn settle_and_claim(
        &self,
        outcomes: Vec<(ActivityItem, ActivityResult)>,
        claim: Option<OrchestrationClaim>,
    ) -> Result<(Vec<bool>, Vec<OrchestrationItem>)> {
        if outcomes.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let rows: Vec<(i64, i64, QueueInsert)> = outcomes
            .into_iter()
            .map(|(item, result)| {
                let message = result.message(&item);
                let row = QueueInsert {
                    instance_id: item.instance_id,
                    message,
                    visible_at: 0,
                };
                (item.seq, item.generation, row)
            })
            .collect();
        let clock = self.clock.clone();
        let (recorded, claimed) = self
            .write(move |conn| {
                Box::pin(async move {
                    // Fenced by each row's generation: a lost lease or a cancelled activity
                    // records nothing.
                    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                        "DELETE FROM worker_queue WHERE (seq, generation) IN (VALUES ",
                    );
                    let mut sep = qb.separated(", ");
                    for (seq, generation, _) in &rows {
                        sep.push("(")
                            .push_bind_unseparated(*seq)
                            .push_unseparated(", ")
                            .push_bind_unseparated(*generation)
                            .push_unseparated(")");
                    }
                    qb.push(") RETURNING seq");
                    let deleted: std::collections::HashSet<i64> = qb
                        .build_query_scalar::<i64>()
                        .fetch_all(&mut *conn)
                        .await?
                        .into_iter()
                        .collect();
                    let now = clock.now_ms();
                    let mut recorded = Vec::with_capacity(rows.len());
                    let mut queue = Vec::new();
                    for (seq, _, mut row) in rows {
                        let done = deleted.contains(&seq);
                        if done {
                            row.visible_at = now;
                            queue.push(row);
                        }
                        recorded.push(done);
                    }
                    insert_messages(conn, &queue).await?;
                    let claimed = match claim {
                        Some(c) => {
                            let mut woken: Vec<String> =
                                queue.into_iter().map(|r| r.instance_id).collect();
                            woken.sort();
                            woken.dedup();
                            claim_in(conn, &c.owner, c.lease_ms, c.max, Some(&woken), now).await?
                        }
                        None => Vec::new(),
                    };
                    Ok((recorded, claimed))
                })
            })
            .await?;
        // Woken instances this call did not claim are for the dispatcher.
        if recorded.iter().filter(|r| **r).count() > claimed.len() {
            self.wakers.orchestrations.notify_one();
        }
        Ok((recorded, claimed))
    }
}

#[async_trait]
impl Provider for SqliteProvider {
    fn wakers(&self) -> &Arc<Wakers> {
        &self.wakers
    }

    async fn now(&self) -> Result<i64> {
        Ok(self.clock.now_ms())
    }

    async fn shift_clock(&self, by_ms: i64) -> Result<()> {
        self.clock.shift(by_ms);
        // Work that became due must not wait for a poll.
        self.wakers.orchestrations.notify_one();
        self.wakers.activities.notify_one();
        Ok(())
    }

    async fn create_instance(&self, start: &StartRequest) -> Result<bool> {
        let start = start.clone();
        let id = start.instance_id.clone();
        let clock = self.clock.clone();
        let created = self
            .write(move |conn| {
                Box::pin(async move { create_instance_in(conn, &start, clock.now_ms()).await })
            })
            .await?;
        if created {
            self.wakers.orchestrations.notify_one();
            self.wakers.instance_changed(&id);
        }
        Ok(created)
    }

    async fn enqueue(&self, instance_id: &str, message: &Message) -> Result<()> {
        let row = QueueInsert {
            instance_id: instance_id.to_owned(),
            message: message.clone(),
            visible_at: self.clock.now_ms(),
        };
        self.write(move |conn| Box::pin(async move { insert_messages(conn, &[row]).await }))
            .await?;
        self.wakers.orchestrations.notify_one();
        Ok(())
    }

    async fn instance(&self, instance_id: &str) -> Result<Option<InstanceInfo>> {
        let id = instance_id.to_owned();
        self.read(move |conn| {
            Box::pin(async move {
                let row = sqlx::query("SELECT * FROM instances WHERE instance_id = ?1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
                Ok(row.as_ref().map(instance_info))
            })
        })
        .await
    }

    async fn history(
        &self,
        instance_id: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<HistoryRow>> {
        let id = instance_id.to_owned();
        self.read(move |conn| {
            Box::pin(async move {
                let exec = match execution_id {
                    Some(e) => e as i64,
                    None => {
                        match sqlx::query_scalar::<_, i64>(
                            "SELECT execution_id FROM instances WHERE instance_id = ?1",
                        )
                        .bind(&id)
                        .fetch_optional(&mut *conn)
                        .await?
                        {
                            Some(e) => e,
                            None => return Ok(vec![]),
                        }
                    }
                };
                read_history(conn, &id, exec).await
            })
        })
        .await
    }

    async fn history_after(
        &self,
        instance_id: &str,
        execution_id: u64,
        after_event_id: u64,
    ) -> Result<Vec<HistoryRow>> {
        let id = instance_id.to_owned();
        self.read(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "SELECT event_id, ts, kind, data FROM history
                     WHERE instance_id = ?1 AND execution_id = ?2 AND event_id > ?3
                     ORDER BY event_id",
                )
                .bind(id)
                .bind(execution_id as i64)
                .bind(after_event_id as i64)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(history_row)
                .collect()
            })
        })
        .await
    }

    async fn delete_instance(&self, instance_id: &str, force: bool) -> Result<Deletion> {
        let id = instance_id.to_owned();
        let deletion = self
            .write(move |conn| {
                Box::pin(async move {
                    let tree: Vec<String> = sqlx::query_scalar(
                        "WITH RECURSIVE tree(id) AS (
                            SELECT instance_id FROM instances WHERE instance_id = ?1
                            UNION SELECT i.instance_id FROM instances i JOIN tree t ON i.parent_instance_id = t.id)
                         SELECT id FROM tree",
                    )
                    .bind(&id)
                    .fetch_all(&mut *conn)
                    .await?;
                    if tree.is_empty() {
                        sqlx::query("DELETE FROM orchestrator_queue WHERE instance_id = ?1")
                            .bind(&id)
                            .execute(&mut *conn)
                            .await?;
                        return Ok(Deletion::NotFound);
                    }
                    let status: String =
                        sqlx::query_scalar("SELECT status FROM instances WHERE instance_id = ?1")
                            .bind(&id)
                            .fetch_one(&mut *conn)
                            .await?;
                    if status == "Running" && !force {
                        return Ok(Deletion::Running);
                    }
                    for table in ["history", "orchestrator_queue", "worker_queue", "instances"] {
                        let mut qb = QueryBuilder::new(format!("DELETE FROM {table} WHERE instance_id IN ("));
                        let mut sep = qb.separated(", ");
                        for t in &tree {
                            sep.push_bind(t);
                        }
                        sep.push_unseparated(")");
                        qb.build().execute(&mut *conn).await?;
                    }
                    Ok(Deletion::Deleted(tree))
                })
            })
            .await?;
        if let Deletion::Deleted(ids) = &deletion {
            for id in ids {
                self.wakers.instance_changed(id);
            }
        }
        Ok(deletion)
    }

    async fn rewind_instance(
        &self,
        instance_id: &str,
        plan: &RewindPlan,
        updated_at: i64,
    ) -> Result<bool> {
        let id = instance_id.to_owned();
        let plan_owned = plan.clone();
        let clock = self.clock.clone();
        let rewound = self
            .write(move |conn| {
                Box::pin(async move {
                    rewind_in(conn, &id, &plan_owned, updated_at, clock.now_ms()).await
                })
            })
            .await?;
        if rewound {
            self.wakers.orchestrations.notify_one();
            if !plan.activities.is_empty() {
                self.wakers.activities.notify_one();
            }
            self.wakers.instance_changed(instance_id);
        }
        Ok(rewound)
    }

    async fn list_instances(&self, filter: &InstanceFilter) -> Result<InstancePage> {
        let f = filter.clone();
        self.read(move |conn| {
            Box::pin(async move {
                let limit = f.limit.max(1) as usize;
                let mut qb: QueryBuilder<Sqlite> =
                    QueryBuilder::new("SELECT * FROM instances WHERE 1 = 1");
                if let Some(status) = &f.status {
                    qb.push(" AND status = ").push_bind(status.clone());
                }
                if let Some(name) = &f.name {
                    qb.push(" AND name = ").push_bind(name.clone());
                }
                if let Some(after) = f.created_after {
                    qb.push(" AND created_at > ").push_bind(after);
                }
                if let Some(before) = f.created_before {
                    qb.push(" AND created_at < ").push_bind(before);
                }
                if let Some(parent) = &f.parent_id {
                    qb.push(" AND parent_instance_id = ")
                        .push_bind(parent.clone());
                }
                if let Some(c) = &f.cursor {
                    qb.push(" AND (created_at, instance_id) > (")
                        .push_bind(c.created_at)
                        .push(", ")
                        .push_bind(c.instance_id.clone())
                        .push(")");
                }
                qb.push(" ORDER BY created_at, instance_id LIMIT ")
                    .push_bind(limit as i64 + 1);
                let rows = qb.build().fetch_all(&mut *conn).await?;
                let mut instances: Vec<InstanceInfo> = rows.iter().map(instance_info).collect();
                let more = instances.len() > limit;
                instances.truncate(limit);
                let next_cursor = more
                    .then(|| instances.last())
                    .flatten()
                    .map(|i| PageCursor {
                        created_at: i.created_at,
                        instance_id: i.instance_id.clone(),
                    });
                Ok(InstancePage {
                    instances,
                    next_cursor,
                })
            })
        })
        .await
    }

    async fn list_executions(&self, instance_id: &str) -> Result<Vec<ExecutionInfo>> {
        let id = instance_id.to_owned();
        self.read(move |conn| {
            Box::pin(async move {
                let current: Option<i64> = sqlx::query_scalar(
                    "SELECT execution_id FROM instances WHERE instance_id = ?1",
                )
                .bind(&id)
                .fetch_optional(&mut *conn)
                .await?;
                let Some(current) = current else {
                    return Ok(vec![]);
                };
                let rows = sqlx::query(
                    "SELECT execution_id, MIN(ts) AS first_ts, MAX(ts) AS last_ts, COUNT(*) AS n
                     FROM history WHERE instance_id = ?1 GROUP BY execution_id ORDER BY execution_id",
                )
                .bind(&id)
                .fetch_all(&mut *conn)
                .await?;
                let mut out: Vec<ExecutionInfo> = rows
                    .iter()
                    .map(|r| ExecutionInfo {
                        execution_id: r.get::<i64, _>("execution_id") as u64,
                        first_event_at: Some(r.get("first_ts")),
                        last_event_at: Some(r.get("last_ts")),
                        event_count: r.get::<i64, _>("n") as u64,
                    })
                    .collect();
                if out.last().map(|e| e.execution_id) != Some(current as u64) {
                    out.push(ExecutionInfo {
                        execution_id: current as u64,
                        first_event_at: None,
                        last_event_at: None,
                        event_count: 0,
                    });
                }
                Ok(out)
            })
        })
        .await
    }

    async fn system_metrics(&self) -> Result<SystemMetrics> {
        self.read(|conn| {
            Box::pin(async move {
                let rows =
                    sqlx::query("SELECT status, COUNT(*) AS n FROM instances GROUP BY status")
                        .fetch_all(&mut *conn)
                        .await?;
                let mut m = SystemMetrics::default();
                for r in rows {
                    let n = r.get::<i64, _>("n") as u64;
                    m.total += n;
                    match r.get::<String, _>("status").as_str() {
                        "Running" => m.running += n,
                        "Completed" => m.completed += n,
                        "Failed" => m.failed += n,
                        _ => {}
                    }
                }
                Ok(m)
            })
        })
        .await
    }

    async fn activity_attempts(&self, instance_id: &str) -> Result<Vec<ActivityAttempt>> {
        let id = instance_id.to_owned();
        let now = self.clock.now_ms();
        self.read(move |conn| {
            Box::pin(async move {
                let rows = sqlx::query(
                    "SELECT execution_id, task, name, attempt, lock_until > ?2 AS running, visible_at
                     FROM worker_queue WHERE instance_id = ?1 ORDER BY execution_id, task",
                )
                .bind(id)
                .bind(now)
                .fetch_all(&mut *conn)
                .await?;
                Ok(rows
                    .iter()
                    .map(|r| ActivityAttempt {
                        execution_id: r.get::<i64, _>("execution_id") as u64,
                        task: r.get::<i64, _>("task") as u32,
                        name: r.get("name"),
                        attempt: r.get::<i64, _>("attempt") as u32,
                        running: r.get::<bool, _>("running"),
                        visible_at: r.get("visible_at"),
                    })
                    .collect())
            })
        })
        .await
    }

    async fn queue_depths(&self) -> Result<QueueDepths> {
        let clock = self.clock.clone();
        self.read(move |conn| {
            Box::pin(async move {
                let now = clock.now_ms();
                let row = sqlx::query(
                    "SELECT
                        (SELECT COUNT(*) FROM orchestrator_queue WHERE visible_at <= ?1) AS ov,
                        (SELECT COUNT(*) FROM orchestrator_queue WHERE visible_at > ?1) AS od,
                        (SELECT COUNT(*) FROM worker_queue WHERE lock_until <= ?1 AND visible_at <= ?1) AS wv,
                        (SELECT COUNT(*) FROM worker_queue WHERE lock_until > ?1) AS wr,
                        (SELECT COUNT(*) FROM worker_queue WHERE lock_until <= ?1 AND visible_at > ?1) AS wd",
                )
                .bind(now)
                .fetch_one(&mut *conn)
                .await?;
                let n = |c: &str| row.get::<i64, _>(c) as u64;
                Ok(QueueDepths {
                    orchestrator_visible: n("ov"),
                    orchestrator_delayed: n("od"),
                    worker_visible: n("wv"),
                    worker_running: n("wr"),
                    worker_delayed: n("wd"),
                })
            })
        })
        .await
    }

    async fn finished_instances(&self, filter: &DeleteFilter) -> Result<Vec<String>> {
        let f = filter.clone();
        self.read(move |conn| {
            Box::pin(async move {
                let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                    "SELECT instance_id FROM instances WHERE status IN ('Completed', 'Failed')",
                );
                if let Some(ids) = &f.ids {
                    if ids.is_empty() {
                        return Ok(vec![]);
                    }
                    qb.push(" AND instance_id IN (");
                    let mut sep = qb.separated(", ");
                    for id in ids {
                        sep.push_bind(id.clone());
                    }
                    sep.push_unseparated(")");
                }
                if let Some(status) = &f.status {
                    qb.push(" AND status = ").push_bind(status.clone());
                }
                if let Some(before) = f.completed_before {
                    qb.push(" AND updated_at < ").push_bind(before);
                }
                qb.push(" ORDER BY updated_at, instance_id");
                if let Some(limit) = f.limit {
                    qb.push(" LIMIT ").push_bind(limit as i64);
                }
                Ok(qb.build_query_scalar().fetch_all(&mut *conn).await?)
            })
        })
        .await
    }

    async fn prune_executions(
        &self,
        instance_id: &str,
        keep_last: Option<u32>,
        completed_before: Option<i64>,
    ) -> Result<u64> {
        let id = instance_id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let current: Option<i64> =
                    sqlx::query_scalar("SELECT execution_id FROM instances WHERE instance_id = ?1")
                        .bind(&id)
                        .fetch_optional(&mut *conn)
                        .await?;
                let Some(current) = current else {
                    return Ok(0);
                };
                let old: Vec<(i64, i64)> = sqlx::query_as(
                    "SELECT execution_id, MAX(ts) FROM history
                     WHERE instance_id = ?1 AND execution_id < ?2 GROUP BY execution_id",
                )
                .bind(&id)
                .bind(current)
                .fetch_all(&mut *conn)
                .await?;
                let old: Vec<(u64, i64)> = old.into_iter().map(|(e, t)| (e as u64, t)).collect();
                let doomed = executions_to_prune(current as u64, &old, keep_last, completed_before);
                if doomed.is_empty() {
                    return Ok(0);
                }
                let mut qb = QueryBuilder::new("DELETE FROM history WHERE instance_id = ");
                qb.push_bind(id.clone()).push(" AND execution_id IN (");
                in_list(&mut qb, doomed.iter().map(|e| *e as i64));
                qb.build().execute(&mut *conn).await?;
                Ok(doomed.len() as u64)
            })
        })
        .await
    }

    async fn attach_runtime(&self, _owner: &str) -> Result<()> {
        if let Some(path) = &self.path {
            let lock_path = PathBuf::from(format!("{}.lock", path.display()));
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| {
                    StoreError::Config(format!("cannot open {}: {e}", lock_path.display()))
                })?;
            if file.try_lock().is_err() {
                return Err(StoreError::Locked(format!(
                    "another runtime is already running on {} (one runtime per SQLite file; other processes may use a Client)",
                    path.display()
                )));
            }
            *self.runtime_lock.lock().unwrap() = Some(file);
        }
        self.local_runtime
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // The only runtime on this file: every lease still held is a dead process's.
        self.write(|conn| {
            Box::pin(async move {
                sqlx::query("UPDATE instances SET lock_owner = NULL, lock_until = 0 WHERE lock_until > 0")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("UPDATE worker_queue SET lock_owner = NULL, lock_until = 0 WHERE lock_until > 0")
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn detach_runtime(&self, _owner: &str) -> Result<()> {
        self.local_runtime
            .store(false, std::sync::atomic::Ordering::SeqCst);
        if let Some(file) = self.runtime_lock.lock().unwrap().take() {
            let _ = file.unlock();
        }
        Ok(())
    }

    async fn claim_orchestrations(
        &self,
        owner: &str,
        lease_ms: i64,
        max: usize,
    ) -> Result<Vec<OrchestrationItem>> {
        let owner = owner.to_owned();
        let clock = self.clock.clone();
        self.write(move |conn| {
            Box::pin(
                async move { claim_in(conn, &owner, lease_ms, max, None, clock.now_ms()).await },
            )
        })
        .await
    }

    async fn commit_turn(&self, commit: TurnCommit) -> Result<Vec<ActivityItem>> {
        let out = &commit.outcome;
        let wakes_orchestrations =
            !out.messages.is_empty() || !out.starts.is_empty() || !out.timers.is_empty();
        // Activities claimed by the commit itself need no other worker's attention.
        let wakes_activities = out.activities.len() > commit.claim.as_ref().map_or(0, |d| d.count);
        let changed = out.changes_instance().then(|| commit.instance_id.clone());
        let progressed = commit.instance_id.clone();
        let started: Vec<String> = out.starts.iter().map(|s| s.instance_id.clone()).collect();
        let clock = self.clock.clone();
        let claimed = self
            .write(move |conn| {
                Box::pin(async move { commit_turn_in(conn, commit, clock.now_ms()).await })
            })
            .await?;
        if wakes_orchestrations {
            self.wakers.orchestrations.notify_one();
        }
        if wakes_activities {
            self.wakers.activities.notify_one();
        }
        match changed {
            Some(id) => self.wakers.instance_changed(&id),
            None => self.wakers.instance_progressed(&progressed),
        }
        for id in started {
            self.wakers.instance_changed(&id);
        }
        Ok(claimed)
    }

    async fn abandon_orchestration(
        &self,
        instance_id: &str,
        generation: i64,
        delay_ms: i64,
        count_delivery: bool,
    ) -> Result<()> {
        let id = instance_id.to_owned();
        let clock = self.clock.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let now = clock.now_ms();
                let released = sqlx::query(
                    "UPDATE instances SET lock_owner = NULL, lock_until = 0 WHERE instance_id = ?1 AND generation = ?2",
                )
                .bind(&id)
                .bind(generation)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if released == 1 {
                    // Messages that arrived after the claim were not delivered by it: the
                    // count never goes below zero.
                    sqlx::query(
                        "UPDATE orchestrator_queue SET visible_at = MAX(visible_at, ?1),
                            deliveries = MAX(deliveries - ?2, 0)
                         WHERE instance_id = ?3 AND visible_at <= ?4",
                    )
                    .bind(now + delay_ms)
                    .bind(if count_delivery { 0 } else { 1 })
                    .bind(&id)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            })
        })
        .await?;
        self.wakers.orchestrations.notify_one();
        Ok(())
    }

    async fn claim_activities(
        &self,
        owner: &str,
        lease_ms: i64,
        max: usize,
    ) -> Result<Vec<ActivityItem>> {
        let owner = owner.to_owned();
        let clock = self.clock.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let now = clock.now_ms();
                let rows = sqlx::query(
                    "UPDATE worker_queue SET lock_owner = ?1, lock_until = ?2, generation = generation + 1,
                        deliveries = deliveries + 1
                     WHERE seq IN (
                        SELECT seq FROM worker_queue WHERE visible_at <= ?3 AND lock_until <= ?3
                        ORDER BY seq LIMIT ?4)
                     RETURNING *",
                )
                .bind(&owner)
                .bind(now + lease_ms)
                .bind(now)
                .bind(max as i64)
                .fetch_all(&mut *conn)
                .await?;
                let mut items = rows.iter().map(activity_item).collect::<Result<Vec<_>>>()?;
                items.sort_by_key(|i| i.seq);
                Ok(items)
            })
        })
        .await
    }

    async fn complete_activities(
        &self,
        outcomes: Vec<(ActivityItem, ActivityResult)>,
    ) -> Result<Vec<bool>> {
        Ok(self.settle_and_claim(outcomes, None).await?.0)
    }

    async fn complete_activities_and_claim(
        &self,
        outcomes: Vec<(ActivityItem, ActivityResult)>,
        claim: &OrchestrationClaim,
    ) -> Result<(Vec<bool>, Vec<OrchestrationItem>)> {
        self.settle_and_claim(outcomes, Some(claim.clone())).await
    }

    async fn retry_activity(
        &self,
        item: &ActivityItem,
        visible_at: i64,
        next_attempt: u32,
    ) -> Result<bool> {
        let (seq, generation) = (item.seq, item.generation);
        let updated = self
            .write(move |conn| {
                Box::pin(async move {
                    Ok(sqlx::query(
                        "UPDATE worker_queue SET visible_at = ?1, attempt = ?2, lock_owner = NULL, lock_until = 0,
                            deliveries = 0
                         WHERE seq = ?3 AND generation = ?4",
                    )
                    .bind(visible_at)
                    .bind(next_attempt as i64)
                    .bind(seq)
                    .bind(generation)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
                        == 1)
                })
            })
            .await?;
        self.wakers.activities.notify_one();
        Ok(updated)
    }

    async fn abandon_activity(&self, item: &ActivityItem, delay_ms: i64) -> Result<()> {
        let (seq, generation) = (item.seq, item.generation);
        let clock = self.clock.clone();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE worker_queue SET lock_owner = NULL, lock_until = 0, visible_at = ?1
                     WHERE seq = ?2 AND generation = ?3",
                )
                .bind(clock.now_ms() + delay_ms)
                .bind(seq)
                .bind(generation)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await?;
        self.wakers.activities.notify_one();
        Ok(())
    }

    async fn renew_leases(&self, leases: &[Lease], lease_ms: i64) -> Result<Vec<Lease>> {
        let leases = leases.to_vec();
        let clock = self.clock.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let until = clock.now_ms() + lease_ms;
                let mut lost = Vec::new();
                // A lease released by a commit, abandon or retry (lock_until = 0) is not
                // held any more: renewing it must not lock the row again.
                for lease in leases {
                    let n = match &lease {
                        Lease::Instance(id, generation) => sqlx::query(
                            "UPDATE instances SET lock_until = ?1
                             WHERE instance_id = ?2 AND generation = ?3 AND lock_until > 0",
                        )
                        .bind(until)
                        .bind(id)
                        .bind(generation)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected(),
                        Lease::Activity(seq, generation) => sqlx::query(
                            "UPDATE worker_queue SET lock_until = ?1
                             WHERE seq = ?2 AND generation = ?3 AND lock_until > 0",
                        )
                        .bind(until)
                        .bind(seq)
                        .bind(generation)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected(),
                    };
                    if n == 0 {
                        lost.push(lease);
                    }
                }
                Ok(lost)
            })
        })
        .await
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            (
                "store_transactions",
                self.batches.transactions.load(Ordering::Relaxed),
            ),
            (
                "store_operations",
                self.batches.operations.load(Ordering::Relaxed),
            ),
        ]
    }

    fn foreign_commit_poll(&self) -> Option<Duration> {
        if self.local_runtime.load(std::sync::atomic::Ordering::SeqCst) {
            None
        } else {
            Some(Duration::from_millis(200))
        }
    }

    async fn next_due(&self) -> Result<Option<i64>> {
        let clock = self.clock.clone();
        self.read(move |conn| {
            Box::pin(async move {
                let now = clock.now_ms();
                let due: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(t) FROM (
                        SELECT MIN(visible_at) AS t FROM orchestrator_queue WHERE visible_at > ?1
                        UNION ALL SELECT MIN(visible_at) FROM worker_queue WHERE visible_at > ?1)",
                )
                .bind(now)
                .fetch_one(&mut *conn)
                .await?;
                Ok(due)
            })
        })
        .await
    }
}

async fn read_history(
    conn: &mut SqliteConnection,
    instance_id: &str,
    execution_id: i64,
) -> Result<Vec<HistoryRow>> {
    sqlx::query(
        "SELECT event_id, ts, kind, data FROM history
         WHERE instance_id = ?1 AND execution_id = ?2 ORDER BY event_id",
    )
    .bind(instance_id)
    .bind(execution_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(history_row)
    .collect()
}
