//! What the store keeps for jobs (async functions with checkpointed steps, run as instances):
//! one row per step, the run's progress and start time, its log lines, the last payload of
//! each emitted event, and the queue of each concurrency key. The job's attempt is an
//! activity; its writes are fenced by that activity's lease (`JobFence`), so an attempt
//! whose lease another runtime took writes nothing.

use serde::{Deserialize, Serialize};

/// The event name of the message that wakes a suspended run (an event it awaits arrived,
/// a concurrency key it waits for is free, a child it joins ended).
pub const JOB_WAKE_EVENT: &str = "reprise.job.wake";

/// The running activity attempt a job write belongs to: written only while the activity row
/// still has this generation (no other runtime has claimed it since).
#[derive(Debug, Clone)]
pub struct JobFence {
    pub instance_id: String,
    pub seq: i64,
    pub generation: i64,
}

/// One step of a run. `state` is `done` (value: its result), `failed` (value: the error it
/// gave up with), `retrying` (value: its last error; runs again at `until_ms`), `sleeping`
/// (until `until_ms`) or `waiting` (for `event`, until `until_ms` when it has a timeout).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobStep {
    pub name: String,
    pub state: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub until_ms: Option<i64>,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub updated_at: i64,
}

/// A write of a running attempt.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum JobWrite {
    /// Creates or replaces the step's row.
    Step(JobStep),
    /// The run's progress (JSON `{current, total?, message?}`).
    Progress { value: String },
    Log {
        level: String,
        message: String,
        #[serde(default)]
        data: Option<String>,
        #[serde(default)]
        step: Option<String>,
    },
}

/// The start of an attempt.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum JobBegin {
    /// Another runtime claimed the attempt's activity since: this attempt must stop.
    LeaseLost,
    /// The run waits for its concurrency key (held by an earlier run that has not ended).
    Blocked,
    /// The steps recorded so far, when the run first started, and the store's clock.
    #[serde(rename_all = "camelCase")]
    Started {
        now: i64,
        started_at: i64,
        steps: Vec<JobStep>,
    },
}

/// `awaitEvent` of a running attempt.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum JobAwait {
    LeaseLost,
    /// The event's kept payload: recorded as the step's result.
    Received {
        payload: String,
    },
    /// No payload yet: the step waits (an emit records it and wakes the run).
    Waiting,
    /// The attempt gave up waiting (its deadline passed): the step failed with a timeout.
    TimedOut,
}

/// What a run has stored beside its instance.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobState {
    pub started_at: Option<i64>,
    pub progress: Option<String>,
    pub updated_at: Option<i64>,
    pub steps: Vec<JobStep>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobLog {
    pub seq: i64,
    pub level: String,
    pub message: String,
    pub data: Option<String>,
    pub step: Option<String>,
    pub created_at: i64,
}

/// What an await of `event` by step `name` decides, the same on both stores: its answer, and
/// the step row to write (none when the stored row already says it). `existing` is the
/// step's row, `kept` the event's last payload.
pub(crate) fn await_step(
    name: String,
    event: String,
    deadline: Option<i64>,
    give_up: bool,
    existing: Option<&JobStep>,
    kept: Option<String>,
    now: i64,
) -> (JobAwait, Option<JobStep>) {
    let state = existing.map(|s| s.state.as_str());
    if let Some(s) = existing.filter(|s| s.state == "done") {
        let payload = s.value.clone().unwrap_or_else(|| "null".into());
        return (JobAwait::Received { payload }, None);
    }
    let row = |state: &str, value: Option<String>| JobStep {
        name,
        state: state.into(),
        value,
        attempts: 0,
        until_ms: deadline,
        event: Some(event.clone()),
        updated_at: now,
    };
    match (kept, give_up) {
        (Some(payload), _) => (
            JobAwait::Received {
                payload: payload.clone(),
            },
            Some(row("done", Some(payload))),
        ),
        (None, true) => {
            let error = timeout_error(&event);
            (JobAwait::TimedOut, Some(row("failed", Some(error))))
        }
        (None, false) if state == Some("waiting") => (JobAwait::Waiting, None),
        (None, false) => (JobAwait::Waiting, Some(row("waiting", None))),
    }
}

/// The error a step that waited for `event` past its deadline gave up with.
pub fn timeout_error(event: &str) -> String {
    serde_json::json!({
        "name": "TimeoutError",
        "code": "ERR_TIMEOUT",
        "message": format!("no event '{event}' arrived before the step's timeout"),
    })
    .to_string()
}

/// Tables holding rows of one run: deleted with the instance.
pub const JOB_TABLES: [&str; 4] = ["job_steps", "job_runs", "job_logs", "job_keys"];
