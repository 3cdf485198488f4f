//! The writes of one turn, as the store commits them.

use crate::engine::history::{Event, Message, ParentLink, Payload, RetryPolicy, TaskError};

/// An activity to enqueue.
#[derive(Debug, Clone)]
pub struct ActivityRequest {
    pub task: u32,
    pub name: String,
    pub input: Payload,
    pub retry: Option<RetryPolicy>,
    pub session_id: Option<String>,
    pub tag: Option<String>,
    /// The orchestration that scheduled it (what `ActivityContext` reports).
    pub orchestration: String,
    pub orchestration_version: Option<String>,
}

/// A write to the instance's key-value store, applied in order at commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvWrite {
    Set { key: String, value: String },
    Clear { key: String },
    ClearAll,
}

/// A timer to enqueue (a `TimerFired` message to this instance, visible at `fire_at`).
#[derive(Debug, Clone)]
pub struct TimerRequest {
    pub task: u32,
    pub fire_at: i64,
}

/// An instance to create (a child or a detached orchestration).
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub instance_id: String,
    pub name: String,
    pub version: Option<String>,
    pub input: Payload,
    pub parent: Option<ParentLink>,
}

/// A message for another instance (or this one's next execution).
#[derive(Debug, Clone)]
pub struct Outbound {
    pub instance_id: String,
    pub message: Message,
}

/// How the execution ended this turn.
#[derive(Debug, Clone)]
pub enum Terminal {
    Completed(Payload),
    Failed(TaskError),
    ContinuedAsNew,
}

/// The writes of one turn, committed atomically by the store.
#[derive(Debug, Clone, Default)]
pub struct TurnOutcome {
    /// Events to append, in order, after the current history.
    pub events: Vec<Event>,
    /// Queue messages this turn consumed.
    pub consumed: Vec<i64>,
    /// Set when the execution started this turn.
    pub started: Option<(String, Option<String>)>,
    pub terminal: Option<Terminal>,
    pub custom_status: Option<Payload>,
    /// Key-value writes, in the order the code made them.
    pub kv: Vec<KvWrite>,
    pub activities: Vec<ActivityRequest>,
    pub timers: Vec<TimerRequest>,
    pub starts: Vec<StartRequest>,
    pub messages: Vec<Outbound>,
    /// Queued activities and timers of this execution to delete (race losers).
    pub canceled_activities: Vec<u32>,
    pub canceled_timers: Vec<u32>,
}

impl TurnOutcome {
    /// Whether the instance's row changes beyond its lock (status, custom status, name).
    pub fn changes_instance(&self) -> bool {
        self.terminal.is_some() || self.custom_status.is_some() || self.started.is_some()
    }
}
