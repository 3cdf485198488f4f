//! The types the `Provider` trait speaks in, the same for every backend.

use crate::engine::{
    HistoryRow, Message, Payload, QueuedMessage, RetryPolicy, TaskError, TurnOutcome,
};

#[cfg(doc)]
use super::Provider;

/// The status stored on an instance row, one vocabulary for every public face (each face
/// reads it through the table in `client::status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredStatus {
    /// Stored, never claimed: no turn has run yet.
    Pending,
    Running,
    Completed,
    Failed,
    /// Ended by a cancellation (`cancelInstance`, a canceled parent).
    Canceled,
}

impl StoredStatus {
    pub const ALL: [StoredStatus; 5] = [
        StoredStatus::Pending,
        StoredStatus::Running,
        StoredStatus::Completed,
        StoredStatus::Failed,
        StoredStatus::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StoredStatus::Pending => "Pending",
            StoredStatus::Running => "Running",
            StoredStatus::Completed => "Completed",
            StoredStatus::Failed => "Failed",
            StoredStatus::Canceled => "Canceled",
        }
    }

    pub fn parse(text: &str) -> Option<StoredStatus> {
        StoredStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// How the generator API shows it (`client::status` holds the table's tests).
    pub fn generator_face(self) -> &'static str {
        GENERATOR_FACE
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, face)| *face)
            .expect("every stored status has a face")
    }

    /// The instance has not ended: it can still be claimed, canceled, waited on.
    pub fn is_active(text: &str) -> bool {
        matches!(
            StoredStatus::parse(text),
            Some(StoredStatus::Pending | StoredStatus::Running)
        )
    }

    /// The instance ended, one way or another.
    pub fn is_finished(text: &str) -> bool {
        !StoredStatus::is_active(text)
    }

    /// It ended without an output: failed or canceled (a rewind can retry it).
    pub fn is_failure(text: &str) -> bool {
        matches!(
            StoredStatus::parse(text),
            Some(StoredStatus::Failed | StoredStatus::Canceled)
        )
    }
}

/// `(stored, as the generator API shows it)`, for every stored status: the one table each
/// public face reads (the generator API keeps Running/Completed/Failed; a canceled instance
/// is `Failed` with `canceled: <reason>`).
pub const GENERATOR_FACE: [(StoredStatus, &str); 5] = [
    (StoredStatus::Pending, "Running"),
    (StoredStatus::Running, "Running"),
    (StoredStatus::Completed, "Completed"),
    (StoredStatus::Failed, "Failed"),
    (StoredStatus::Canceled, "Failed"),
];

/// An instance as the client sees it.
#[derive(Debug, Clone)]
pub struct InstanceInfo {
    pub instance_id: String,
    pub name: String,
    pub version: Option<String>,
    /// A [`StoredStatus`] name.
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
    /// Any of these stored statuses (empty: any status).
    pub statuses: Vec<String>,
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
    /// Executions started (continue-as-new starts one more), and history events stored.
    pub executions: u64,
    pub events: u64,
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
    /// Any of these stored statuses of finished instances (empty: any).
    pub statuses: Vec<String>,
    /// Most instances selected (their sub-orchestrations go with them).
    pub limit: Option<u32>,
}

/// A claimed instance: its current execution's history and its visible messages.
#[derive(Debug)]
pub struct OrchestrationItem {
    pub instance_id: String,
    pub execution_id: u64,
    pub generation: i64,
    pub name: String,
    pub created_at: i64,
    /// The history from event id `history_from` on: from 1 (all of it), or from the last
    /// event the claimer said it knows ([`KnownHistories`]).
    pub history: Vec<HistoryRow>,
    pub history_from: u64,
    pub messages: Vec<QueuedMessage>,
    /// The claim's timestamp from the store's clock: the turn's `utcNow`.
    pub now: i64,
}

impl OrchestrationItem {
    /// How many events the execution's history holds (not only the ones read).
    pub fn history_len(&self) -> u64 {
        self.history_from - 1 + self.history.len() as u64
    }
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
    pub known: KnownHistories,
    /// Which instances the runtime may take.
    pub routing: std::sync::Arc<Routing>,
}

/// How much of an instance's history a claimer already holds: `(execution_id, length)`.
/// A claim then returns that execution's events from id `length` on (the last known one
/// again, so the claimer can check it is unchanged) instead of the whole history.
#[derive(Clone)]
pub struct KnownHistories(std::sync::Arc<KnownFn>);

type KnownFn = dyn Fn(&str) -> Option<(u64, u64)> + Send + Sync;

impl KnownHistories {
    pub fn new(known: impl Fn(&str) -> Option<(u64, u64)> + Send + Sync + 'static) -> Self {
        KnownHistories(std::sync::Arc::new(known))
    }

    /// Knows nothing: claims return whole histories.
    pub fn none() -> Self {
        KnownHistories::new(|_| None)
    }

    /// The event id to read `instance_id`'s history from, in `execution_id`.
    pub fn read_from(&self, instance_id: &str, execution_id: u64) -> u64 {
        match (self.0)(instance_id) {
            Some((execution, len)) if execution == execution_id && len > 0 => len,
            _ => 1,
        }
    }
}

impl std::fmt::Debug for KnownHistories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KnownHistories")
    }
}

/// Activities a commit claims for its own runtime, saving a separate claim and its wake-up.
#[derive(Debug, Clone)]
pub struct DirectClaim {
    pub owner: String,
    pub lease_ms: i64,
    /// How many of the turn's activities (its first ones, in order).
    pub count: usize,
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
    /// The orchestration that scheduled it, and its routing: session and tag.
    pub orchestration: String,
    pub orchestration_version: Option<String>,
    pub session_id: Option<String>,
    pub tag: Option<String>,
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
    Deleted(Removed),
}

/// What a deletion removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// The instances: the one asked for and its sub-orchestrations.
    pub ids: Vec<String>,
    /// Executions that had history.
    pub executions: u64,
    pub events: u64,
    /// Orchestrator and activity queue rows.
    pub queue_messages: u64,
}

impl Removed {
    pub fn add(&mut self, other: Removed) {
        self.ids.extend(other.ids);
        self.executions += other.executions;
        self.events += other.events;
        self.queue_messages += other.queue_messages;
    }
}

/// A runtime as it records itself in the registry of runtimes.
#[derive(Debug, Clone)]
pub struct RuntimeRegistration {
    /// The runtime's lease owner name.
    pub runtime_id: String,
    /// The stable name a deployment gives this process (one live runtime per name).
    pub worker_node_id: Option<String>,
    pub host: String,
    pub pid: u32,
    /// A heartbeat older than this makes the runtime dead.
    pub stale_after_ms: i64,
    /// What it can run, as JSON: `{"orchestrations":[{"name","versions"}],"activities":[..]}`.
    pub capabilities: String,
    /// The same as `(kind, name, version)` rows of the registry of names (version `""`
    /// for activities), refreshed with every heartbeat.
    pub names: Vec<(String, String, String)>,
}

/// A row of the registry of runtimes.
#[derive(Debug, Clone)]
pub struct RuntimeInfo {
    pub runtime_id: String,
    pub worker_node_id: Option<String>,
    pub host: String,
    pub pid: i64,
    pub started_at: i64,
    pub heartbeat_at: i64,
    pub stale_after_ms: i64,
    pub capabilities: String,
    /// The store's clock when the row was read.
    pub now: i64,
}

impl RuntimeInfo {
    /// Whether its heartbeat is fresh.
    pub fn alive(&self) -> bool {
        self.now - self.heartbeat_at <= self.stale_after_ms
    }
}

/// Dead runtimes removed from the registry, and the leases of theirs that were released.
#[derive(Debug, Clone, Default)]
pub struct Reaped {
    pub runtimes: Vec<String>,
    pub instances: u64,
    pub activities: u64,
}

/// One key of an instance's key-value store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    pub key: String,
    pub value: String,
    /// When the turn that wrote it ran (epoch ms, the store's clock).
    pub updated_at: i64,
}

/// Sizes of one instance: its current execution's history, what is queued for it, its
/// key-value store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceStats {
    pub history_event_count: u64,
    /// Bytes of the events' stored data.
    pub history_size_bytes: u64,
    /// Orchestrator and activity queue rows of the instance.
    pub queue_pending_count: u64,
    pub kv_key_count: u64,
    /// Bytes of the values (UTF-8).
    pub kv_value_bytes: u64,
}

/// Which activities a runtime takes by tag (duroxide-node's `workerTagFilter`). A claim
/// takes an activity only when the filter accepts its tag (untagged: `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "mode", content = "tags", rename_all = "camelCase")]
pub enum TagFilter {
    /// Untagged activities only.
    #[default]
    DefaultOnly,
    Any,
    /// No activities at all.
    None,
    /// Only activities with one of these tags.
    Tags(Vec<String>),
    /// Untagged activities and those with one of these tags.
    DefaultAnd(Vec<String>),
}

impl TagFilter {
    pub fn accepts(&self, tag: Option<&str>) -> bool {
        let listed = |tags: &Vec<String>, t: &str| tags.iter().any(|x| x == t);
        match self {
            TagFilter::Any => true,
            TagFilter::None => false,
            TagFilter::DefaultOnly => tag.is_none(),
            TagFilter::Tags(tags) => tag.is_some_and(|t| listed(tags, t)),
            TagFilter::DefaultAnd(tags) => tag.is_none_or(|t| listed(tags, t)),
        }
    }

    /// The filter as a claim statement's parameters: `(any, untagged, tags)`, for
    /// `any OR (tag IS NULL AND untagged) OR tag IN tags`.
    pub fn claim_params(&self) -> (bool, bool, Vec<String>) {
        match self {
            TagFilter::Any => (true, true, Vec::new()),
            TagFilter::None => (false, false, Vec::new()),
            TagFilter::DefaultOnly => (false, true, Vec::new()),
            TagFilter::Tags(tags) => (false, false, tags.clone()),
            TagFilter::DefaultAnd(tags) => (false, true, tags.clone()),
        }
    }
}

/// What a runtime may claim: the inputs of the one claim rule (docs/protocol.md, "The
/// claim rule"). An instance is claimable when its orchestration name is one the runtime
/// has (or an orphan) and its version, once fixed, is one the runtime has (or one no live
/// runtime has had for the grace period); an activity when its name is the runtime's (or
/// an orphan), its tag passes `tags`, and its session is free or the runtime's own.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// Orchestration names the runtime has, each with its versions.
    pub orchestrations: Vec<(String, Vec<String>)>,
    pub activities: Vec<String>,
    pub tags: TagFilter,
    /// Names with waiting work that no runtime ever had, or none has had for
    /// `unserved_grace_ms`: claimed only to fail that work with `ERR_NOT_REGISTERED`.
    pub orphans: Orphans,
    /// How long after the last runtime that had a version stopped its instances wait.
    pub unserved_grace_ms: i64,
    /// Orphans' work is claimed only once older than this.
    pub not_registered_grace_ms: i64,
    pub sessions: SessionRule,
}

/// Names with queued work that no runtime ever had, or none has had for the unserved grace
/// period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Orphans {
    pub orchestrations: Vec<String>,
    pub activities: Vec<String>,
}

/// How a runtime holds activity sessions.
#[derive(Debug, Clone)]
pub struct SessionRule {
    /// The sessions' owner: the runtime's `worker_node_id`, else its runtime id (a process
    /// restarted with the same node id takes its sessions back).
    pub owner: String,
    /// Sessions it may hold at once.
    pub max: u32,
    /// A session with nothing running and no claim for this long is free for any worker.
    pub idle_ms: i64,
}

impl Default for SessionRule {
    fn default() -> Self {
        SessionRule {
            owner: String::new(),
            max: 10,
            idle_ms: 300_000,
        }
    }
}

impl Routing {
    /// The runtime's `(name, version)` pairs, as two parallel lists.
    pub fn orchestration_versions(&self) -> (Vec<String>, Vec<String>) {
        self.orchestrations
            .iter()
            .flat_map(|(name, versions)| versions.iter().map(move |v| (name.clone(), v.clone())))
            .unzip()
    }
}

/// Kinds of names in the registry of names.
pub const ORCHESTRATION_KIND: &str = "orchestration";
pub const ACTIVITY_KIND: &str = "activity";

/// A name with waiting work that no live runtime has now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnservedName {
    /// [`ORCHESTRATION_KIND`] or [`ACTIVITY_KIND`].
    pub kind: String,
    pub name: String,
    /// When a runtime last had it; `None`: never.
    pub last_seen_at: Option<i64>,
    /// Visible queue rows waiting for it.
    pub waiting: u64,
}

/// Work that no live runtime can run, read with the store's clock.
#[derive(Debug, Clone, Default)]
pub struct UnservedWork {
    pub names: Vec<UnservedName>,
    pub now: i64,
}
