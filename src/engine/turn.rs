//! One orchestration turn: history + new messages in, an activation out; the driver's
//! commands in, checked against history, and the turn's writes out.
//!
//! This file plans a turn ([`prepare`]) and ends one the engine gives up on
//! ([`Turn::fail`]). The rest is in `turn/`, as child modules so that the turn's internals
//! stay private to the turn: `view` (what history says about the execution), `commands` (the
//! driver's commands checked against history and turned into writes) and `outcome` (the
//! writes themselves, the types the store commits, re-exported here).

mod commands;
mod outcome;
mod view;

pub use outcome::*;
pub use view::TaskKind;

use crate::error_code::ErrorCode;

use super::history::{
    null_payload, Event, HistoryRow, Message, QueuedMessage, TaskError, FORMAT_VERSION,
};
use super::protocol::Job;
use commands::CommandRecord;
use view::ExecutionView;

/// The job an event becomes when it is (re)played to the driver.
fn job_for(event: &Event, ts: i64) -> Option<Job> {
    Some(match event {
        Event::ExecutionStarted {
            input,
            events,
            custom_status,
            kv,
            ..
        } => Job::Start {
            ts,
            input: input.clone(),
            events: events.clone(),
            custom_status: custom_status.clone(),
            kv: kv.clone(),
        },
        Event::ActivityCompleted { task, result } => Job::Ok {
            ts,
            task: *task,
            value: result.clone(),
        },
        Event::ChildCompleted { task, output } => Job::Ok {
            ts,
            task: *task,
            value: output.clone(),
        },
        Event::TimerFired { task } => Job::Ok {
            ts,
            task: *task,
            value: null_payload(),
        },
        Event::ActivityFailed { task, error } | Event::ChildFailed { task, error } => Job::Err {
            ts,
            task: *task,
            error: error.clone(),
        },
        Event::EventRaised { name, data } => Job::Event {
            ts,
            name: name.clone(),
            data: data.clone(),
        },
        _ => return None,
    })
}

/// What the engine derived from an execution's history, kept by the runtime beside the
/// driver's cached generator so that the next turn reads and processes only what is new.
#[derive(Debug, Clone)]
pub struct ExecutionState(ExecutionView);

/// Everything one turn needs from the store.
pub struct TurnInput<'a> {
    pub instance_id: &'a str,
    pub execution_id: u64,
    /// The current execution's history; empty when `state` covers all of it.
    pub history: &'a [HistoryRow],
    /// The state after the whole history as the last turn left it (the driver's generator
    /// is there too): `history` is not read again.
    pub state: Option<ExecutionState>,
    /// Visible messages for the instance, in queue order.
    pub messages: &'a [QueuedMessage],
    /// The turn's timestamp (epoch ms, the store's clock).
    pub now: i64,
    /// The driver holds this execution's generator advanced through all of `history`.
    pub incremental: bool,
}

/// What to do with a claimed instance.
pub enum Plan {
    /// Hand `turn.jobs` to the driver, then call [`Turn::finish`] with its commands.
    Run(Box<Turn>),
    /// Nothing for the driver to do: commit this as it is.
    Commit(Box<TurnOutcome>),
    /// The execution has not started and no start message is visible: leave the messages.
    NotStarted,
    /// The execution was written in a newer history format than this engine reads.
    Unsupported(String),
    /// The turn must replay in full (a retried execution) but was given `state` instead of
    /// the history: prepare it again with the whole history.
    NeedHistory,
}

/// A turn waiting for the driver's commands.
pub struct Turn {
    pub instance_id: String,
    pub execution_id: u64,
    pub name: String,
    pub version: Option<String>,
    pub jobs: Vec<Job>,
    /// The first `replay_count` jobs replay history (`isReplaying` is true while they run).
    pub replay_count: usize,
    pub full_replay: bool,
    now: i64,
    new_events: Vec<Event>,
    consumed: Vec<i64>,
    started_now: bool,
    /// History's commands, to check a full replay against (empty otherwise).
    recorded: Vec<CommandRecord>,
    view: ExecutionView,
}

/// Turns a claimed instance into a plan for this turn.
pub fn prepare(input: TurnInput<'_>) -> Plan {
    let from_state = input.state.is_some();
    let mut view = match input.state {
        Some(ExecutionState(view)) => view,
        None => ExecutionView::from_history(input.history),
    };
    if view.format > FORMAT_VERSION {
        return Plan::Unsupported(format!(
            "history format {} is newer than this engine's {FORMAT_VERSION}",
            view.format
        ));
    }
    let all_seqs = || input.messages.iter().map(|m| m.seq).collect::<Vec<_>>();
    if view.terminal {
        // Late messages for a finished execution are dropped.
        return Plan::Commit(Box::new(TurnOutcome {
            consumed: all_seqs(),
            ..Default::default()
        }));
    }
    let mut new_events = Vec::new();
    let mut consumed = Vec::with_capacity(input.messages.len());
    let mut start_seq = None;
    if view.started.is_none() {
        let Some(start) = input
            .messages
            .iter()
            .find(|m| matches!(m.message, Message::Start { .. }))
        else {
            return Plan::NotStarted;
        };
        if let Message::Start {
            name,
            version,
            input: start_input,
            parent,
            events,
            custom_status,
            kv,
        } = &start.message
        {
            let event = Event::ExecutionStarted {
                name: name.clone(),
                version: version.clone(),
                input: start_input.clone(),
                format: FORMAT_VERSION,
                parent: parent.clone(),
                events: events.clone(),
                custom_status: custom_status.clone(),
                kv: kv.clone(),
            };
            view.apply(&event);
            new_events.push(event);
        }
        start_seq = Some(start.seq);
        consumed.push(start.seq);
    }
    let exec = input.execution_id;
    let mut cancel_reason = None;
    let mut retried = false;
    for queued in input.messages {
        if Some(queued.seq) == start_seq {
            continue;
        }
        consumed.push(queued.seq);
        let event = match &queued.message {
            Message::ActivityCompleted {
                execution_id,
                task,
                result,
            } if *execution_id == exec && view.is_open(*task, TaskKind::Activity) => {
                Event::ActivityCompleted {
                    task: *task,
                    result: result.clone(),
                }
            }
            Message::ActivityFailed {
                execution_id,
                task,
                error,
            } if *execution_id == exec && view.is_open(*task, TaskKind::Activity) => {
                Event::ActivityFailed {
                    task: *task,
                    error: error.clone(),
                }
            }
            Message::TimerFired { execution_id, task }
                if *execution_id == exec && view.is_open(*task, TaskKind::Timer) =>
            {
                Event::TimerFired { task: *task }
            }
            Message::ChildCompleted {
                execution_id,
                task,
                output,
            } if *execution_id == exec && view.is_open(*task, TaskKind::Child) => {
                Event::ChildCompleted {
                    task: *task,
                    output: output.clone(),
                }
            }
            Message::ChildFailed {
                execution_id,
                task,
                error,
            } if *execution_id == exec && view.is_open(*task, TaskKind::Child) => {
                Event::ChildFailed {
                    task: *task,
                    error: error.clone(),
                }
            }
            Message::Event { name, data } => Event::EventRaised {
                name: name.clone(),
                data: data.clone(),
            },
            Message::Cancel { reason } => {
                if cancel_reason.is_none() {
                    cancel_reason = Some(reason.clone());
                }
                continue;
            }
            Message::Retry { error, removed } => {
                retried = true;
                Event::ExecutionRetried {
                    error: error.clone(),
                    removed: *removed,
                }
            }
            // Duplicates, stale executions, cancelled tasks: dropped.
            _ => continue,
        };
        view.apply(&event);
        new_events.push(event);
    }
    let start = view.started.clone().expect("started above");
    let started_now = start_seq.is_some();
    if let Some(reason) = cancel_reason {
        return Plan::Commit(Box::new(cancel_outcome(
            &view,
            new_events,
            consumed,
            started_now.then(|| (start.name.clone(), start.version.clone())),
            &reason,
        )));
    }
    // A retried execution replays in full: its history was rewound under any cached generator.
    let full_replay = if from_state {
        retried
    } else {
        !input.incremental || input.history.is_empty() || retried
    };
    if full_replay && from_state {
        return Plan::NeedHistory;
    }
    let recorded = if full_replay {
        view.commands.clone()
    } else {
        Vec::new()
    };
    let mut jobs = Vec::new();
    if full_replay {
        for row in input.history {
            jobs.extend(job_for(&row.event, row.ts));
        }
    }
    let mut replay_count = jobs.len();
    for event in &new_events {
        jobs.extend(job_for(event, input.now));
    }
    if retried && jobs.len() == replay_count && replay_count > 0 {
        // Nothing new arrived: the code after the last kept event runs again for real.
        replay_count -= 1;
    }
    if jobs.len() == replay_count {
        // No new job (everything was dropped): nothing changes but the queue.
        return Plan::Commit(Box::new(TurnOutcome {
            events: new_events,
            consumed,
            ..Default::default()
        }));
    }
    Plan::Run(Box::new(Turn {
        instance_id: input.instance_id.to_owned(),
        execution_id: exec,
        name: start.name,
        version: start.version,
        jobs,
        replay_count,
        full_replay,
        now: input.now,
        new_events,
        consumed,
        started_now,
        recorded,
        view,
    }))
}

fn cancel_outcome(
    view: &ExecutionView,
    mut events: Vec<Event>,
    consumed: Vec<i64>,
    started: Option<(String, Option<String>)>,
    reason: &str,
) -> TurnOutcome {
    events.push(Event::CancelRequested {
        reason: reason.to_owned(),
    });
    let error = TaskError::with_code(format!("canceled: {reason}"), ErrorCode::Canceled);
    events.push(Event::ExecutionFailed {
        error: error.clone(),
        by_engine: false,
    });
    let mut messages: Vec<Outbound> = view
        .open_children()
        .into_iter()
        .map(|child| Outbound {
            instance_id: child,
            message: Message::Cancel {
                reason: reason.to_owned(),
            },
        })
        .collect();
    messages.extend(parent_notice(view, &Terminal::Failed(error.clone())));
    let mut out = TurnOutcome {
        events,
        consumed,
        started,
        terminal: Some(Terminal::Failed(error)),
        messages,
        ..Default::default()
    };
    drop_open_work(view, &mut out);
    out
}

/// A finished execution's queued activities and timers are never needed: list them for
/// deletion (and drop any this turn would have queued).
fn drop_open_work(view: &ExecutionView, out: &mut TurnOutcome) {
    out.activities.clear();
    out.timers.clear();
    let mut open: Vec<(u32, TaskKind)> = view
        .tasks
        .iter()
        .filter(|(_, t)| t.open)
        .map(|(n, t)| (*n, t.kind))
        .collect();
    open.sort_by_key(|(task, _)| *task);
    for (task, kind) in open {
        match kind {
            TaskKind::Activity => out.canceled_activities.push(task),
            TaskKind::Timer => out.canceled_timers.push(task),
            _ => {}
        }
    }
}

fn parent_notice(view: &ExecutionView, terminal: &Terminal) -> Option<Outbound> {
    let parent = view.started.as_ref()?.parent.as_ref()?;
    let message = match terminal {
        Terminal::Completed(output) => Message::ChildCompleted {
            execution_id: parent.execution_id,
            task: parent.task,
            output: output.clone(),
        },
        Terminal::Failed(error) => Message::ChildFailed {
            execution_id: parent.execution_id,
            task: parent.task,
            error: error.clone(),
        },
        Terminal::ContinuedAsNew => return None,
    };
    Some(Outbound {
        instance_id: parent.instance_id.clone(),
        message,
    })
}

impl Turn {
    /// The engine's state after this turn's events, for the next turn of the execution.
    pub fn into_state(self) -> ExecutionState {
        ExecutionState(self.view)
    }

    fn base_outcome(&self) -> TurnOutcome {
        TurnOutcome {
            events: self.new_events.clone(),
            consumed: self.consumed.clone(),
            started: self
                .started_now
                .then(|| (self.name.clone(), self.version.clone())),
            ..Default::default()
        }
    }

    /// Ends the execution with `error` (nondeterminism, poison, code not registered).
    pub fn fail(&self, error: TaskError) -> TurnOutcome {
        let mut out = self.base_outcome();
        out.events.push(Event::ExecutionFailed {
            error: error.clone(),
            by_engine: true,
        });
        let terminal = Terminal::Failed(error);
        out.messages.extend(parent_notice(&self.view, &terminal));
        out.terminal = Some(terminal);
        drop_open_work(&self.view, &mut out);
        out
    }
}
