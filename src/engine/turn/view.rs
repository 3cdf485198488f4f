//! What history says about one execution: its start, its tasks and whether they are
//! still open, the events that arrived, and the commands it recorded.

use std::collections::HashMap;

use super::commands::CommandRecord;
use crate::engine::history::{BufferedEvent, Event, HistoryRow, ParentLink, Payload};

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
pub(super) struct TaskInfo {
    pub(super) kind: TaskKind,
    pub(super) open: bool,
    pub(super) child_id: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct StartInfo {
    pub(super) name: String,
    pub(super) version: Option<String>,
    pub(super) parent: Option<ParentLink>,
}

/// What history says about one execution.
#[derive(Debug, Clone, Default)]
pub(super) struct ExecutionView {
    pub(super) started: Option<StartInfo>,
    /// The latest custom status of this execution (carried over by continue-as-new).
    pub(super) custom_status: Option<Payload>,
    /// Every event that arrived in this execution, in arrival order (carried-in first):
    /// continue-as-new names the unconsumed ones by their index here.
    pub(super) arrived: Vec<BufferedEvent>,
    pub(super) format: u32,
    pub(super) terminal: bool,
    pub(super) tasks: HashMap<u32, TaskInfo>,
    pub(super) commands: Vec<CommandRecord>,
    max_task: u32,
    /// While a turn applies the driver's new commands: each task entry as it was before the
    /// turn first changed it, so that a turn the engine rejects leaves the view untouched.
    journal: Option<Journal>,
}

/// What [`ExecutionView::rollback`] restores.
#[derive(Debug, Clone, Default)]
struct Journal {
    commands: usize,
    arrived: usize,
    custom_status: Option<Payload>,
    terminal: bool,
    max_task: u32,
    tasks: Vec<(u32, Option<TaskInfo>)>,
}

impl ExecutionView {
    pub(super) fn from_history(history: &[HistoryRow]) -> Self {
        let mut view = ExecutionView::default();
        for row in history {
            view.apply(&row.event);
        }
        view
    }

    /// Starts recording changes: [`Self::rollback`] undoes every [`Self::apply`] from here.
    pub(super) fn checkpoint(&mut self) {
        self.journal = Some(Journal {
            commands: self.commands.len(),
            arrived: self.arrived.len(),
            custom_status: self.custom_status.clone(),
            terminal: self.terminal,
            max_task: self.max_task,
            tasks: Vec::new(),
        });
    }

    /// Keeps the changes since [`Self::checkpoint`].
    pub(super) fn keep(&mut self) {
        self.journal = None;
    }

    /// Undoes the changes since [`Self::checkpoint`].
    pub(super) fn rollback(&mut self) {
        let Some(journal) = self.journal.take() else {
            return;
        };
        self.commands.truncate(journal.commands);
        self.arrived.truncate(journal.arrived);
        self.custom_status = journal.custom_status;
        self.terminal = journal.terminal;
        self.max_task = journal.max_task;
        // Newest first, so a task changed twice ends as it was before the first change.
        for (task, before) in journal.tasks.into_iter().rev() {
            match before {
                Some(info) => self.tasks.insert(task, info),
                None => self.tasks.remove(&task),
            };
        }
    }

    fn note_task(&mut self, task: u32) {
        if let Some(journal) = &mut self.journal {
            journal.tasks.push((task, self.tasks.get(&task).cloned()));
        }
    }

    fn open_task(&mut self, task: u32, kind: TaskKind, child_id: Option<String>, open: bool) {
        self.note_task(task);
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
        self.note_task(task);
        if let Some(info) = self.tasks.get_mut(&task) {
            info.open = false;
        }
    }

    pub(super) fn is_open(&self, task: u32, kind: TaskKind) -> bool {
        matches!(self.tasks.get(&task), Some(info) if info.open && info.kind == kind)
    }

    pub(super) fn apply(&mut self, event: &Event) {
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
            // Key-value writes change the store, not the engine's view of the execution.
            Event::CancelRequested { .. }
            | Event::ExecutionRetried { .. }
            | Event::KvSet { .. }
            | Event::KvCleared { .. }
            | Event::KvClearedAll {} => {}
        }
    }

    pub(super) fn open_children(&self) -> Vec<String> {
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
