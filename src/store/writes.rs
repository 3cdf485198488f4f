//! What both stores write, decided once: the instance columns a turn sets, the messages a
//! turn, a start or a rewind queues, whom a commit wakes, which activities a commit claimed,
//! which executions a prune removes. The backends only turn these into their SQL.

use crate::engine::{
    ActivityRequest, Message, ParentLink, RewindPlan, StartRequest, TaskError, Terminal,
    TurnOutcome,
};

use super::{ActivityItem, StoredStatus, TurnCommit};
use crate::error_code::ErrorCode;

#[cfg(doc)]
use super::Provider;

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
    /// Whether `updated_at` moves: the turn recorded something. A turn that only dropped
    /// late messages (an event raised on a finished instance) leaves the row as it was, so
    /// retention by age still finds the instance.
    pub touched: bool,
}

impl InstanceUpdate {
    pub fn of(out: &TurnOutcome) -> Self {
        let mut update = match &out.terminal {
            Some(Terminal::Completed(v)) => InstanceUpdate {
                status: Some(StoredStatus::Completed.as_str()),
                output: Some(v.get().to_owned()),
                ..Default::default()
            },
            Some(Terminal::Failed(e)) => InstanceUpdate {
                status: Some(if e.code.as_deref() == Some(ErrorCode::Canceled.as_str()) {
                    StoredStatus::Canceled.as_str()
                } else {
                    StoredStatus::Failed.as_str()
                }),
                error: Some(e.message.clone()),
                error_code: Some(
                    e.code
                        .clone()
                        .unwrap_or_else(|| ErrorCode::OrchestrationFailed.as_str().into()),
                ),
                ..Default::default()
            },
            Some(Terminal::ContinuedAsNew) => InstanceUpdate {
                continued: true,
                ..Default::default()
            },
            // No status given: a Pending instance becomes Running (the commit's SQL), any
            // other keeps its status.
            None => InstanceUpdate::default(),
        };
        if let Some((name, version)) = &out.started {
            update.name = Some(name.clone());
            update.version = version.clone();
        }
        update.touched = !out.events.is_empty() || out.changes_instance();
        update
    }
}

/// A row of the orchestrator queue to insert.
#[derive(Debug)]
pub(crate) struct QueueInsert {
    pub instance_id: String,
    pub message: Message,
    pub visible_at: i64,
}

/// The `execution_id` and `task` columns of an orchestrator-queue row for a message: set for
/// the results that answer one task of one execution, empty for the others.
pub(crate) fn message_columns(message: &Message) -> (Option<i64>, Option<u32>) {
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
        } => (Some(*execution_id as i64), Some(*task)),
        _ => (None, None),
    }
}

/// The `retry` column of an activity row: its retry policy as JSON.
pub(crate) fn retry_column(activity: &ActivityRequest) -> Option<String> {
    activity
        .retry
        .as_ref()
        .map(|r| serde_json::to_string(r).unwrap_or_default())
}

/// The message that starts a new instance.
pub(crate) fn start_message(start: &StartRequest) -> Message {
    Message::Start {
        name: start.name.clone(),
        version: start.version.clone(),
        input: start.input.clone(),
        parent: start.parent.clone(),
        events: vec![],
        custom_status: None,
        kv: None,
    }
}

/// A turn started a child under an id that is taken: the parent must hear of it rather than
/// wait forever.
pub(crate) fn child_id_taken(parent: &ParentLink, instance_id: &str, now: i64) -> QueueInsert {
    QueueInsert {
        instance_id: parent.instance_id.clone(),
        message: Message::ChildFailed {
            execution_id: parent.execution_id,
            task: parent.task,
            error: TaskError::with_code(
                format!("an instance with id '{instance_id}' already exists"),
                "ERR_ALREADY_EXISTS",
            ),
        },
        visible_at: now,
    }
}

/// The messages a turn queues: its timers (visible when they fire), then the messages it
/// sends (visible at once).
pub(crate) fn turn_messages(c: &TurnCommit) -> Vec<QueueInsert> {
    let out = &c.outcome;
    let timers = out.timers.iter().map(|t| QueueInsert {
        instance_id: c.instance_id.clone(),
        message: Message::TimerFired {
            execution_id: c.execution_id,
            task: t.task,
        },
        visible_at: t.fire_at,
    });
    let sent = out.messages.iter().map(|m| QueueInsert {
        instance_id: m.instance_id.clone(),
        message: m.message.clone(),
        visible_at: c.now,
    });
    timers.chain(sent).collect()
}

/// Whom a committed turn wakes.
#[derive(Debug)]
pub(crate) struct TurnWakes {
    /// Orchestration messages became visible (messages sent, children started, timers).
    pub orchestrations: bool,
    /// Activities were queued that the commit did not claim for its own runtime (those
    /// need no other worker's attention).
    pub activities: bool,
    /// The instance's status or custom status changed.
    pub instance_changed: bool,
    /// The execution ended and the instance with it (not continued as new).
    pub instance_finished: bool,
    /// The instances the turn started.
    pub started: Vec<String>,
}

impl TurnWakes {
    pub fn of(c: &TurnCommit) -> Self {
        let out = &c.outcome;
        TurnWakes {
            orchestrations: !out.messages.is_empty()
                || !out.starts.is_empty()
                || !out.timers.is_empty(),
            activities: out.activities.len() > c.claim.as_ref().map_or(0, |d| d.count),
            // Key-value writes wake `waitForValue` like a status change wakes its waiters.
            instance_changed: out.changes_instance() || !out.kv.is_empty(),
            instance_finished: matches!(
                out.terminal,
                Some(Terminal::Completed(_) | Terminal::Failed(_))
            ),
            started: out.starts.iter().map(|s| s.instance_id.clone()).collect(),
        }
    }
}

/// What [`Provider::rewind_instance`] writes for a plan, besides the plan's activities.
#[derive(Debug)]
pub(crate) struct RewindWrites {
    pub execution_id: i64,
    /// The fence: the execution's last event must still be this one.
    pub last_event_id: i64,
    /// History from this event on is removed.
    pub truncate_from: i64,
    /// The plan sets the custom status back (to `custom_status`).
    pub custom_status_set: bool,
    pub custom_status: Option<String>,
    /// Children whose still queued cancels are withdrawn.
    pub open_children: Vec<String>,
    /// The messages the plan queues (visible now unless the plan says when).
    pub messages: Vec<QueueInsert>,
}

impl RewindWrites {
    pub fn of(instance_id: &str, plan: &RewindPlan, now: i64) -> Self {
        let (custom_status_set, custom_status) = match &plan.custom_status {
            Some(value) => (true, value.as_ref().map(|v| v.get().to_owned())),
            None => (false, None),
        };
        RewindWrites {
            execution_id: plan.execution_id as i64,
            last_event_id: plan.last_event_id as i64,
            truncate_from: plan.truncate_from as i64,
            custom_status_set,
            custom_status,
            open_children: plan
                .open_children
                .iter()
                .map(|(_, child)| child.clone())
                .collect(),
            messages: plan
                .messages
                .iter()
                .map(|(message, visible_at)| QueueInsert {
                    instance_id: instance_id.to_owned(),
                    message: message.clone(),
                    visible_at: visible_at.unwrap_or(now),
                })
                .collect(),
        }
    }
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
                orchestration: a.orchestration.clone(),
                orchestration_version: a.orchestration_version.clone(),
                session_id: a.session_id.clone(),
                tag: a.tag.clone(),
            })
        })
        .collect()
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
