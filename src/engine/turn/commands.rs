//! The driver's commands: checked against the commands history recorded (a full replay must
//! reproduce them), and the new ones turned into the turn's writes.

use super::view::{ExecutionView, TaskKind};
use super::{
    drop_open_work, parent_notice, ActivityRequest, KvWrite, Outbound, StartRequest, Terminal,
    TimerRequest, Turn, TurnOutcome,
};
use crate::engine::history::{Event, Message, ParentLink};
use crate::engine::protocol::{Command, RawCommand};
use crate::engine::EngineError;

/// A command as recorded in history, for checking a replay against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CommandRecord {
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

    pub(super) fn of_event(event: &Event) -> Option<CommandRecord> {
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
            Event::KvSet { key, .. } => rec("key-value set", None, Some(key), None),
            Event::KvCleared { key } => rec("key-value clear", None, Some(key), None),
            Event::KvClearedAll {} => rec("key-value clear all", None, None, None),
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
            Command::KvSet { key, .. } => rec("key-value set", None, Some(key), None),
            Command::KvClear { key } => rec("key-value clear", None, Some(key), None),
            Command::KvClearAll => rec("key-value clear all", None, None, None),
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

impl Turn {
    /// Checks the driver's commands against history and produces the turn's writes.
    /// On success the turn's view includes the new events ([`Turn::into_state`]); on an
    /// error it is as it was, for [`Turn::fail`].
    pub fn finish(&mut self, raw: Vec<RawCommand>) -> Result<TurnOutcome, EngineError> {
        let mut view = std::mem::take(&mut self.view);
        view.checkpoint();
        let result = self.check_and_apply(raw, &mut view);
        match result {
            Ok(_) => view.keep(),
            Err(_) => view.rollback(),
        }
        self.view = view;
        result
    }

    fn check_and_apply(
        &self,
        raw: Vec<RawCommand>,
        view: &mut ExecutionView,
    ) -> Result<TurnOutcome, EngineError> {
        let mut out = self.base_outcome();
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
            self.apply_new(cmd, view, &mut out)?;
        }
        if matched < expected.len() {
            return Err(EngineError::Nondeterminism(format!(
                "history has {} as step {} but the code no longer schedules it",
                expected[matched].describe(),
                matched + 1
            )));
        }
        if out.terminal.is_some() {
            drop_open_work(view, &mut out);
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
                session,
                tag,
            } => {
                self.fresh_task(view, task)?;
                out.activities.push(ActivityRequest {
                    task,
                    name: name.clone(),
                    input: input.clone(),
                    retry: retry.clone(),
                    session_id: session.clone(),
                    tag: tag.clone(),
                    orchestration: self.name.clone(),
                    orchestration_version: self.version.clone(),
                });
                Event::ActivityScheduled {
                    task,
                    name,
                    input,
                    retry,
                    session_id: session,
                    tag,
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
            Command::KvSet { key, value } => {
                out.kv.push(KvWrite::Set {
                    key: key.clone(),
                    value: value.clone(),
                });
                Event::KvSet { key, value }
            }
            Command::KvClear { key } => {
                out.kv.push(KvWrite::Clear { key: key.clone() });
                Event::KvCleared { key }
            }
            Command::KvClearAll => {
                out.kv.push(KvWrite::ClearAll);
                Event::KvClearedAll {}
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
                kv,
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
                        kv,
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
