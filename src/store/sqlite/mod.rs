//! The SQLite provider: one connection owned by a writer thread that batches many callers'
//! operations into one transaction (a savepoint each), WAL, one runtime per file under an
//! OS file lock.
//!
//! One file per concern, as in `postgres/`: `instances` (a client's instance), `claim`
//! (claims and leases), `commit` (a turn), `activities`, `rewind` and `management`, with
//! `queue` for the inserts they share. `writer` (the batching writer thread) and `sql`
//! (statements built with their arguments) are SQLite's own.

mod activities;
mod claim;
mod commit;
mod file_lock;
mod instances;
mod jobs;
mod kv;
mod management;
mod queue;
mod registry;
mod rewind;
mod sql;
mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::ConnectOptions;
use tokio::sync::mpsc;

use crate::engine::{HistoryRow, Message, RewindPlan, StartRequest};
use crate::store::{
    ActivityAttempt, ActivityItem, ActivityResult, Clock, DeleteFilter, Deletion, ExecutionInfo,
    InstanceFilter, InstanceInfo, InstancePage, InstanceStats, JobAwait, JobBegin, JobFence,
    JobLog, JobState, JobWrite, KvEntry, Lease, OrchestrationClaim, OrchestrationItem, Provider,
    QueueDepths, Reaped, Result, Routing, RuntimeInfo, RuntimeRegistration, StoreError,
    SystemMetrics, TurnCommit, UnservedWork, Wakers, DEFAULT_UNKNOWN_EVENT_TTL_MS,
};
use writer::{spawn_writer, BatchCounters, WriteOp};

/// Options for [`SqliteProvider::open`].
#[derive(Debug, Clone, Default)]
pub struct SqliteOptions {
    /// `synchronous=FULL` (fsync every commit) instead of `NORMAL`.
    pub synchronous_full: bool,
    /// How long events for instances that do not exist are kept (default
    /// [`DEFAULT_UNKNOWN_EVENT_TTL_MS`]).
    pub unknown_event_ttl_ms: Option<i64>,
}

pub struct SqliteProvider {
    ops: mpsc::UnboundedSender<Box<dyn WriteOp>>,
    batches: Arc<BatchCounters>,
    wakers: Arc<Wakers>,
    path: Option<PathBuf>,
    runtime_lock: Mutex<Option<file_lock::RuntimeLock>>,
    clock: Arc<Clock>,
    unknown_event_ttl_ms: i64,
    /// A runtime runs on this provider object: it is the file's only runtime, so every
    /// commit that changes an instance happens here and signals the wakers.
    local_runtime: AtomicBool,
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
        file_lock::refuse_hard_links(&path)?;
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
        let ttl = options
            .unknown_event_ttl_ms
            .unwrap_or(DEFAULT_UNKNOWN_EVENT_TTL_MS);
        Self::start(connect, Some(path.clone()), ttl)
            .await
            .map_err(|e| match e {
                StoreError::Database(_) | StoreError::Migration(_) => StoreError::Open(format!(
                    "cannot open the SQLite database {}: {e}",
                    path.display()
                )),
                other => other,
            })
    }

    pub async fn in_memory() -> Result<Arc<Self>> {
        let connect =
            SqliteConnectOptions::from_str("sqlite::memory:")?.disable_statement_logging();
        Self::start(connect, None, DEFAULT_UNKNOWN_EVENT_TTL_MS).await
    }

    async fn start(
        connect: SqliteConnectOptions,
        path: Option<PathBuf>,
        unknown_event_ttl_ms: i64,
    ) -> Result<Arc<Self>> {
        let mut conn = connect.connect().await?;
        sqlx::migrate!("./migrations/sqlite")
            .run_direct(&mut conn)
            .await?;
        let (ops, rx) = mpsc::unbounded_channel();
        let batches = Arc::new(BatchCounters::default());
        spawn_writer(conn, rx, batches.clone(), path.clone())?;
        Ok(Arc::new(SqliteProvider {
            ops,
            batches,
            wakers: Arc::new(Wakers::default()),
            path,
            runtime_lock: Mutex::new(None),
            clock: Arc::new(Clock::default()),
            unknown_event_ttl_ms,
            local_runtime: AtomicBool::new(false),
        }))
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

#[async_trait]
impl Provider for SqliteProvider {
    fn wakers(&self) -> &Arc<Wakers> {
        &self.wakers
    }

    fn describe(&self) -> String {
        match &self.path {
            Some(path) => format!("SQLite {}", path.display()),
            None => "SQLite in memory".into(),
        }
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

    async fn create_instances(&self, starts: &[StartRequest]) -> Result<Vec<bool>> {
        instances::create_instances(self, starts).await
    }

    async fn create_instance(&self, start: &StartRequest) -> Result<bool> {
        instances::create_instance(self, start).await
    }

    async fn enqueue(&self, instance_id: &str, message: &Message) -> Result<()> {
        instances::enqueue(self, instance_id, message).await
    }

    async fn instance(&self, instance_id: &str) -> Result<Option<InstanceInfo>> {
        instances::instance(self, instance_id).await
    }

    async fn history(
        &self,
        instance_id: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<HistoryRow>> {
        instances::history(self, instance_id, execution_id).await
    }

    async fn history_after(
        &self,
        instance_id: &str,
        execution_id: u64,
        after_event_id: u64,
    ) -> Result<Vec<HistoryRow>> {
        instances::history_after(self, instance_id, execution_id, after_event_id).await
    }

    async fn delete_instance(&self, instance_id: &str, force: bool) -> Result<Deletion> {
        instances::delete_instance(self, instance_id, force).await
    }

    async fn rewind_instance(
        &self,
        instance_id: &str,
        plan: &RewindPlan,
        updated_at: i64,
    ) -> Result<bool> {
        rewind::rewind_instance(self, instance_id, plan, updated_at).await
    }

    async fn list_instances(&self, filter: &InstanceFilter) -> Result<InstancePage> {
        management::list_instances(self, filter).await
    }

    async fn list_executions(&self, instance_id: &str) -> Result<Vec<ExecutionInfo>> {
        management::list_executions(self, instance_id).await
    }

    async fn system_metrics(&self) -> Result<SystemMetrics> {
        management::system_metrics(self).await
    }

    async fn activity_attempts(&self, instance_id: &str) -> Result<Vec<ActivityAttempt>> {
        management::activity_attempts(self, instance_id).await
    }

    async fn queue_depths(&self) -> Result<QueueDepths> {
        management::queue_depths(self).await
    }

    async fn kv_values(&self, instance_id: &str, key: Option<&str>) -> Result<Vec<KvEntry>> {
        kv::values(self, instance_id, key).await
    }

    async fn instance_stats(&self, instance_id: &str) -> Result<Option<InstanceStats>> {
        kv::instance_stats(self, instance_id).await
    }

    async fn expire_unknown_events(&self) -> Result<u64> {
        management::expire_unknown_events(self).await
    }

    async fn finished_instances(&self, filter: &DeleteFilter) -> Result<Vec<String>> {
        management::finished_instances(self, filter).await
    }

    async fn prune_executions(
        &self,
        instance_id: &str,
        keep_last: Option<u32>,
        completed_before: Option<i64>,
    ) -> Result<u64> {
        management::prune_executions(self, instance_id, keep_last, completed_before).await
    }

    async fn attach_runtime(
        &self,
        runtime: &RuntimeRegistration,
        _replace: Option<&str>,
    ) -> Result<Reaped> {
        if let Some(path) = &self.path {
            let lock = file_lock::acquire(path)?;
            *self.runtime_lock.lock().unwrap() = Some(lock);
        }
        self.local_runtime.store(true, Ordering::SeqCst);
        // The only runtime on this file: every lease still held is a dead process's.
        let reaped = registry::attach_runtime(self, runtime).await?;
        if reaped.instances + reaped.activities > 0 {
            tracing::info!(
                instances = reaped.instances,
                activities = reaped.activities,
                "recovering work a previous process left leased on {}: it runs again now",
                self.describe()
            );
        }
        Ok(reaped)
    }

    async fn detach_runtime(&self, runtime_id: &str) -> Result<()> {
        let removed = registry::detach_runtime(self, runtime_id).await;
        self.local_runtime.store(false, Ordering::SeqCst);
        if let Some(lock) = self.runtime_lock.lock().unwrap().take() {
            file_lock::release(lock);
        }
        removed
    }

    async fn heartbeat(&self, runtime: &RuntimeRegistration, reap: bool) -> Result<Reaped> {
        registry::heartbeat(self, runtime, reap).await
    }

    async fn list_runtimes(&self) -> Result<Vec<RuntimeInfo>> {
        registry::list_runtimes(self).await
    }

    async fn claim_orchestrations(
        &self,
        claim: &OrchestrationClaim,
    ) -> Result<Vec<OrchestrationItem>> {
        claim::claim_orchestrations(self, claim).await
    }

    async fn commit_turn(&self, commit: TurnCommit) -> Result<Vec<ActivityItem>> {
        commit::commit_turn(self, commit).await
    }

    async fn abandon_orchestration(
        &self,
        instance_id: &str,
        generation: i64,
        delay_ms: i64,
        count_delivery: bool,
    ) -> Result<()> {
        claim::abandon_orchestration(self, instance_id, generation, delay_ms, count_delivery).await
    }

    async fn claim_activities(
        &self,
        owner: &str,
        lease_ms: i64,
        max: usize,
        routing: &Routing,
    ) -> Result<Vec<ActivityItem>> {
        activities::claim_activities(self, owner, lease_ms, max, routing).await
    }

    async fn unserved_work(&self, live_ms: i64) -> Result<UnservedWork> {
        registry::unserved_work(self, live_ms).await
    }

    async fn job_begin(&self, fence: JobFence, key: Option<String>) -> Result<JobBegin> {
        jobs::begin(self, fence, key).await
    }

    async fn job_write(&self, fence: JobFence, writes: Vec<JobWrite>) -> Result<bool> {
        jobs::write(self, fence, writes).await
    }

    async fn job_await(
        &self,
        fence: JobFence,
        name: String,
        event: String,
        deadline: Option<i64>,
        give_up: bool,
    ) -> Result<JobAwait> {
        jobs::await_event(self, fence, name, event, deadline, give_up).await
    }

    async fn job_emit(&self, event: String, payload: String) -> Result<u64> {
        jobs::emit(self, event, payload).await
    }

    async fn job_clear_event(&self, event: String) -> Result<bool> {
        jobs::clear_event(self, event).await
    }

    async fn job_queue_key(&self, instance_id: String, key: String) -> Result<()> {
        jobs::queue_key(self, instance_id, key).await
    }

    async fn job_release(&self, instance_id: String) -> Result<()> {
        jobs::release(self, instance_id).await
    }

    async fn job_reset(&self, instance_id: String) -> Result<u64> {
        jobs::reset(self, instance_id).await
    }

    async fn job_state(&self, instance_id: String) -> Result<JobState> {
        jobs::state(self, instance_id).await
    }

    async fn job_logs(
        &self,
        instance_id: String,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<JobLog>> {
        jobs::logs(self, instance_id, after_seq, limit).await
    }

    async fn last_registered(
        &self,
        kind: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<i64>> {
        registry::last_registered(self, kind, name, version).await
    }

    async fn complete_activities(
        &self,
        outcomes: Vec<(ActivityItem, ActivityResult)>,
    ) -> Result<Vec<bool>> {
        activities::complete_activities(self, outcomes).await
    }

    async fn complete_activities_and_claim(
        &self,
        outcomes: Vec<(ActivityItem, ActivityResult)>,
        claim: &OrchestrationClaim,
    ) -> Result<(Vec<bool>, Vec<OrchestrationItem>)> {
        activities::complete_activities_and_claim(self, outcomes, claim).await
    }

    async fn retry_activity(
        &self,
        item: &ActivityItem,
        visible_at: i64,
        next_attempt: u32,
    ) -> Result<bool> {
        activities::retry_activity(self, item, visible_at, next_attempt).await
    }

    async fn abandon_activity(&self, item: &ActivityItem, delay_ms: i64) -> Result<()> {
        activities::abandon_activity(self, item, delay_ms).await
    }

    async fn renew_leases(&self, leases: &[Lease], lease_ms: i64) -> Result<Vec<Lease>> {
        claim::renew_leases(self, leases, lease_ms).await
    }

    async fn next_due(&self) -> Result<Option<i64>> {
        claim::next_due(self).await
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
        if self.local_runtime.load(Ordering::SeqCst) {
            None
        } else {
            Some(Duration::from_millis(200))
        }
    }
}
