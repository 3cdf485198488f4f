//! Rewinding a failed execution to its last good point, for `retryInstance`.
//!
//! History stays the record of what the code decided: the failure and the events that led
//! to it are taken out, an `ExecutionRetried` marker takes their place, and everything the
//! execution was waiting for at that point is put back in flight. Activities that had
//! succeeded before the failure stay in history and are not run again.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::history::{Event, HistoryRow, Message, Payload};
use super::turn::ActivityRequest;

/// The writes that put a failed execution back to work.
#[derive(Debug, Clone)]
pub struct RewindPlan {
    pub execution_id: u64,
    /// History must still end with this event when the plan is applied.
    pub last_event_id: u64,
    /// Events from this id on are removed.
    pub truncate_from: u64,
    /// Activities to queue again: the failed ones and those dropped when the execution ended.
    pub activities: Vec<ActivityRequest>,
    /// Messages for the instance, in order, each with its visible time (`None`: now). The
    /// `Retry` message comes first; then the arrivals removed with the failure.
    pub messages: Vec<(Message, Option<i64>)>,
    /// Sub-orchestrations the kept history still waits for, as `(task, instance id)`; the
    /// caller looks at each (running: it will report; completed: queue its result;
    /// failed: retry it too).
    pub open_children: Vec<(u32, String)>,
    /// The custom status of the kept history, when removed events had changed it.
    pub custom_status: Option<Option<Payload>>,
    /// The key-value store of the kept history, `(key, value, updated_at)`, when removed
    /// events had written to it: the store is set back to exactly this.
    pub kv: Option<Vec<(String, String, i64)>>,
}

/// A key-value entry as continue-as-new carries it (`ExecutionStarted.kv`).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CarriedValue {
    value: String,
    updated_at: i64,
}

fn is_arrival(event: &Event) -> bool {
    matches!(
        event,
        Event::ActivityCompleted { .. }
            | Event::ActivityFailed { .. }
            | Event::TimerFired { .. }
            | Event::ChildCompleted { .. }
            | Event::ChildFailed { .. }
            | Event::EventRaised { .. }
    )
}

/// Where the failed execution's last good point is: the index of the first event to remove.
///
/// Only the failing turn is ever undone, so nothing that had succeeded runs again:
/// - the engine failed the execution for the code (nondeterminism, poison, not registered):
///   only the failure goes, and the turn replays with the code as it is now;
/// - a cancellation: its `CancelRequested` goes too;
/// - a task failure that the code did not outlive (no later turn: nothing but the failing
///   turn's own commands follow it): the failure goes with the arrivals just before it, which
///   no code has acted on yet, so the task runs again;
/// - otherwise (the code threw by itself, or caught a failure and carried on before it threw;
///   or undoing would start a sub-orchestration twice): only the failure goes.
fn cut_point(history: &[HistoryRow], by_engine: bool) -> usize {
    let failed_at = history.len() - 1;
    if by_engine {
        return failed_at;
    }
    if failed_at > 0 && matches!(history[failed_at - 1].event, Event::CancelRequested { .. }) {
        return failed_at - 1;
    }
    let Some(failure) = history[..failed_at].iter().rposition(|r| {
        matches!(
            r.event,
            Event::ActivityFailed { .. } | Event::ChildFailed { .. }
        )
    }) else {
        return failed_at;
    };
    let mut cut = failure;
    while cut > 0 && is_arrival(&history[cut - 1].event) {
        cut -= 1;
    }
    // Arrivals right after the failure belong to the same turn; a command and then another
    // arrival means a later turn: the code outlived the failure.
    let mut seen_command = false;
    for row in &history[failure + 1..failed_at] {
        match &row.event {
            e if is_arrival(e) && seen_command => return failed_at,
            e if is_arrival(e) => {}
            // Started instances exist by now: running the turn again would start them twice.
            Event::ChildScheduled { .. } | Event::DetachedStarted { .. } => return failed_at,
            _ => seen_command = true,
        }
    }
    cut
}

/// Plans the rewind of execution `execution_id`, whose history must end with its failure.
pub fn plan_rewind(execution_id: u64, history: &[HistoryRow]) -> Result<RewindPlan, String> {
    let Some(last) = history.last() else {
        return Err("the execution has no history to retry from".into());
    };
    let Event::ExecutionFailed { error, by_engine } = &last.event else {
        return Err(format!(
            "the execution ended with {}, not a failure",
            last.event.kind()
        ));
    };
    let cut = cut_point(history, *by_engine);
    let (kept, removed) = history.split_at(cut);

    // What the kept history scheduled and has not seen settle.
    let mut scheduled: HashMap<u32, &Event> = HashMap::new();
    let mut settled: HashSet<u32> = HashSet::new();
    let mut custom_status = None;
    let mut orchestration = (String::new(), None);
    let mut kv: BTreeMap<String, (String, i64)> = BTreeMap::new();
    for row in kept {
        match &row.event {
            Event::ActivityScheduled { task, .. }
            | Event::TimerCreated { task, .. }
            | Event::ChildScheduled { task, .. } => {
                scheduled.insert(*task, &row.event);
            }
            Event::ActivityCompleted { task, .. }
            | Event::ActivityFailed { task, .. }
            | Event::TimerFired { task }
            | Event::ChildCompleted { task, .. }
            | Event::ChildFailed { task, .. }
            | Event::TaskCanceled { task } => {
                settled.insert(*task);
            }
            Event::ExecutionStarted {
                custom_status: carried,
                name,
                version,
                kv: carried_kv,
                ..
            } => {
                custom_status = carried.clone();
                orchestration = (name.clone(), version.clone());
                if let Some(carried_kv) = carried_kv {
                    // Written by the driver; an unreadable one leaves the store as it is.
                    if let Ok(map) =
                        serde_json::from_str::<BTreeMap<String, CarriedValue>>(carried_kv.get())
                    {
                        kv = map
                            .into_iter()
                            .map(|(k, v)| (k, (v.value, v.updated_at)))
                            .collect();
                    }
                }
            }
            Event::KvSet { key, value } => {
                kv.insert(key.clone(), (value.clone(), row.ts));
            }
            Event::KvCleared { key } => {
                kv.remove(key);
            }
            Event::KvClearedAll {} => kv.clear(),
            Event::CustomStatusSet { value } => custom_status = Some(value.clone()),
            _ => {}
        }
    }
    let open = |task: &u32| scheduled.contains_key(task) && !settled.contains(task);

    let mut messages = vec![(
        Message::Retry {
            error: error.clone(),
            removed: removed.len() as u64,
        },
        None,
    )];
    // Results that had arrived are delivered again rather than redone.
    let mut delivered: HashSet<u32> = HashSet::new();
    let mut status_changed = false;
    let mut kv_changed = false;
    for row in removed {
        let message = match &row.event {
            Event::ActivityCompleted { task, result } if open(task) => Message::ActivityCompleted {
                execution_id,
                task: *task,
                result: result.clone(),
            },
            Event::TimerFired { task } if open(task) => Message::TimerFired {
                execution_id,
                task: *task,
            },
            Event::ChildCompleted { task, output } if open(task) => Message::ChildCompleted {
                execution_id,
                task: *task,
                output: output.clone(),
            },
            Event::EventRaised { name, data } => {
                messages.push((
                    Message::Event {
                        name: name.clone(),
                        data: data.clone(),
                    },
                    None,
                ));
                continue;
            }
            Event::CustomStatusSet { .. } => {
                status_changed = true;
                continue;
            }
            Event::KvSet { .. } | Event::KvCleared { .. } | Event::KvClearedAll {} => {
                kv_changed = true;
                continue;
            }
            _ => continue,
        };
        if let Some(task) = message_task(&message) {
            if delivered.insert(task) {
                messages.push((message, None));
            }
        }
    }

    let mut activities = Vec::new();
    let mut open_children = Vec::new();
    let mut pending: Vec<(&u32, &&Event)> = scheduled
        .iter()
        .filter(|(task, _)| open(task) && !delivered.contains(task))
        .collect();
    pending.sort_by_key(|(task, _)| **task);
    for (task, event) in pending {
        match event {
            Event::ActivityScheduled {
                name,
                input,
                retry,
                session_id,
                tag,
                ..
            } => activities.push(ActivityRequest {
                task: *task,
                name: name.clone(),
                input: input.clone(),
                retry: retry.clone(),
                session_id: session_id.clone(),
                tag: tag.clone(),
                orchestration: orchestration.0.clone(),
                orchestration_version: orchestration.1.clone(),
            }),
            // The timer's row went when the execution ended: it fires when it was due.
            Event::TimerCreated { fire_at, .. } => messages.push((
                Message::TimerFired {
                    execution_id,
                    task: *task,
                },
                Some(*fire_at),
            )),
            Event::ChildScheduled { instance_id, .. } => {
                open_children.push((*task, instance_id.clone()))
            }
            _ => {}
        }
    }

    Ok(RewindPlan {
        execution_id,
        last_event_id: last.event_id,
        truncate_from: history[cut].event_id,
        activities,
        messages,
        open_children,
        custom_status: status_changed.then_some(custom_status),
        kv: kv_changed.then(|| {
            kv.into_iter()
                .map(|(key, (value, updated_at))| (key, value, updated_at))
                .collect()
        }),
    })
}

fn message_task(message: &Message) -> Option<u32> {
    match message {
        Message::ActivityCompleted { task, .. }
        | Message::TimerFired { task, .. }
        | Message::ChildCompleted { task, .. } => Some(*task),
        _ => None,
    }
}
