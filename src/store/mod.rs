//! Storage: the `Provider` trait every backend implements, and the SQLite and PostgreSQL
//! providers. Knows nothing of napi; SQL lives only here.

pub mod postgres;
pub mod sqlite;
pub mod watch;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::engine::{
    payload_from_str, plan_rewind, HistoryRow, Message, Payload, QueuedMessage, RetryPolicy,
    RewindPlan, StartRequest, TaskError, Terminal, TurnOutcome,
};

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

/// A store clock kept in this process: the system clock plus an offset that only
/// [`Provider::shift_clock`] moves.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// Epoch milliseconds of this clock.
    pub fn now_ms(&self) -> i64 {
        now_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    pub fn shift(&self, by_ms: i64) {
        self.offset_ms.fetch_add(by_ms, Ordering::Relaxed);
    }
}

/// In-process wake-ups, signalled after commits so nothing has to poll within a process.
#[derive(Default)]
pub struct Wakers {
    /// Orchestration messages became visible.
    pub orchestrations: Notify,
    /// Activities were enqueued.
    pub activities: Notify,
    /// Per-instance watchers of status and custom status: only such a change wakes them.
    watchers: std::sync::Mutex<std::collections::HashMap<String, Arc<Notify>>>,
    /// Per-instance followers of everything (history appended, activity attempts): kept
    /// apart so that status waiters are not woken by every turn.
    followers: std::sync::Mutex<std::collections::HashMap<String, Arc<Notify>>>,
}

fn subscribe(
    map: &std::sync::Mutex<std::collections::HashMap<String, Arc<Notify>>>,
    instance_id: &str,
) -> Arc<Notify> {
    map.lock()
        .unwrap()
        .entry(instance_id.to_owned())
        .or_default()
        .clone()
}

fn unsubscribe(
    map: &std::sync::Mutex<std::collections::HashMap<String, Arc<Notify>>>,
    instance_id: &str,
    notify: Arc<Notify>,
) {
    let mut map = map.lock().unwrap();
    drop(notify);
    if map
        .get(instance_id)
        .is_some_and(|n| Arc::strong_count(n) == 1)
    {
        map.remove(instance_id);
    }
}

fn wake(map: &std::sync::Mutex<std::collections::HashMap<String, Arc<Notify>>>, id: &str) {
    if let Some(n) = map.lock().unwrap().get(id) {
        n.notify_waiters();
    }
}

impl Wakers {
    /// A Notify woken whenever `instance_id`'s status or custom status changes; pair with
    /// [`Wakers::unwatch`].
    pub fn watch(&self, instance_id: &str) -> Arc<Notify> {
        subscribe(&self.watchers, instance_id)
    }

    pub fn unwatch(&self, instance_id: &str, notify: Arc<Notify>) {
        unsubscribe(&self.watchers, instance_id, notify)
    }

    /// A Notify woken by anything that happens to `instance_id` (a commit, an activity
    /// attempt starting or being retried); pair with [`Wakers::unfollow`].
    pub fn follow(&self, instance_id: &str) -> Arc<Notify> {
        subscribe(&self.followers, instance_id)
    }

    pub fn unfollow(&self, instance_id: &str, notify: Arc<Notify>) {
        unsubscribe(&self.followers, instance_id, notify)
    }

    /// The instance's status or custom status changed (followers hear it too).
    pub fn instance_changed(&self, instance_id: &str) {
        wake(&self.watchers, instance_id);
        wake(&self.followers, instance_id);
    }

    /// Something happened to the instance that only followers care about.
    pub fn instance_progressed(&self, instance_id: &str) {
        wake(&self.followers, instance_id);
    }

    /// Wakes every instance watcher, so each re-reads its instance (after changes this
    /// process may have missed, e.g. while a notification connection was down).
    pub fn all_instances_changed(&self) {
        for map in [&self.watchers, &self.followers] {
            for n in map.lock().unwrap().values() {
                n.notify_waiters();
            }
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

/// Where a page of [`Provider::list_instances`] starts: just after this row in
/// `(created_at, instance_id)` order (instance ids compare bytewise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    pub created_at: i64,
    pub instance_id: String,
}

/// Which instances [`Provider::list_instances`] returns; every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    /// `Running`, `Completed` or `Failed`.
    pub status: Option<String>,
    pub name: Option<String>,
    /// Created strictly after this time (epoch ms).
    pub created_after: Option<i64>,
    /// Created strictly before this time (epoch ms).
    pub created_before: Option<i64>,
    /// Sub-orchestrations of this instance.
    pub parent_id: Option<String>,
    /// Most rows in the page (at least 1).
    pub limit: u32,
    /// Continue after this row (the previous page's `next_cursor`).
    pub cursor: Option<PageCursor>,
}

/// A page of instances in `(created_at, instance_id)` order.
#[derive(Debug, Clone)]
pub struct InstancePage {
    pub instances: Vec<InstanceInfo>,
    /// The last row of this page when more rows followed it when the page was read.
    pub next_cursor: Option<PageCursor>,
}

/// One execution of an instance (a new one starts at each continue-as-new).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionInfo {
    pub execution_id: u64,
    /// Timestamps of its first and last history events (`None` while it has none).
    pub first_event_at: Option<i64>,
    pub last_event_at: Option<i64>,
    pub event_count: u64,
}

/// Instance counts by status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemMetrics {
    pub total: u64,
    pub running: u64,
    pub completed: u64,
    pub failed: u64,
}

/// Queued rows, as of the store's clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueDepths {
    /// Orchestrator messages visible now.
    pub orchestrator_visible: u64,
    /// Orchestrator messages visible later (timers, abandoned messages).
    pub orchestrator_delayed: u64,
    /// Activities claimable now.
    pub worker_visible: u64,
    /// Activities under a lease (running).
    pub worker_running: u64,
    /// Activities waiting for a retry or a redelivery.
    pub worker_delayed: u64,
}

/// An activity row of an instance as it is now: its attempt, and whether a worker holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityAttempt {
    pub execution_id: u64,
    pub task: u32,
    pub name: String,
    pub attempt: u32,
    /// Under a live lease: a worker is running this attempt.
    pub running: bool,
    /// When the attempt may start (later than now while a retry waits out its delay).
    pub visible_at: i64,
}

/// Which finished instances [`Provider::delete_instances`] removes. Running instances are
/// never removed; every given field narrows the selection.
#[derive(Debug, Clone, Default)]
pub struct DeleteFilter {
    pub ids: Option<Vec<String>>,
    /// Finished (last updated) strictly before this time (epoch ms).
    pub completed_before: Option<i64>,
    /// `Completed` or `Failed`.
    pub status: Option<String>,
    /// Most instances selected (their sub-orchestrations go with them).
    pub limit: Option<u32>,
}

/// The instance-row columns a turn sets; both backends store them alike.
#[derive(Debug, Default)]
pub struct InstanceUpdate {
    pub status: Option<&'static str>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub error_code: Option<String>,
    /// Continue-as-new: the execution id moves to the next one.
    pub continued: bool,
    /// Set when the execution started this turn.
    pub name: Option<String>,
    pub version: Option<String>,
}

impl InstanceUpdate {
    pub fn of(out: &TurnOutcome) -> Self {
        let mut update = match &out.terminal {
            Some(Terminal::Completed(v)) => InstanceUpdate {
                status: Some("Completed"),
                output: Some(v.get().to_owned()),
                ..Default::default()
            },
            Some(Terminal::Failed(e)) => InstanceUpdate {
                status: Some("Failed"),
                error: Some(e.message.clone()),
                error_code: Some(
                    e.code
                        .clone()
                        .unwrap_or_else(|| "ERR_ORCHESTRATION_FAILED".into()),
                ),
                ..Default::default()
            },
            Some(Terminal::ContinuedAsNew) => InstanceUpdate {
                continued: true,
                ..Default::default()
            },
            None => InstanceUpdate::default(),
        };
        if let Some((name, version)) = &out.started {
            update.name = Some(name.clone());
            update.version = version.clone();
        }
        update
    }
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
    /// Claim the turn's first activities for the committing runtime as they are written.
    pub claim: Option<DirectClaim>,
}

/// Instances a store call may claim for a runtime along the way.
#[derive(Debug, Clone)]
pub struct OrchestrationClaim {
    pub owner: String,
    pub lease_ms: i64,
    pub max: usize,
}

/// Activities a commit claims for its own runtime, saving a separate claim and its wake-up.
#[derive(Debug, Clone)]
pub struct DirectClaim {
    pub owner: String,
    pub lease_ms: i64,
    /// How many of the turn's activities (its first ones, in order).
    pub count: usize,
}

/// The items a commit claimed directly, built from what it wrote (`seq` by task).
pub fn directly_claimed(c: &TurnCommit, seqs: &[(u32, i64)]) -> Vec<ActivityItem> {
    let count = c.claim.as_ref().map_or(0, |d| d.count);
    c.outcome
        .activities
        .iter()
        .take(count)
        .filter_map(|a| {
            let seq = seqs.iter().find(|(task, _)| *task == a.task)?.1;
            Some(ActivityItem {
                seq,
                generation: 1,
                instance_id: c.instance_id.clone(),
                execution_id: c.execution_id,
                task: a.task,
                name: a.name.clone(),
                input: a.input.get().to_owned(),
                attempt: 1,
                retry: a.retry.clone(),
                deliveries: 1,
                created_at: c.now,
            })
        })
        .collect()
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

impl ActivityResult {
    /// The message that reports this outcome of `item` to its instance.
    pub fn message(self, item: &ActivityItem) -> Message {
        match self {
            ActivityResult::Completed(result) => Message::ActivityCompleted {
                execution_id: item.execution_id,
                task: item.task,
                result,
            },
            ActivityResult::Failed(error) => Message::ActivityFailed {
                execution_id: item.execution_id,
                task: item.task,
                error,
            },
        }
    }
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
    /// Moves the store's clock forward by `by_ms` (backward when negative), for tests that
    /// reach timers, delays and lease expiries without waiting. Every reader of this store
    /// sees it: on PostgreSQL every connection to the schema, on SQLite this provider.
    async fn shift_clock(&self, by_ms: i64) -> Result<()>;

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
    /// Removes the finished instances `filter` selects, each as [`Provider::delete_instance`]
    /// without force would (sub-orchestrations and everything queued go too); returns the
    /// ids removed.
    async fn delete_instances(&self, filter: &DeleteFilter) -> Result<Vec<String>> {
        let ids = self.finished_instances(filter).await?;
        let mut removed = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for id in ids {
            if seen.contains(&id) {
                continue;
            }
            if let Deletion::Deleted(tree) = self.delete_instance(&id, false).await? {
                for t in tree {
                    if seen.insert(t.clone()) {
                        removed.push(t);
                    }
                }
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
    async fn claim_activities(
        &self,
        owner: &str,
        lease_ms: i64,
        max: usize,
    ) -> Result<Vec<ActivityItem>>;
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

    /// The store's own counters, for metrics (`store_operations / store_transactions` is the
    /// mean write batch where the store batches writes).
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// How often a waiting client must re-read an instance to see commits made by other
    /// processes; `None` when every commit that matters signals this process's [`Wakers`].
    fn foreign_commit_poll(&self) -> Option<std::time::Duration>;
}

/// Which of an instance's old executions [`Provider::prune_executions`] removes, from the
/// current execution id and each old execution's id and last event time.
pub fn executions_to_prune(
    current: u64,
    executions: &[(u64, i64)],
    keep_last: Option<u32>,
    completed_before: Option<i64>,
) -> Vec<u64> {
    let keep = u64::from(keep_last.unwrap_or(1).max(1));
    executions
        .iter()
        .filter(|(e, last)| {
            e + keep <= current && completed_before.is_none_or(|before| *last < before)
        })
        .map(|(e, _)| *e)
        .collect()
}

pub type SharedProvider = Arc<dyn Provider>;

/// Why [`retry_instance`] did nothing.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("no instance '{0}'")]
    NotFound(String),
    /// Only a Failed instance can be retried.
    #[error("instance '{0}' is {1}; only a Failed instance can be retried")]
    NotFailed(String, String),
    #[error("instance '{0}' cannot be retried: {1}")]
    Unretryable(String, String),
    /// It changed between reading and rewinding (retried or deleted meanwhile).
    #[error("instance '{0}' changed while it was being retried; look at it again")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The result a completed child reports to its parent's execution and task.
fn child_completed(child: &InstanceInfo, execution_id: u64, task: u32) -> Result<Message> {
    let output = payload_from_str(child.output.as_deref().unwrap_or("null"))
        .map_err(|e| StoreError::Corrupt(format!("output of '{}': {e}", child.instance_id)))?;
    Ok(Message::ChildCompleted {
        execution_id,
        task,
        output,
    })
}

/// Re-runs a Failed instance from its last good point (see [`crate::engine::plan_rewind`]):
/// activities that succeeded before the failure are not run again. Failed sub-orchestrations
/// the instance still waits for are retried too, after it. Returns the ids retried, the
/// instance's first.
pub async fn retry_instance(
    provider: &dyn Provider,
    instance_id: &str,
) -> std::result::Result<Vec<String>, RetryError> {
    let id = instance_id.to_owned();
    let info = provider
        .instance(&id)
        .await?
        .ok_or_else(|| RetryError::NotFound(id.clone()))?;
    if info.status != "Failed" {
        return Err(RetryError::NotFailed(id, info.status));
    }
    let history = provider.history(&id, Some(info.execution_id)).await?;
    let mut plan = plan_rewind(info.execution_id, &history)
        .map_err(|why| RetryError::Unretryable(id.clone(), why))?;
    let mut failed_children = Vec::new();
    let mut running_children = Vec::new();
    for (task, child_id) in &plan.open_children {
        let child = provider.instance(child_id).await?.ok_or_else(|| {
            RetryError::Unretryable(
                id.clone(),
                format!("its sub-orchestration '{child_id}' was deleted"),
            )
        })?;
        if child.parent_instance_id.as_deref() != Some(id.as_str()) {
            // The id was taken by another instance (the child was never started).
            return Err(RetryError::Unretryable(
                id,
                format!("the instance '{child_id}' it waits for is not its sub-orchestration"),
            ));
        }
        match child.status.as_str() {
            // Its result was dropped while the parent was failed: deliver it again.
            "Completed" => {
                let message = child_completed(&child, info.execution_id, *task)?;
                plan.messages.push((message, None));
            }
            "Failed" => {
                let child_history = provider.history(child_id, Some(child.execution_id)).await?;
                plan_rewind(child.execution_id, &child_history).map_err(|why| {
                    RetryError::Unretryable(
                        id.clone(),
                        format!("its sub-orchestration '{child_id}' cannot be retried: {why}"),
                    )
                })?;
                failed_children.push(child_id.clone());
            }
            // Running: it reports when it ends.
            _ => running_children.push((*task, child_id.clone())),
        }
    }
    if !provider
        .rewind_instance(&id, &plan, info.updated_at)
        .await?
    {
        return Err(RetryError::Conflict(id));
    }
    // A child that ended between the read above and the rewind reported to a failed parent
    // (its result was dropped): deliver it again. A second delivery is dropped by the engine.
    for (task, child_id) in running_children {
        let Some(child) = provider.instance(&child_id).await? else {
            continue;
        };
        let message = match child.status.as_str() {
            "Completed" => child_completed(&child, info.execution_id, task)?,
            "Failed" => Message::ChildFailed {
                execution_id: info.execution_id,
                task,
                error: TaskError {
                    message: child.error.unwrap_or_default(),
                    code: child.error_code,
                    name: None,
                },
            },
            _ => continue,
        };
        provider.enqueue(&id, &message).await?;
    }
    let mut retried = vec![id];
    for child in failed_children {
        retried.extend(Box::pin(retry_instance(provider, &child)).await?);
    }
    Ok(retried)
}
