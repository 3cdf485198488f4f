//! Unit tests of the pure engine, on synthetic histories. The setup the topics share is
//! here; each file below covers one topic.

use super::*;

mod arrivals;
mod cancel;
mod commands;
mod endings;
mod history_model;
mod lifecycle;
mod replay_nondeterminism;
mod rewind;
mod rewind_redelivery;
mod state;

// Payloads and queued messages.

fn p(text: &str) -> Payload {
    payload_from_str(text).unwrap()
}

fn raw(json: &str) -> Vec<RawCommand> {
    serde_json::from_str(json).unwrap()
}

fn start_msg(seq: i64) -> QueuedMessage {
    QueuedMessage {
        seq,
        deliveries: 1,
        message: Message::Start {
            name: "Flow".into(),
            version: Some("1.0.0".into()),
            input: p(r#"{"n":1}"#),
            parent: None,
            events: vec![],
            custom_status: None,
            kv: None,
        },
    }
}

fn msg(seq: i64, message: Message) -> QueuedMessage {
    QueuedMessage {
        seq,
        deliveries: 1,
        message,
    }
}

fn event(name: &str, data: &str) -> Message {
    Message::Event {
        name: name.into(),
        data: p(data),
    }
}

fn cancel(reason: &str) -> Message {
    Message::Cancel {
        reason: reason.into(),
    }
}

fn completed(task: u32, value: &str) -> Message {
    Message::ActivityCompleted {
        execution_id: 1,
        task,
        result: p(value),
    }
}

fn failed(task: u32, message: &str) -> Message {
    activity_failed(1, task, message)
}

fn activity_failed(execution_id: u64, task: u32, message: &str) -> Message {
    Message::ActivityFailed {
        execution_id,
        task,
        error: TaskError::new(message),
    }
}

fn timer_fired(execution_id: u64, task: u32) -> Message {
    Message::TimerFired { execution_id, task }
}

fn child_completed(execution_id: u64, task: u32, output: &str) -> Message {
    Message::ChildCompleted {
        execution_id,
        task,
        output: p(output),
    }
}

fn child_failed(execution_id: u64, task: u32, message: &str) -> Message {
    Message::ChildFailed {
        execution_id,
        task,
        error: TaskError::new(message),
    }
}

// Turns and histories.

/// Runs one turn the way the runtime does and appends its events to `history`.
fn run(
    history: &mut Vec<HistoryRow>,
    messages: &[QueuedMessage],
    incremental: bool,
    commands: &str,
) -> Result<TurnOutcome, EngineError> {
    let plan = prepare(TurnInput {
        instance_id: "i1",
        execution_id: 1,
        history,
        messages,
        now: 1000 + history.len() as i64,
        incremental,
        state: None,
    });
    let out = match plan {
        Plan::Run(mut turn) => turn.finish(raw(commands))?,
        Plan::Commit(out) => *out,
        Plan::NotStarted | Plan::Unsupported(_) | Plan::NeedHistory => panic!("not runnable"),
    };
    append(history, &out);
    Ok(out)
}

fn append(history: &mut Vec<HistoryRow>, out: &TurnOutcome) {
    for e in &out.events {
        history.push(HistoryRow {
            event_id: history.len() as u64 + 1,
            ts: 1000,
            event: e.clone(),
        });
    }
}

fn plan_of(history: &[HistoryRow], messages: &[QueuedMessage], incremental: bool) -> Plan {
    prepare(TurnInput {
        instance_id: "i1",
        execution_id: 1,
        history,
        messages,
        now: 5000,
        incremental,
        state: None,
    })
}

fn rows(events: Vec<Event>) -> Vec<HistoryRow> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| HistoryRow {
            event_id: i as u64 + 1,
            ts: 1000,
            event,
        })
        .collect()
}

/// A history: started, activity A (task 1) completed with 7, activity B (task 2) scheduled.
fn two_step_history() -> Vec<HistoryRow> {
    let mut h = Vec::new();
    run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"activity","task":1,"name":"A","input":1}]"#,
    )
    .unwrap();
    run(
        &mut h,
        &[msg(2, completed(1, "7"))],
        true,
        r#"[{"t":"activity","task":2,"name":"B","input":7}]"#,
    )
    .unwrap();
    h
}

// Reading results.

fn kinds(history: &[HistoryRow]) -> Vec<&'static str> {
    history.iter().map(|r| r.event.kind()).collect()
}

fn event_kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind()).collect()
}

fn plan_messages(plan: &RewindPlan) -> Vec<(&'static str, String, Option<i64>)> {
    plan.messages
        .iter()
        .map(|(m, at)| (m.kind(), message_data(m), *at))
        .collect()
}
