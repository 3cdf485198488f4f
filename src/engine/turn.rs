//! One orchestration turn: history + new messages in, an activation out; the driver's
//! commands in, checked against history, and the turn's writes out.

use crate::error_code::ErrorCode;
use std::collections::HashMap;

use super::history::{
    null_payload, BufferedEvent, Event, HistoryRow, Message, ParentLink, Payload, QueuedMessage,
    RetryPolicy, TaskError, FORMAT_VERSION,
};
use super::protocol::{Command, Job, RawCommand};
use super::EngineError;

/// What a task number stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    Activity,
    Timer,
    Wait,
    Child,
    Detached,
}

#[derive(Debug, Clone)]
struct TaskInfo {
    kind: TaskKind,
    open: bool,
    child_id: Option<String>,
}

/// A command as recorded in history, for checking a replay against it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CommandRecord {
    what: &'static str,
    task: Option<u32>,
    name: Option<String>,
    /// Only explicit child ids are compared: default ids derive from the task number.
    explicit_id: Option<String>,
}

impl CommandRecord {
    fn describe(&self) -> String {
        let mut s = self.what.to_owned();
        if let Some(name) = &self.name {
            s.push_str(&format!(" '{name}'"));
        }
        if let Some(id) = &self.explicit_id {
            s.push_str(&format!(" with id '{id}'"));
        }
        if let Some(task) = self.task {
            s.push_str(&format!(" (task {task})"));
        }
        s
    }

    fn of_event(event: &Event) -> Option<CommandRecord> {
        let rec = |what, task, name: Option<&String>, explicit_id: Option<&String>| {
            Some(CommandRecord {
                what,
                task,
                name: name.cloned(),
                explicit_id: explicit_id.cloned(),
            })
        };
        match event {
            Event::ActivityScheduled { task, name, .. } => {
                rec("activity", Some(*task), Some(name), None)
            }
            Event::TimerCreated { task, .. } => rec("timer", Some(*task), None, None),
            Event::EventWaitStarted { task, name } => {
                rec("wait for event", Some(*task), Some(name), None)
            }
            Event::ChildScheduled {
                task,
                name,
                instance_id,
                explicit_id,
                ..
            } => rec(
                "sub-orchestration",
                Some(*task),
                Some(name),
                explicit_id.then_some(instance_id),
            ),
            Event::DetachedStarted {
                task,
                name,
                instance_id,
                ..
            } => rec(
                "detached orchestration",
                Some(*task),
                Some(name),
                Some(instance_id),
            ),
            Event::TaskCanceled { task } => rec("cancel", Some(*task), None, None),
            Event::CustomStatusSet { .. } => rec("custom status", None, None, None),
            _ => None,
        }
    }

    fn of_command(cmd: &Command) -> Option<CommandRecord> {
        let rec = |what, task, name: Option<&String>, explicit_id: Option<&String>| {
            Some(CommandRecord {
                what,
                task,
                name: name.cloned(),
                explicit_id: explicit_id.cloned(),
            })
        };
        match cmd {
            Command::ScheduleActivity { task, name, .. } => {
                rec("activity", Some(*task), Some(name), None)
            }
            Command::StartTimer { task, .. } => rec("timer", Some(*task), None, None),
            Command::WaitForEvent { task, name } => {
                rec("wait for event", Some(*task), Some(name), None)
            }
            Command::StartChild {
                task,
                name,
                instance_id,
                ..
            } => rec(
                "sub-orchestration",
                Some(*task),
                Some(name),
                instance_id.as_ref(),
            ),
            Command::StartDetached {
                task,
                name,
                instance_id,
                ..
            } => rec(
                "detached orchestration",
                Some(*task),
                Some(name),
                Some(instance_id),
            ),
            Command::Cancel { task } => rec("cancel", Some(*task), None, None),
            Command::SetCustomStatus { .. } => rec("custom status", None, None, None),
            Command::Complete { .. } | Command::Fail { .. } | Command::ContinueAsNew { .. } => None,
        }
    }
}

fn describe_terminal(cmd: &Command) -> &'static str {
    match cmd {
        Command::Complete { .. } => "completed",
        Command::Fail { .. } => "failed",
        _ => "continued as new",
    }
}

#[derive(Debug, Clone)]
struct StartInfo {
    name: String,
    version: Option<String>,
    parent: Option<ParentLink>,
}

/// What history says about one execution.
#[derive(Debug, Clone, Default)]
struct ExecutionView {
    started: Option<StartInfo>,
    /// The latest custom status of this execution (carried over by continue-as-new).
    custom_status: Option<Payload>,
    /// Every event that arrived in this execution, in arrival order (carried-in first):
    /// continue-as-new names the unconsumed ones by their index here.
    arrived: Vec<BufferedEvent>,
    format: u32,
    terminal: bool,
    tasks: HashMap<u32, TaskInfo>,
    commands: Vec<CommandRecord>,
    max_task: u32,
}

impl ExecutionView {
    fn from_history(history: &[HistoryRow]) -> Self {
        let mut view = ExecutionView::default();
        for row in history {
            view.apply(&row.event);
        }
        view
    }

    fn open_task(&mut self, task: u32, kind: TaskKind, child_id: Option<String>, open: bool) {
        self.max_task = self.max_task.max(task);
        self.tasks.insert(
            task,
            TaskInfo {
                kind,
                open,
                child_id,
            },
        );
    }

    fn close_task(&mut self, task: u32) {
        if let Some(info) = self.tasks.get_mut(&task) {
            info.open = false;
        }
    }

    fn is_open(&self, task: u32, kind: TaskKind) -> bool {
        matches!(self.tasks.get(&task), Some(info) if info.open && info.kind == kind)
    }

    fn apply(&mut self, event: &Event) {
        if let Some(rec) = CommandRecord::of_event(event) {
            self.commands.push(rec);
        }
        match event {
            Event::ExecutionStarted {
                name,
                version,
                parent,
                custom_status,
                events,
                format,
                ..
            } => {
                self.arrived.extend(events.iter().cloned());
                self.format = *format;
                self.started = Some(StartInfo {
                    name: name.clone(),
                    version: version.clone(),
                    parent: parent.clone(),
                });
                self.custom_status = custom_status.clone();
            }
            Event::CustomStatusSet { value } => self.custom_status = Some(value.clone()),
            Event::ActivityScheduled { task, .. } => {
                self.open_task(*task, TaskKind::Activity, None, true)
            }
            Event::TimerCreated { task, .. } => self.open_task(*task, TaskKind::Timer, None, true),
            Event::EventWaitStarted { task, .. } => {
                self.open_task(*task, TaskKind::Wait, None, true)
            }
            Event::ChildScheduled {
                task, instance_id, ..
            } => self.open_task(*task, TaskKind::Child, Some(instance_id.clone()), true),
            Event::DetachedStarted { task, .. } => {
                self.open_task(*task, TaskKind::Detached, None, false)
            }
            Event::ActivityCompleted { task, .. }
            | Event::ActivityFailed { task, .. }
            | Event::TimerFired { task }
            | Event::ChildCompleted { task, .. }
            | Event::ChildFailed { task, .. }
            | Event::TaskCanceled { task } => self.close_task(*task),
            // A wait is closed by the driver when it takes an event; the store does not care.
            Event::ExecutionCompleted { .. }
            | Event::ExecutionFailed { .. }
            | Event::ContinuedAsNew { .. } => self.terminal = true,
            Event::EventRaised { name, data } => self.arrived.push(BufferedEvent {
                name: name.clone(),
                data: data.clone(),
            }),
            Event::CancelRequested { .. } | Event::ExecutionRetried { .. } => {}
        }
    }

    fn open_children(&self) -> Vec<String> {
        let mut children: Vec<(u32, String)> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.open && t.kind == TaskKind::Child)
            .filter_map(|(n, t)| t.child_id.clone().map(|id| (*n, id)))
            .collect();
        children.sort();
        children.into_iter().map(|(_, id)| id).collect()
    }
}

/// The job an event becomes when it is (re)played to the driver.
fn job_for(event: &Event, ts: i64) -> Option<Job> {
    Some(match event {
        Event::ExecutionStarted {
            input,
            events,
            custom_status,
            ..
        } => Job::Start {
            ts,
            input: input.clone(),
            events: events.clone(),
            custom_status: custom_status.clone(),
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

/// Everything one turn needs from the store.
pub struct TurnInput<'a> {
    pub instance_id: &'a str,
    pub execution_id: u64,
    /// The current execution's history.
    pub history: &'a [HistoryRow],
    /// Visible messages for the instance, in queue order.
    pub messages: &'a [QueuedMessage],
    /// The turn's timestamp (epoch ms, the store's clock).
    pub now: i64,
    /// The driver holds this execution's generator advanced through all of `history`.
    pub incremental: bool,
}

/// An activity to enqueue.
#[derive(Debug, Clone)]
pub struct ActivityRequest {
    pub task: u32,
    pub name: String,
    pub input: Payload,
    pub retry: Option<RetryPolicy>,
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
    /// History's commands, to check a full replay against.
    recorded: Vec<CommandRecord>,
    view: ExecutionView,
}

/// Turns a claimed instance into a plan for this turn.
pub fn prepare(input: TurnInput<'_>) -> Plan {
    let mut view = ExecutionView::from_history(input.history);
    if view.format > FORMAT_VERSION {
        return Plan::Unsupported(format!(
            "history format {} is newer than this engine's {FORMAT_VERSION}",
            view.format
        ));
    }
    let recorded = view.commands.clone();
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
    let full_replay = !input.incremental || input.history.is_empty() || retried;
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

    /// Checks the driver's commands against history and produces the turn's writes.
    pub fn finish(&self, raw: Vec<RawCommand>) -> Result<TurnOutcome, EngineError> {
        let mut out = self.base_outcome();
        let mut view = self.view.clone();
        let expected: &[CommandRecord] = if self.full_replay {
            &self.recorded
        } else {
            &[]
        };
        let mut matched = 0usize;
        for raw_cmd in raw {
            let cmd = Command::try_from(raw_cmd).map_err(EngineError::Protocol)?;
            if out.terminal.is_some() {
                return Err(EngineError::Protocol(
                    "a command followed the orchestration's completion".into(),
                ));
            }
            if matched < expected.len() {
                let want = &expected[matched];
                match CommandRecord::of_command(&cmd) {
                    None => {
                        return Err(EngineError::Nondeterminism(format!(
                            "history has {} as step {} but the code {} instead",
                            want.describe(),
                            matched + 1,
                            describe_terminal(&cmd)
                        )))
                    }
                    Some(got) if got != *want => {
                        return Err(EngineError::Nondeterminism(format!(
                            "history has {} as step {} but the code scheduled {}",
                            want.describe(),
                            matched + 1,
                            got.describe()
                        )))
                    }
                    Some(_) => {}
                }
                matched += 1;
                continue;
            }
            self.apply_new(cmd, &mut view, &mut out)?;
        }
        if matched < expected.len() {
            return Err(EngineError::Nondeterminism(format!(
                "history has {} as step {} but the code no longer schedules it",
                expected[matched].describe(),
                matched + 1
            )));
        }
        if out.terminal.is_some() {
            drop_open_work(&view, &mut out);
        }
        Ok(out)
    }

    fn fresh_task(&self, view: &ExecutionView, task: u32) -> Result<(), EngineError> {
        if task == 0 || view.tasks.contains_key(&task) {
            return Err(EngineError::Protocol(format!(
                "task number {task} is already in use"
            )));
        }
        Ok(())
    }

    fn apply_new(
        &self,
        cmd: Command,
        view: &mut ExecutionView,
        out: &mut TurnOutcome,
    ) -> Result<(), EngineError> {
        let event = match cmd {
            Command::ScheduleActivity {
                task,
                name,
                input,
                retry,
            } => {
                self.fresh_task(view, task)?;
                out.activities.push(ActivityRequest {
                    task,
                    name: name.clone(),
                    input: input.clone(),
                    retry: retry.clone(),
                });
                Event::ActivityScheduled {
                    task,
                    name,
                    input,
                    retry,
                }
            }
            Command::StartTimer { task, delay_ms } => {
                self.fresh_task(view, task)?;
                let fire_at = self
                    .now
                    .saturating_add(delay_ms.min(i64::MAX as u64) as i64);
                out.timers.push(TimerRequest { task, fire_at });
                Event::TimerCreated { task, fire_at }
            }
            Command::WaitForEvent { task, name } => {
                self.fresh_task(view, task)?;
                Event::EventWaitStarted { task, name }
            }
            Command::StartChild {
                task,
                name,
                instance_id,
                input,
                version,
            } => {
                self.fresh_task(view, task)?;
                let explicit_id = instance_id.is_some();
                let instance_id = instance_id.unwrap_or_else(|| {
                    format!("{}:{}:{}", self.instance_id, self.execution_id, task)
                });
                out.starts.push(StartRequest {
                    instance_id: instance_id.clone(),
                    name: name.clone(),
                    version: version.clone(),
                    input: input.clone(),
                    parent: Some(ParentLink {
                        instance_id: self.instance_id.clone(),
                        execution_id: self.execution_id,
                        task,
                    }),
                });
                Event::ChildScheduled {
                    task,
                    name,
                    instance_id,
                    explicit_id,
                    input,
                    version,
                }
            }
            Command::StartDetached {
                task,
                name,
                instance_id,
                input,
                version,
            } => {
                self.fresh_task(view, task)?;
                out.starts.push(StartRequest {
                    instance_id: instance_id.clone(),
                    name: name.clone(),
                    version: version.clone(),
                    input: input.clone(),
                    parent: None,
                });
                Event::DetachedStarted {
                    task,
                    name,
                    instance_id,
                    input,
                    version,
                }
            }
            Command::Cancel { task } => {
                if let Some(info) = view.tasks.get(&task).filter(|t| t.open).cloned() {
                    match info.kind {
                        TaskKind::Activity => {
                            let before = out.activities.len();
                            out.activities.retain(|a| a.task != task);
                            if out.activities.len() == before {
                                out.canceled_activities.push(task);
                            }
                        }
                        TaskKind::Timer => {
                            let before = out.timers.len();
                            out.timers.retain(|t| t.task != task);
                            if out.timers.len() == before {
                                out.canceled_timers.push(task);
                            }
                        }
                        TaskKind::Child => {
                            if let Some(child) = info.child_id {
                                out.messages.push(Outbound {
                                    instance_id: child,
                                    message: Message::Cancel {
                                        reason: "the parent no longer waits for it".into(),
                                    },
                                });
                            }
                        }
                        TaskKind::Wait | TaskKind::Detached => {}
                    }
                }
                Event::TaskCanceled { task }
            }
            Command::SetCustomStatus { value } => {
                out.custom_status = Some(value.clone());
                Event::CustomStatusSet { value }
            }
            Command::Complete { output } => {
                let terminal = Terminal::Completed(output.clone());
                out.messages.extend(parent_notice(view, &terminal));
                out.terminal = Some(terminal);
                Event::ExecutionCompleted { output }
            }
            Command::Fail { error } => {
                let terminal = Terminal::Failed(error.clone());
                out.messages.extend(parent_notice(view, &terminal));
                out.terminal = Some(terminal);
                Event::ExecutionFailed {
                    error,
                    by_engine: false,
                }
            }
            Command::ContinueAsNew {
                input,
                version,
                carry,
            } => {
                let events = carry
                    .iter()
                    .map(|&i| {
                        view.arrived.get(i).cloned().ok_or_else(|| {
                            EngineError::Protocol(format!(
                                "continue-as-new carries event #{i}, but only {} arrived",
                                view.arrived.len()
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let parent = view.started.as_ref().and_then(|s| s.parent.clone());
                out.messages.push(Outbound {
                    instance_id: self.instance_id.clone(),
                    message: Message::Start {
                        name: self.name.clone(),
                        version: version.clone(),
                        input: input.clone(),
                        parent,
                        events: events.clone(),
                        custom_status: view.custom_status.clone(),
                    },
                });
                out.terminal = Some(Terminal::ContinuedAsNew);
                Event::ContinuedAsNew {
                    input,
                    version,
                    events,
                }
            }
        };
        view.apply(&event);
        out.events.push(event);
        Ok(())
    }
}
