//! The history model: what is stored for every execution, and the messages that feed it.
//!
//! Payloads (user values) are opaque JSON text (`RawValue`): the engine never re-encodes
//! them, so key order and number formatting survive exactly as the user's code wrote them.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Format version pinned in every execution's `ExecutionStarted` event.
pub const FORMAT_VERSION: u32 = 1;

/// A user value as JSON text.
pub type Payload = Box<RawValue>;

fn is_false(b: &bool) -> bool {
    !*b
}

/// The JSON `null` payload.
pub fn null_payload() -> Payload {
    RawValue::from_string("null".to_owned()).expect("null is valid JSON")
}

/// Parses JSON text into a payload, refusing text that is not one JSON value.
pub fn payload_from_str(text: &str) -> Result<Payload, serde_json::Error> {
    serde_json::from_str::<Payload>(text)
}

/// An error as it crosses between activities, orchestrations and the client.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TaskError {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl TaskError {
    pub fn new(message: impl Into<String>) -> Self {
        TaskError {
            message: message.into(),
            code: None,
            name: None,
        }
    }
    pub fn with_code(message: impl Into<String>, code: impl std::fmt::Display) -> Self {
        TaskError {
            message: message.into(),
            code: Some(code.to_string()),
            name: None,
        }
    }
}

/// How retry delays grow with the attempt number. Anything else is rejected where a policy
/// is read (the JavaScript side names the field; a stored policy that does not parse is a
/// protocol error).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    /// `initialDelayMs` every time.
    Fixed,
    /// `initialDelayMs × n` before retry n.
    Linear,
    /// `initialDelayMs × 2^(n-1)` before retry n.
    #[default]
    Exponential,
}

/// How a failed activity attempt is retried (worker side; jitter never enters replay).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    pub max_attempts: u32,
    #[serde(default)]
    pub backoff: Backoff,
    #[serde(default)]
    pub initial_delay_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Budget for all attempts together, from when the activity was scheduled: no attempt
    /// starts after it, and a running one is timed out when it runs out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_timeout_ms: Option<u64>,
    #[serde(default)]
    pub jitter: bool,
}

impl RetryPolicy {
    /// How long attempt `attempt_start` may run: its own timeout (else `default_ms`), cut
    /// to what is left of the total budget of an activity scheduled at `scheduled_at`.
    pub fn attempt_timeout(&self, default_ms: u64, scheduled_at: i64, now: i64) -> u64 {
        let own = self.timeout_ms.unwrap_or(default_ms);
        match self.total_timeout_ms {
            Some(total) => {
                let spent = now.saturating_sub(scheduled_at).max(0) as u64;
                own.min(total.saturating_sub(spent))
            }
            None => own,
        }
    }

    /// Whether a retry due at `retry_at` would start after the total budget of an activity
    /// scheduled at `scheduled_at`.
    pub fn out_of_time(&self, scheduled_at: i64, retry_at: i64) -> bool {
        self.total_timeout_ms.is_some_and(|total| {
            retry_at.saturating_sub(scheduled_at) > total.min(i64::MAX as u64) as i64
        })
    }

    /// Delay before attempt `next_attempt` (2 for the first retry), without jitter.
    pub fn delay_before(&self, next_attempt: u32) -> u64 {
        let n = next_attempt.saturating_sub(1).max(1) as u64;
        let base = self.initial_delay_ms;
        let delay = match self.backoff {
            Backoff::Fixed => base,
            Backoff::Linear => base.saturating_mul(n),
            Backoff::Exponential => base.saturating_mul(1u64 << (n - 1).min(40)),
        };
        match self.max_delay_ms {
            Some(max) => delay.min(max),
            None => delay,
        }
    }
}

/// Which task of which execution of which parent a child reports to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ParentLink {
    pub instance_id: String,
    pub execution_id: u64,
    pub task: u32,
}

/// An external event that arrived before anyone waited for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BufferedEvent {
    pub name: String,
    pub data: Payload,
}

/// One history event. Stored as a row: `kind` (the variant name), `task`, `ts` and the
/// variant's fields as JSON in `data`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all_fields = "camelCase")]
pub enum Event {
    ExecutionStarted {
        name: String,
        #[serde(default)]
        version: Option<String>,
        input: Payload,
        format: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<ParentLink>,
        /// Events carried over from the previous execution (continue-as-new).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        events: Vec<BufferedEvent>,
        /// Custom status carried over from the previous execution (continue-as-new).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        custom_status: Option<Payload>,
        /// The key-value store carried over from the previous execution (continue-as-new):
        /// `{key: {value, updatedAt}}`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kv: Option<Payload>,
    },
    ActivityScheduled {
        task: u32,
        name: String,
        input: Payload,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry: Option<RetryPolicy>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    ActivityCompleted {
        task: u32,
        result: Payload,
    },
    ActivityFailed {
        task: u32,
        error: TaskError,
    },
    TimerCreated {
        task: u32,
        fire_at: i64,
    },
    TimerFired {
        task: u32,
    },
    EventWaitStarted {
        task: u32,
        name: String,
    },
    EventRaised {
        name: String,
        data: Payload,
    },
    ChildScheduled {
        task: u32,
        name: String,
        instance_id: String,
        #[serde(default)]
        explicit_id: bool,
        input: Payload,
        #[serde(default)]
        version: Option<String>,
    },
    ChildCompleted {
        task: u32,
        output: Payload,
    },
    ChildFailed {
        task: u32,
        error: TaskError,
    },
    DetachedStarted {
        task: u32,
        name: String,
        instance_id: String,
        input: Payload,
        #[serde(default)]
        version: Option<String>,
    },
    TaskCanceled {
        task: u32,
    },
    CustomStatusSet {
        value: Payload,
    },
    /// A key of the instance's key-value store was set (values are strings).
    KvSet {
        key: String,
        value: String,
    },
    KvCleared {
        key: String,
    },
    KvClearedAll {},
    CancelRequested {
        reason: String,
    },
    ExecutionCompleted {
        output: Payload,
    },
    ExecutionFailed {
        error: TaskError,
        /// The engine failed the execution for the code (nondeterminism, poison, protocol,
        /// not registered): the code itself did not throw.
        #[serde(default, skip_serializing_if = "is_false")]
        by_engine: bool,
    },
    ContinuedAsNew {
        input: Payload,
        #[serde(default)]
        version: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        events: Vec<BufferedEvent>,
    },
    /// `retryInstance` put this failed execution back to work: `removed` events (the
    /// failure and what led to it) were taken out of history just before this one.
    ExecutionRetried {
        error: TaskError,
        removed: u64,
    },
}

impl Event {
    /// Every `kind`, in declaration order (`tests/vocabulary.rs` holds it to [`Event::kind`]
    /// and to `HistoryEvent.kind` in `index.d.ts`).
    pub const KINDS: [&'static str; 22] = [
        "ExecutionStarted",
        "ActivityScheduled",
        "ActivityCompleted",
        "ActivityFailed",
        "TimerCreated",
        "TimerFired",
        "EventWaitStarted",
        "EventRaised",
        "ChildScheduled",
        "ChildCompleted",
        "ChildFailed",
        "DetachedStarted",
        "TaskCanceled",
        "CustomStatusSet",
        "KvSet",
        "KvCleared",
        "KvClearedAll",
        "CancelRequested",
        "ExecutionCompleted",
        "ExecutionFailed",
        "ContinuedAsNew",
        "ExecutionRetried",
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            Event::ExecutionStarted { .. } => "ExecutionStarted",
            Event::ActivityScheduled { .. } => "ActivityScheduled",
            Event::ActivityCompleted { .. } => "ActivityCompleted",
            Event::ActivityFailed { .. } => "ActivityFailed",
            Event::TimerCreated { .. } => "TimerCreated",
            Event::TimerFired { .. } => "TimerFired",
            Event::EventWaitStarted { .. } => "EventWaitStarted",
            Event::EventRaised { .. } => "EventRaised",
            Event::ChildScheduled { .. } => "ChildScheduled",
            Event::ChildCompleted { .. } => "ChildCompleted",
            Event::ChildFailed { .. } => "ChildFailed",
            Event::DetachedStarted { .. } => "DetachedStarted",
            Event::TaskCanceled { .. } => "TaskCanceled",
            Event::CustomStatusSet { .. } => "CustomStatusSet",
            Event::KvSet { .. } => "KvSet",
            Event::KvCleared { .. } => "KvCleared",
            Event::KvClearedAll {} => "KvClearedAll",
            Event::CancelRequested { .. } => "CancelRequested",
            Event::ExecutionCompleted { .. } => "ExecutionCompleted",
            Event::ExecutionFailed { .. } => "ExecutionFailed",
            Event::ContinuedAsNew { .. } => "ContinuedAsNew",
            Event::ExecutionRetried { .. } => "ExecutionRetried",
        }
    }

    /// The task number the event belongs to, if any.
    pub fn task(&self) -> Option<u32> {
        match self {
            Event::ActivityScheduled { task, .. }
            | Event::ActivityCompleted { task, .. }
            | Event::ActivityFailed { task, .. }
            | Event::TimerCreated { task, .. }
            | Event::TimerFired { task }
            | Event::EventWaitStarted { task, .. }
            | Event::ChildScheduled { task, .. }
            | Event::ChildCompleted { task, .. }
            | Event::ChildFailed { task, .. }
            | Event::DetachedStarted { task, .. }
            | Event::TaskCanceled { task } => Some(*task),
            _ => None,
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Event::ExecutionCompleted { .. }
                | Event::ExecutionFailed { .. }
                | Event::ContinuedAsNew { .. }
        )
    }
}

/// Splits an externally tagged serde enum's JSON `{"Kind":{...}}` into its fields' JSON.
fn untag(json: String) -> String {
    // The serializer writes `{"` + kind + `":` + fields + `}` with no whitespace.
    let start = json.find("\":").map(|i| i + 2).unwrap_or(0);
    json[start..json.len() - 1].to_owned()
}

fn retag<T: for<'de> Deserialize<'de>>(kind: &str, data: &str) -> Result<T, serde_json::Error> {
    let mut text = String::with_capacity(kind.len() + data.len() + 6);
    text.push_str("{\"");
    text.push_str(kind);
    text.push_str("\":");
    text.push_str(data);
    text.push('}');
    serde_json::from_str(&text)
}

/// The `data` column for an event: its fields as JSON, without the kind.
pub fn event_data(event: &Event) -> String {
    untag(serde_json::to_string(event).expect("events always serialize"))
}

pub fn event_from_row(kind: &str, data: &str) -> Result<Event, serde_json::Error> {
    retag(kind, data)
}

/// One stored history row.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    /// Dense per execution, from 1.
    pub event_id: u64,
    /// The turn's timestamp (epoch ms, the store's clock).
    pub ts: i64,
    pub event: Event,
}

/// A message for an orchestration instance (its queue).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all_fields = "camelCase")]
pub enum Message {
    /// Starts an execution (a new instance, a child, or continue-as-new).
    Start {
        name: String,
        #[serde(default)]
        version: Option<String>,
        input: Payload,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<ParentLink>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        events: Vec<BufferedEvent>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        custom_status: Option<Payload>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kv: Option<Payload>,
    },
    ActivityCompleted {
        execution_id: u64,
        task: u32,
        result: Payload,
    },
    ActivityFailed {
        execution_id: u64,
        task: u32,
        error: TaskError,
    },
    TimerFired {
        execution_id: u64,
        task: u32,
    },
    Event {
        name: String,
        data: Payload,
    },
    ChildCompleted {
        execution_id: u64,
        task: u32,
        output: Payload,
    },
    ChildFailed {
        execution_id: u64,
        task: u32,
        error: TaskError,
    },
    Cancel {
        reason: String,
    },
    /// Written by `retryInstance` with the rewound history: runs the execution again.
    Retry {
        error: TaskError,
        removed: u64,
    },
}

impl Message {
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Start { .. } => "Start",
            Message::ActivityCompleted { .. } => "ActivityCompleted",
            Message::ActivityFailed { .. } => "ActivityFailed",
            Message::TimerFired { .. } => "TimerFired",
            Message::Event { .. } => "Event",
            Message::ChildCompleted { .. } => "ChildCompleted",
            Message::ChildFailed { .. } => "ChildFailed",
            Message::Cancel { .. } => "Cancel",
            Message::Retry { .. } => "Retry",
        }
    }
}

pub fn message_data(message: &Message) -> String {
    untag(serde_json::to_string(message).expect("messages always serialize"))
}

pub fn message_from_row(kind: &str, data: &str) -> Result<Message, serde_json::Error> {
    retag(kind, data)
}

/// A queued message as claimed from the store.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub seq: i64,
    /// How many times this message has been claimed (this claim included).
    pub deliveries: u32,
    pub message: Message,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_rows_round_trip_and_keep_payload_text() {
        let event = Event::ActivityScheduled {
            task: 3,
            name: "Greet".into(),
            input: payload_from_str(r#"{"b":1,"a":2.50}"#).unwrap(),
            retry: None,
            session_id: None,
            tag: None,
        };
        let data = event_data(&event);
        assert_eq!(
            data,
            r#"{"task":3,"name":"Greet","input":{"b":1,"a":2.50}}"#
        );
        let back = event_from_row("ActivityScheduled", &data).unwrap();
        match back {
            Event::ActivityScheduled { task, input, .. } => {
                assert_eq!(task, 3);
                assert_eq!(input.get(), r#"{"b":1,"a":2.50}"#);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_total_timeout_bounds_attempts_and_retries() {
        let p = RetryPolicy {
            max_attempts: 10,
            backoff: Backoff::Fixed,
            initial_delay_ms: 100,
            max_delay_ms: None,
            timeout_ms: Some(400),
            total_timeout_ms: Some(1_000),
            jitter: false,
        };
        assert_eq!(p.attempt_timeout(5_000, 0, 0), 400, "its own timeout first");
        assert_eq!(
            p.attempt_timeout(5_000, 0, 800),
            200,
            "then what is left of the budget"
        );
        assert_eq!(p.attempt_timeout(5_000, 0, 2_000), 0);
        assert!(!p.out_of_time(0, 1_000));
        assert!(p.out_of_time(0, 1_001));
        let unbounded = RetryPolicy {
            total_timeout_ms: None,
            timeout_ms: None,
            ..p
        };
        assert_eq!(unbounded.attempt_timeout(5_000, 0, 10_000), 5_000);
        assert!(!unbounded.out_of_time(0, i64::MAX));
    }

    #[test]
    fn retry_delays_follow_the_backoff() {
        let mut p = RetryPolicy {
            max_attempts: 5,
            backoff: Backoff::Exponential,
            initial_delay_ms: 100,
            max_delay_ms: Some(350),
            timeout_ms: None,
            total_timeout_ms: None,
            jitter: false,
        };
        assert_eq!(
            (2..=5).map(|a| p.delay_before(a)).collect::<Vec<_>>(),
            vec![100, 200, 350, 350]
        );
        p.backoff = Backoff::Linear;
        assert_eq!(
            (2..=4).map(|a| p.delay_before(a)).collect::<Vec<_>>(),
            vec![100, 200, 300]
        );
        p.backoff = Backoff::Fixed;
        assert_eq!(
            (2..=4).map(|a| p.delay_before(a)).collect::<Vec<_>>(),
            vec![100, 100, 100]
        );
    }
}
