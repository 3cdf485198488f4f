//! The activation protocol between the engine and the JavaScript driver
//! (documented in docs/protocol.md).

use serde::{Deserialize, Serialize};

use super::history::{BufferedEvent, Payload, RetryPolicy, TaskError};

/// One unit of work for the driver, applied in history order.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "t", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Job {
    /// Run the orchestration function with its input; `events` prefill the event buffer.
    Start {
        ts: i64,
        input: Payload,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        events: Vec<BufferedEvent>,
        /// The custom status carried over by continue-as-new.
        #[serde(skip_serializing_if = "Option::is_none")]
        custom_status: Option<Payload>,
        /// The key-value store carried over by continue-as-new (as the driver wrote it).
        #[serde(skip_serializing_if = "Option::is_none")]
        kv: Option<Payload>,
    },
    /// Task `task` succeeded with `value` (activity result, timer fired: null, child output).
    Ok { ts: i64, task: u32, value: Payload },
    /// Task `task` failed.
    Err {
        ts: i64,
        task: u32,
        error: TaskError,
    },
    /// An external event arrived; the oldest pending wait of that name takes it, or it is buffered.
    Event {
        ts: i64,
        name: String,
        data: Payload,
    },
}

/// What the driver asks for, in the order the code asked for it.
///
/// Parsed from a flat JSON object (`t` says which) because payloads must stay raw text.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawCommand {
    pub t: String,
    #[serde(default)]
    pub task: Option<u32>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub input: Option<Payload>,
    #[serde(default)]
    pub delay_ms: Option<f64>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
    #[serde(default)]
    pub value: Option<Payload>,
    #[serde(default)]
    pub output: Option<Payload>,
    #[serde(default)]
    pub error: Option<TaskError>,
    /// continue-as-new: which arrived events to carry over, by arrival ordinal (the
    /// execution's carried-in events first, then each `EventRaised` in history order).
    #[serde(default)]
    pub carry: Option<Vec<usize>>,
    /// Key-value commands: the key, and the value set (KV values are strings).
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    /// continue-as-new: the key-value store to start the next execution with.
    #[serde(default)]
    pub kv: Option<Payload>,
    /// activity: the session it runs on and the tag that routes it.
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
}

/// A validated command.
#[derive(Debug, Clone)]
pub enum Command {
    ScheduleActivity {
        task: u32,
        name: String,
        input: Payload,
        retry: Option<RetryPolicy>,
        session: Option<String>,
        tag: Option<String>,
    },
    StartTimer {
        task: u32,
        delay_ms: u64,
    },
    WaitForEvent {
        task: u32,
        name: String,
    },
    StartChild {
        task: u32,
        name: String,
        instance_id: Option<String>,
        input: Payload,
        version: Option<String>,
    },
    StartDetached {
        task: u32,
        name: String,
        instance_id: String,
        input: Payload,
        version: Option<String>,
    },
    Cancel {
        task: u32,
    },
    SetCustomStatus {
        value: Payload,
    },
    /// Per-instance key-value writes, recorded with the turn.
    KvSet {
        key: String,
        value: String,
    },
    KvClear {
        key: String,
    },
    KvClearAll,
    Complete {
        output: Payload,
    },
    Fail {
        error: TaskError,
    },
    ContinueAsNew {
        input: Payload,
        version: Option<String>,
        carry: Vec<usize>,
        kv: Option<Payload>,
    },
}

fn need<T>(value: Option<T>, t: &str, field: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("command '{t}' is missing '{field}'"))
}

impl TryFrom<RawCommand> for Command {
    type Error = String;

    fn try_from(raw: RawCommand) -> Result<Self, String> {
        let t = raw.t.as_str();
        let null = super::history::null_payload;
        Ok(match t {
            "activity" => Command::ScheduleActivity {
                task: need(raw.task, t, "task")?,
                name: need(raw.name, t, "name")?,
                input: raw.input.unwrap_or_else(null),
                retry: raw.retry,
                session: raw.session,
                tag: raw.tag,
            },
            "timer" => {
                let delay = need(raw.delay_ms, t, "delayMs")?;
                if !delay.is_finite() || delay < 0.0 {
                    return Err(format!(
                        "timer delay must be a finite number >= 0, got {delay}"
                    ));
                }
                Command::StartTimer {
                    task: need(raw.task, t, "task")?,
                    delay_ms: delay.ceil() as u64,
                }
            }
            "wait" => Command::WaitForEvent {
                task: need(raw.task, t, "task")?,
                name: need(raw.name, t, "name")?,
            },
            "child" => Command::StartChild {
                task: need(raw.task, t, "task")?,
                name: need(raw.name, t, "name")?,
                instance_id: raw.id,
                input: raw.input.unwrap_or_else(null),
                version: raw.version,
            },
            "detached" => Command::StartDetached {
                task: need(raw.task, t, "task")?,
                name: need(raw.name, t, "name")?,
                instance_id: need(raw.id, t, "id")?,
                input: raw.input.unwrap_or_else(null),
                version: raw.version,
            },
            "cancel" => Command::Cancel {
                task: need(raw.task, t, "task")?,
            },
            "status" => Command::SetCustomStatus {
                value: raw.value.unwrap_or_else(null),
            },
            "kvSet" => Command::KvSet {
                key: need(raw.key, t, "key")?,
                value: need(raw.text, t, "text")?,
            },
            "kvClear" => Command::KvClear {
                key: need(raw.key, t, "key")?,
            },
            "kvClearAll" => Command::KvClearAll,
            "complete" => Command::Complete {
                output: raw.output.unwrap_or_else(null),
            },
            "fail" => Command::Fail {
                error: need(raw.error, t, "error")?,
            },
            "continueAsNew" => Command::ContinueAsNew {
                input: raw.input.unwrap_or_else(null),
                version: raw.version,
                carry: raw.carry.unwrap_or_default(),
                kv: raw.kv,
            },
            other => return Err(format!("unknown command '{other}'")),
        })
    }
}

/// The driver's answer to one activation.
#[derive(Debug, Deserialize)]
pub struct TurnReply {
    #[serde(default)]
    pub commands: Vec<RawCommand>,
    /// Set when the driver itself failed (not the user's code): the turn is abandoned.
    #[serde(default)]
    pub fault: Option<String>,
}
