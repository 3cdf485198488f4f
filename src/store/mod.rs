//! Storage: the `Provider` trait every backend implements, and the SQLite and PostgreSQL
//! providers. Knows nothing of napi; SQL lives only here.
//!
//! `model` holds the types the trait speaks in; `clock` and `wakers` the in-process parts
//! every backend shares; `rows` reads rows and `writes` decides what a write puts in them,
//! once for both backends. `sqlite/` and `postgres/` are parallel trees, one file per
//! concern with the same file and function names on both sides, so that comparing the two
//! files of a concern shows only dialect.

mod clock;
pub mod jobs;
mod model;
pub mod postgres;
mod rows;
pub mod sqlite;
mod wakers;
mod writes;

use std::sync::Arc;

use async_trait::async_trait;

use crate::engine::{HistoryRow, Message, RewindPlan, StartRequest};

pub use clock::{now_ms, Clock};
pub use jobs::{
    JobAwait, JobBegin, JobFence, JobLog, JobState, JobStep, JobWrite, JOB_TABLES, JOB_WAKE_EVENT,
};
pub use model::*;
pub use wakers::Wakers;
pub use writes::{directly_claimed, executions_to_prune, InstanceUpdate};

/// How long an event raised for an instance that does not exist is kept for it (24 h):
/// an instance created later receives only the events younger than this.
pub const DEFAULT_UNKNOWN_EVENT_TTL_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The instance or activity lease was lost (expired and taken, or fenced by generation).
    #[error("lease lost: {0}")]
    LeaseLost(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The database server could not be reached (or refused the connection).
    #[error("{0}")]
    Unavailable(String),
    /// Another runtime already holds this database.
    #[error("{0}")]
    Locked(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// An error of the SQLite writer's synchronous statements.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Something the call names does not exist (a PostgreSQL schema it may not create).
    #[error("{0}")]
    NotFound(String),
    /// A database file could not be opened or migrated; the message names the file.
    #[error("{0}")]
    Open(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    /// The database could not be reached or dropped the connection (refused, reset, shut
    /// down, no connection within the pool's wait): retrying later can succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                // Connection exceptions (08...), and the server shutting down or starting.
                sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                    code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
                }),
                _ => false,
            },
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    fn wakers(&self) -> &Arc<Wakers>;
    /// Where the store is, for logs: never a password.
    fn describe(&self) -> String;

    /// The store's clock, epoch ms.
    async fn now(&self) -> Result<i64>;
    /// Moves the store's clock forward by `by_ms` (backward when negative), for tests that
    /// reach timers, delays and lease expiries without waiting. Every reader of this store
    /// sees it: on PostgreSQL every connection to the schema, on SQLite this provider.
    async fn shift_clock(&self, by_ms: i64) -> Result<()>;

    // --- client ---
    /// Creates the instance and its start message; `false` if the id already exists.
    async fn create_instance(&self, start: &StartRequest) -> Result<bool>;
    /// Creates many instances in one transaction, each unless its id exists (a second start
    /// of one id in the batch finds the first's instance); one flag per start, `true` when
    /// this call created it.
    async fn create_instances(&self, starts: &[StartRequest]) -> Result<Vec<bool>>;
    /// Queues a message for an instance (which may not exist yet: it waits for the start).
    async fn enqueue(&self, instance_id: &str, message: &Message) -> Result<()>;
    async fn instance(&self, instance_id: &str) -> Result<Option<InstanceInfo>>;
    /// The history of one execution (the current one when `None`).
    async fn history(
        &self,
        instance_id: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<HistoryRow>>;
    /// The events of one execution after `after_event_id`, in order (what a watcher has
    /// not seen yet).
    async fn history_after(
        &self,
        instance_id: &str,
        execution_id: u64,
        after_event_id: u64,
    ) -> Result<Vec<HistoryRow>>;
    /// Removes an instance with its sub-orchestrations (recursively), their histories and
    /// everything queued for them. A running instance is refused unless `force`.
    async fn delete_instance(&self, instance_id: &str, force: bool) -> Result<Deletion>;

    /// Applies a [`RewindPlan`] to a failed instance: removes the failure from its history,
    /// queues what the plan lists and marks the instance Running, in one transaction.
    /// `false` (nothing written) unless the instance is still Failed in that execution with
    /// that history.
    ///
    /// Also fenced on `updated_at` (the instance row as the plan was made from it), and it
    /// withdraws what would undo the retry: sub-orchestration results queued for the
    /// execution (the plan re-delivers them from each child's state) and cancels still queued
    /// for its open children.
    async fn rewind_instance(
        &self,
        instance_id: &str,
        plan: &RewindPlan,
        updated_at: i64,
    ) -> Result<bool>;

    // --- management ---
    /// A page of instances matching `filter`, in `(created_at, instance_id)` order.
    async fn list_instances(&self, filter: &InstanceFilter) -> Result<InstancePage>;
    /// The executions of an instance, oldest first: those with history, and the current
    /// one (empty when the id is unknown).
    async fn list_executions(&self, instance_id: &str) -> Result<Vec<ExecutionInfo>>;
    async fn system_metrics(&self) -> Result<SystemMetrics>;
    /// The instance's queued and running activities, by execution and task.
    async fn activity_attempts(&self, instance_id: &str) -> Result<Vec<ActivityAttempt>>;
    async fn queue_depths(&self) -> Result<QueueDepths>;
    /// The instance's key-value store (only `key` when given), by key.
    async fn kv_values(&self, instance_id: &str, key: Option<&str>) -> Result<Vec<KvEntry>>;
    /// Sizes of an instance (`None`: no such instance).
    async fn instance_stats(&self, instance_id: &str) -> Result<Option<InstanceStats>>;
    /// Deletes the events raised for instances that still do not exist once they are older
    /// than the store's unknown-event TTL; returns how many.
    async fn expire_unknown_events(&self) -> Result<u64>;
    /// Removes the finished instances `filter` selects, each as [`Provider::delete_instance`]
    /// without force would (sub-orchestrations and everything queued go too); returns the
    /// instances removed and what went with them.
    async fn delete_instances(&self, filter: &DeleteFilter) -> Result<Removed> {
        let ids = self.finished_instances(filter).await?;
        let mut removed = Removed::default();
        let mut seen = std::collections::HashSet::new();
        for id in ids {
            if seen.contains(&id) {
                continue;
            }
            if let Deletion::Deleted(tree) = self.delete_instance(&id, false).await? {
                seen.extend(tree.ids.iter().cloned());
                removed.add(tree);
            }
        }
        Ok(removed)
    }
    /// The ids of finished (Completed or Failed) instances `filter` selects, oldest finish
    /// first.
    async fn finished_instances(&self, filter: &DeleteFilter) -> Result<Vec<String>>;
    /// Removes the history of old executions of an instance: all but the `keep_last` most
    /// recent executions (the current one counts and is never removed), and of those only
    /// the ones whose last event is older than `completed_before`. Returns how many
    /// executions were removed.
    async fn prune_executions(
        &self,
        instance_id: &str,
        keep_last: Option<u32>,
        completed_before: Option<i64>,
    ) -> Result<u64>;

    // --- runtime ---
    /// Called once when a runtime starts on this store: takes what must be exclusive,
    /// removes dead runtimes from the registry (and `replace`, a runtime known to be dead:
    /// the previous process of the same `worker_node_id`) releasing their leases, and
    /// records this one. `StoreError::Locked` if a live runtime has the same
    /// `worker_node_id`.
    async fn attach_runtime(
        &self,
        runtime: &RuntimeRegistration,
        replace: Option<&str>,
    ) -> Result<Reaped>;
    /// Removes the runtime from the registry (its leases were given back already).
    async fn detach_runtime(&self, runtime_id: &str) -> Result<()>;
    /// Refreshes the runtime's heartbeat (recording it again if a peer removed it as dead)
    /// and, with `reap`, removes the runtimes whose heartbeat is stale, releasing their
    /// leases at once.
    async fn heartbeat(&self, runtime: &RuntimeRegistration, reap: bool) -> Result<Reaped>;
    /// The registry of runtimes, live and dead (not yet removed), oldest first.
    async fn list_runtimes(&self) -> Result<Vec<RuntimeInfo>>;
    /// Claims up to `max` instances with visible messages and no live lease, with their
    /// messages (deliveries + 1) and their current execution's history, read from where
    /// `known` says the claimer's copy ends.
    ///
    /// Only instances `claim.routing` lets the claimer take (the claim rule).
    async fn claim_orchestrations(
        &self,
        claim: &OrchestrationClaim,
    ) -> Result<Vec<OrchestrationItem>>;
    /// Commits a turn; `StoreError::LeaseLost` (and nothing written) if the generation moved.
    /// Returns the activities it claimed for `commit.claim` (leased, generation 1, first
    /// delivery), which no other claim will return while the lease holds.
    async fn commit_turn(&self, commit: TurnCommit) -> Result<Vec<ActivityItem>>;
    /// Releases an instance without a turn; its visible messages reappear after `delay_ms`.
    /// `count_delivery: false` gives the claim's delivery back (waiting is not failing).
    async fn abandon_orchestration(
        &self,
        instance_id: &str,
        generation: i64,
        delay_ms: i64,
        count_delivery: bool,
    ) -> Result<()>;
    /// Claims up to `max` visible activities that `routing` lets the claimer take (name,
    /// tag, session), oldest first; taking an activity of a session acquires the session
    /// for `routing.sessions.owner` (within `routing.sessions.max`).
    async fn claim_activities(
        &self,
        owner: &str,
        lease_ms: i64,
        max: usize,
        routing: &Routing,
    ) -> Result<Vec<ActivityItem>>;
    /// The names with queued work that no runtime has had within `live_ms` (none alive
    /// has them), with when one last had each and how many visible rows wait for it.
    async fn unserved_work(&self, live_ms: i64) -> Result<UnservedWork>;
    /// When a runtime last had this name (any version when `None`), by the registry of
    /// names; `None` when none ever did.
    async fn last_registered(
        &self,
        kind: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<i64>>;
    /// Records an activity's final outcome for its instance; `false` if the lease was lost
    /// or the activity was cancelled meanwhile (the result is dropped).
    async fn complete_activity(&self, item: &ActivityItem, result: ActivityResult) -> Result<bool> {
        let recorded = self
            .complete_activities(vec![(item.clone(), result)])
            .await?;
        Ok(recorded[0])
    }
    /// Records several final outcomes at once (one transaction), each fenced by its own
    /// row's generation as [`Provider::complete_activity`] describes; one `bool` per item,
    /// in order.
    async fn complete_activities(
        &self,
        outcomes: Vec<(ActivityItem, ActivityResult)>,
    ) -> Result<Vec<bool>>;
    /// Like [`Provider::complete_activities`], and claims for `claim.owner` (at most
    /// `claim.max`) the instances the recorded outcomes woke, in the same transaction where
    /// the backend can (then no dispatcher has to wake up and claim them). The default
    /// claims nothing.
    async fn complete_activities_and_claim(
        &self,
        outcomes: Vec<(ActivityItem, ActivityResult)>,
        claim: &OrchestrationClaim,
    ) -> Result<(Vec<bool>, Vec<OrchestrationItem>)> {
        let _ = claim;
        Ok((self.complete_activities(outcomes).await?, Vec::new()))
    }
    /// Makes a failed attempt visible again at `visible_at` as attempt `next_attempt`.
    async fn retry_activity(
        &self,
        item: &ActivityItem,
        visible_at: i64,
        next_attempt: u32,
    ) -> Result<bool>;
    /// Releases an activity lease so the activity runs again after `delay_ms`.
    async fn abandon_activity(&self, item: &ActivityItem, delay_ms: i64) -> Result<()>;
    /// Extends the given leases; returns the ones that were lost.
    async fn renew_leases(&self, leases: &[Lease], lease_ms: i64) -> Result<Vec<Lease>>;
    /// The earliest future time at which queued work becomes visible.
    async fn next_due(&self) -> Result<Option<i64>>;

    // Jobs (`jobs.rs`): what a running attempt records, fenced by its activity's generation.

    /// Starts an attempt: takes the run's concurrency key when it is free (or it is `Blocked`),
    /// marks the run started, and returns its recorded steps.
    async fn job_begin(&self, fence: JobFence, key: Option<String>) -> Result<JobBegin>;
    /// Records steps, progress and log lines; `false` when the attempt's lease is lost.
    async fn job_write(&self, fence: JobFence, writes: Vec<JobWrite>) -> Result<bool>;
    /// Step `name` awaits `event`: receives its kept payload, waits (until `deadline`), or,
    /// with `give_up`, fails with a timeout.
    async fn job_await(
        &self,
        fence: JobFence,
        name: String,
        event: String,
        deadline: Option<i64>,
        give_up: bool,
    ) -> Result<JobAwait>;
    /// Keeps `payload` as the event's last and completes every step waiting for it, waking
    /// their runs; returns how many.
    async fn job_emit(&self, event: String, payload: String) -> Result<u64>;
    async fn job_clear_event(&self, event: String) -> Result<bool>;
    /// The run joins the queue of concurrency key `key` (at trigger, so the queue keeps
    /// trigger order); a no-op when it is in it already.
    async fn job_queue_key(&self, instance_id: String, key: String) -> Result<()>;
    /// The run leaves the queues of its concurrency keys; each key's next run is woken.
    async fn job_release(&self, instance_id: String) -> Result<()>;
    /// Forgets the run's failed and retrying steps (before a retry of the run).
    async fn job_reset(&self, instance_id: String) -> Result<u64>;
    async fn job_state(&self, instance_id: String) -> Result<JobState>;
    async fn job_logs(
        &self,
        instance_id: String,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<JobLog>>;

    /// The store's own counters, for metrics (`store_operations / store_transactions` is the
    /// mean write batch where the store batches writes).
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// How often a waiting client must re-read an instance to see commits made by other
    /// processes; `None` when every commit that matters signals this process's [`Wakers`].
    fn foreign_commit_poll(&self) -> Option<std::time::Duration>;
}

pub type SharedProvider = Arc<dyn Provider>;
