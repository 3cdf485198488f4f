//! Storage: the `Provider` trait every backend implements, and the SQLite and PostgreSQL
//! providers. Knows nothing of napi; SQL lives only here.

pub mod postgres;
pub mod sqlite;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::engine::{
    HistoryRow, Message, Payload, QueuedMessage, RetryPolicy, StartRequest, TaskError, TurnOutcome,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The instance or activity lease was lost (expired and taken, or fenced by generation).
    #[error("lease lost: {0}")]
    LeaseLost(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Another runtime already holds this database.
    #[error("{0}")]
    Locked(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("the store is closed")]
    Closed,
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Epoch milliseconds from this machine's clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// In-process wake-ups, signalled after commits so nothing has to poll within a process.
#[derive(Default)]
pub struct Wakers {
    /// Orchestration messages became visible.
    pub orchestrations: Notify,
    /// Activities were enqueued.
    pub activities: Notify,
    /// Per-instance watchers: only a change to that instance wakes them.
    watchers: std::sync::Mutex<std::collections::HashMap<String, Arc<Notify>>>,
}

impl Wakers {
    /// A Notify woken whenever `instance_id`'s status or custom status changes; pair with
    /// [`Wakers::unwatch`].
    pub fn watch(&self, instance_id: &str) -> Arc<Notify> {
        self.watchers
            .lock()
            .unwrap()
            .entry(instance_id.to_owned())
            .or_default()
            .clone()
    }

    pub fn unwatch(&self, instance_id: &str, notify: Arc<Notify>) {
        let mut watchers = self.watchers.lock().unwrap();
        drop(notify);
        if watchers
            .get(instance_id)
            .is_some_and(|n| Arc::strong_count(n) == 1)
        {
            watchers.remove(instance_id);
        }
    }

    pub fn instance_changed(&self, instance_id: &str) {
        if let Some(n) = self.watchers.lock().unwrap().get(instance_id) {
            n.notify_waiters();
        }
    }

    /// Wakes every instance watcher, so each re-reads its instance (after changes this
    /// process may have missed, e.g. while a notification connection was down).
    pub fn all_instances_changed(&self) {
        for n in self.watchers.lock().unwrap().values() {
            n.notify_waiters();
        }
    }
}

/// An instance as the client sees it.
#[derive(Debug, Clone)]
pub struct InstanceInfo {
    pub instance_id: String,
    pub name: String,
    pub version: Option<String>,
    /// `Running`, `Completed` or `Failed`.
    pub status: String,
    pub execution_id: u64,
    pub input: Option<String>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub error_code: Option<String>,
    pub custom_status: Option<String>,
    pub custom_status_version: i64,
    pub parent_instance_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A claimed instance: its current execution's history and its visible messages.
#[derive(Debug)]
pub struct OrchestrationItem {
    pub instance_id: String,
    pub execution_id: u64,
    pub generation: i64,
    pub name: String,
    pub created_at: i64,
    pub history: Vec<HistoryRow>,
    pub messages: Vec<QueuedMessage>,
    /// The claim's timestamp from the store's clock: the turn's `utcNow`.
    pub now: i64,
}

/// One turn's writes, committed atomically and only while the lease is still held.
#[derive(Debug)]
pub struct TurnCommit {
    pub instance_id: String,
    pub execution_id: u64,
    pub generation: i64,
    pub now: i64,
    /// The event id of the first event in `outcome.events`.
    pub first_event_id: u64,
    pub outcome: TurnOutcome,
}

/// A claimed activity.
#[derive(Debug, Clone)]
pub struct ActivityItem {
    pub seq: i64,
    pub generation: i64,
    pub instance_id: String,
    pub execution_id: u64,
    pub task: u32,
    pub name: String,
    pub input: String,
    pub attempt: u32,
    pub retry: Option<RetryPolicy>,
    pub deliveries: u32,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub enum ActivityResult {
    Completed(Payload),
    Failed(TaskError),
}

/// A lease on an orchestration instance or an activity row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Lease {
    Instance(String, i64),
    Activity(i64, i64),
}

/// What [`Provider::delete_instance`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// No such instance (anything queued for the id was removed all the same).
    NotFound,
    /// The instance is running and `force` was not given: nothing was removed.
    Running,
    /// These instances (the one asked for and its sub-orchestrations) are gone.
    Deleted(Vec<String>),
}

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    fn wakers(&self) -> &Arc<Wakers>;

    /// The store's clock, epoch ms.
    async fn now(&self) -> Result<i64>;

    // --- client ---
    /// Creates the instance and its start message; `false` if the id already exists.
    async fn create_instance(&self, start: &StartRequest) -> Result<bool>;
    /// Queues a message for an instance (which may not exist yet: it waits for the start).
    async fn enqueue(&self, instance_id: &str, message: &Message) -> Result<()>;
    async fn instance(&self, instance_id: &str) -> Result<Option<InstanceInfo>>;
    /// The history of one execution (the current one when `None`).
    async fn history(
        &self,
        instance_id: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<HistoryRow>>;
    /// Removes an instance with its sub-orchestrations (recursively), their histories and
    /// everything queued for them. A running instance is refused unless `force`.
    async fn delete_instance(&self, instance_id: &str, force: bool) -> Result<Deletion>;

    // --- runtime ---
    /// Called once when a runtime starts on this store: takes what must be exclusive and
    /// reclaims leases a previous runtime of this owner left behind.
    async fn attach_runtime(&self, owner: &str) -> Result<()>;
    async fn detach_runtime(&self, owner: &str) -> Result<()>;
    async fn claim_orchestrations(
        &self,
        owner: &str,
        lease_ms: i64,
        max: usize,
    ) -> Result<Vec<OrchestrationItem>>;
    /// Commits a turn; `StoreError::LeaseLost` (and nothing written) if the generation moved.
    async fn commit_turn(&self, commit: TurnCommit) -> Result<()>;
    /// Releases an instance without a turn; its visible messages reappear after `delay_ms`.
    /// `count_delivery: false` gives the claim's delivery back (waiting is not failing).
    async fn abandon_orchestration(
        &self,
        instance_id: &str,
        generation: i64,
        delay_ms: i64,
        count_delivery: bool,
    ) -> Result<()>;
    async fn claim_activities(
        &self,
        owner: &str,
        lease_ms: i64,
        max: usize,
    ) -> Result<Vec<ActivityItem>>;
    /// Records an activity's final outcome for its instance; `false` if the lease was lost
    /// or the activity was cancelled meanwhile (the result is dropped).
    async fn complete_activity(&self, item: &ActivityItem, result: ActivityResult) -> Result<bool>;
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

    /// How often a waiting client must re-read an instance to see commits made by other
    /// processes; `None` when every commit that matters signals this process's [`Wakers`].
    fn foreign_commit_poll(&self) -> Option<std::time::Duration>;
}

pub type SharedProvider = Arc<dyn Provider>;
