use super::*;

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

/// The start of a sub-orchestration 'Sub' of instance 'p' (execution 2, task 5).
fn child_start_msg(seq: i64) -> QueuedMessage {
    msg(
        seq,
        Message::Start {
            name: "Sub".into(),
            version: None,
            input: p("null"),
            parent: Some(ParentLink {
                instance_id: "p".into(),
                execution_id: 2,
                task: 5,
            }),
            events: vec![],
            custom_status: None,
        },
    )
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
    });
    let out = match plan {
        Plan::Run(turn) => turn.finish(raw(commands))?,
        Plan::Commit(out) => *out,
        Plan::NotStarted | Plan::Unsupported(_) => panic!("not runnable"),
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

fn kinds(history: &[HistoryRow]) -> Vec<&'static str> {
    history.iter().map(|r| r.event.kind()).collect()
}

fn jobs_json(turn: &Turn) -> String {
    serde_json::to_string(&turn.jobs).unwrap()
}

fn plan_of(history: &[HistoryRow], messages: &[QueuedMessage], incremental: bool) -> Plan {
    prepare(TurnInput {
        instance_id: "i1",
        execution_id: 1,
        history,
        messages,
        now: 5000,
        incremental,
    })
}

fn completed(task: u32, value: &str) -> Message {
    Message::ActivityCompleted {
        execution_id: 1,
        task,
        result: p(value),
    }
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

#[test]
fn start_turn_records_start_and_schedules() {
    let mut h = Vec::new();
    let out = run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"activity","task":1,"name":"A","input":{"x":1}}]"#,
    )
    .unwrap();
    assert_eq!(kinds(&h), vec!["ExecutionStarted", "ActivityScheduled"]);
    assert_eq!(out.activities.len(), 1);
    assert_eq!(out.activities[0].input.get(), r#"{"x":1}"#);
    assert_eq!(out.consumed, vec![1]);
    assert_eq!(out.started, Some(("Flow".into(), Some("1.0.0".into()))));
}

#[test]
fn incremental_turn_sends_only_new_jobs_and_full_replay_sends_all() {
    let h = two_step_history();
    let m = [msg(3, completed(2, "8"))];
    let Plan::Run(inc) = plan_of(&h, &m, true) else {
        panic!()
    };
    assert_eq!(inc.replay_count, 0);
    assert_eq!(
        jobs_json(&inc),
        r#"[{"t":"ok","ts":5000,"task":2,"value":8}]"#
    );
    let Plan::Run(full) = plan_of(&h, &m, false) else {
        panic!()
    };
    assert_eq!(full.replay_count, 2);
    assert_eq!(
        jobs_json(&full),
        r#"[{"t":"start","ts":1000,"input":{"n":1}},{"t":"ok","ts":1000,"task":1,"value":7},{"t":"ok","ts":5000,"task":2,"value":8}]"#
    );
    // A full replay that reproduces history's commands is accepted; the new ones are written.
    let out = full
        .finish(raw(r#"[{"t":"activity","task":1,"name":"A","input":1},{"t":"activity","task":2,"name":"B","input":"changed input is fine"},{"t":"complete","output":15}]"#))
        .unwrap();
    assert_eq!(
        event_kinds(&out.events),
        vec!["ActivityCompleted", "ExecutionCompleted"]
    );
    assert!(matches!(out.terminal, Some(Terminal::Completed(ref v)) if v.get() == "15"));
}

fn replay_error(commands: &str) -> String {
    let h = two_step_history();
    let Plan::Run(full) = plan_of(&h, &[msg(3, completed(2, "8"))], false) else {
        panic!()
    };
    match full.finish(raw(commands)) {
        Err(EngineError::Nondeterminism(m)) => m,
        other => panic!("expected nondeterminism, got {other:?}"),
    }
}

#[test]
fn nondeterminism_activity_name_changed() {
    let m = replay_error(
        r#"[{"t":"activity","task":1,"name":"A","input":1},{"t":"activity","task":2,"name":"C","input":7}]"#,
    );
    assert_eq!(
        m,
        "history has activity 'B' (task 2) as step 2 but the code scheduled activity 'C' (task 2)"
    );
}

#[test]
fn nondeterminism_kind_changed() {
    let m = replay_error(r#"[{"t":"timer","task":1,"delayMs":10}]"#);
    assert_eq!(
        m,
        "history has activity 'A' (task 1) as step 1 but the code scheduled timer (task 1)"
    );
}

#[test]
fn nondeterminism_step_removed() {
    let m = replay_error(r#"[{"t":"activity","task":1,"name":"A","input":1}]"#);
    assert_eq!(
        m,
        "history has activity 'B' (task 2) as step 2 but the code no longer schedules it"
    );
}

#[test]
fn nondeterminism_completed_early() {
    let m = replay_error(
        r#"[{"t":"activity","task":1,"name":"A","input":1},{"t":"complete","output":1}]"#,
    );
    assert_eq!(
        m,
        "history has activity 'B' (task 2) as step 2 but the code completed instead"
    );
}

#[test]
fn nondeterminism_task_number_changed() {
    let m = replay_error(
        r#"[{"t":"activity","task":1,"name":"A","input":1},{"t":"activity","task":3,"name":"B","input":7}]"#,
    );
    assert_eq!(
        m,
        "history has activity 'B' (task 2) as step 2 but the code scheduled activity 'B' (task 3)"
    );
}

#[test]
fn nondeterminism_explicit_child_id_changed() {
    let mut h = Vec::new();
    run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"child","task":1,"name":"Sub","id":"kid-a","input":null}]"#,
    )
    .unwrap();
    let Plan::Run(full) = plan_of(&h, &[msg(2, event("x", "1"))], false) else {
        panic!()
    };
    let err = full
        .finish(raw(
            r#"[{"t":"child","task":1,"name":"Sub","id":"kid-b","input":null}]"#,
        ))
        .unwrap_err();
    assert_eq!(
        err,
        EngineError::Nondeterminism(
            "history has sub-orchestration 'Sub' with id 'kid-a' (task 1) as step 1 but the code scheduled sub-orchestration 'Sub' with id 'kid-b' (task 1)".into()
        )
    );
    assert_eq!(err.code().as_str(), "ERR_NONDETERMINISM");
}

#[test]
fn late_and_stale_completions_are_dropped_without_running_the_driver() {
    let mut h = Vec::new();
    let first = run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"activity","task":1,"name":"A"},{"t":"timer","task":2,"delayMs":50},{"t":"cancel","task":1}]"#,
    )
    .unwrap();
    // The activity scheduled and cancelled in one turn is never enqueued.
    assert!(first.activities.is_empty());
    assert_eq!(
        kinds(&h),
        vec![
            "ExecutionStarted",
            "ActivityScheduled",
            "TimerCreated",
            "TaskCanceled"
        ]
    );
    let plan = plan_of(
        &h,
        &[
            msg(2, completed(1, "1")),
            msg(
                3,
                Message::ActivityCompleted {
                    execution_id: 0,
                    task: 2,
                    result: p("1"),
                },
            ),
            msg(4, completed(9, "1")),
        ],
        true,
    );
    let Plan::Commit(out) = plan else {
        panic!("expected a commit-only plan")
    };
    assert!(out.events.is_empty());
    assert_eq!(out.consumed, vec![2, 3, 4]);
}

#[test]
fn cancel_in_same_turn_removes_queued_work_and_later_cancel_deletes_rows() {
    let mut h = Vec::new();
    let out = run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"activity","task":1,"name":"A"},{"t":"timer","task":2,"delayMs":50},{"t":"cancel","task":1}]"#,
    )
    .unwrap();
    assert!(out.activities.is_empty());
    assert!(
        out.canceled_activities.is_empty(),
        "removed from the turn's writes, not listed for deletion"
    );
    assert_eq!(out.timers.len(), 1);
    assert_eq!(out.timers[0].fire_at, 1050);
    let out = run(
        &mut h,
        &[msg(2, event("go", "true"))],
        true,
        r#"[{"t":"cancel","task":2}]"#,
    )
    .unwrap();
    assert_eq!(out.canceled_timers, vec![2]);
}

#[test]
fn messages_before_start_wait_and_events_are_kept() {
    let early = msg(1, event("e", "1"));
    assert!(matches!(
        plan_of(&[], std::slice::from_ref(&early), false),
        Plan::NotStarted
    ));
    let Plan::Run(turn) = plan_of(&[], &[early, start_msg(2)], false) else {
        panic!()
    };
    assert_eq!(
        jobs_json(&turn),
        r#"[{"t":"start","ts":5000,"input":{"n":1}},{"t":"event","ts":5000,"name":"e","data":1}]"#
    );
    let out = turn.finish(vec![]).unwrap();
    assert_eq!(out.consumed, vec![2, 1]);
    assert_eq!(
        event_kinds(&out.events),
        vec!["ExecutionStarted", "EventRaised"]
    );
}

#[test]
fn finished_execution_drops_messages() {
    let mut h = Vec::new();
    run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"complete","output":"done"}]"#,
    )
    .unwrap();
    let Plan::Commit(out) = plan_of(&h, &[msg(2, event("e", "1"))], true) else {
        panic!()
    };
    assert!(out.events.is_empty());
    assert_eq!(out.consumed, vec![2]);
}

#[test]
fn cancel_fails_the_execution_and_cascades_to_children() {
    let mut h = Vec::new();
    run(&mut h, &[start_msg(1)], false, r#"[{"t":"child","task":1,"name":"Sub","input":null},{"t":"activity","task":2,"name":"A"}]"#)
        .unwrap();
    let out = run(&mut h, &[msg(2, cancel("user asked"))], true, "[]").unwrap();
    let Some(Terminal::Failed(err)) = &out.terminal else {
        panic!()
    };
    assert_eq!(err.message, "canceled: user asked");
    assert_eq!(err.code.as_deref(), Some("ERR_CANCELED"));
    assert_eq!(out.messages.len(), 1);
    assert_eq!(out.messages[0].instance_id, "i1:1:1");
    assert!(
        matches!(&out.messages[0].message, Message::Cancel { reason } if reason == "user asked"),
        "{:?}",
        out.messages[0].message
    );
}

#[test]
fn child_completion_notifies_parent() {
    let mut h = Vec::new();
    let start = child_start_msg(1);
    let out = run(
        &mut h,
        &[start],
        false,
        r#"[{"t":"complete","output":[1,2]}]"#,
    )
    .unwrap();
    assert_eq!(out.messages.len(), 1);
    assert_eq!(out.messages[0].instance_id, "p");
    match &out.messages[0].message {
        Message::ChildCompleted {
            execution_id,
            task,
            output,
        } => {
            assert_eq!((*execution_id, *task, output.get()), (2, 5, "[1,2]"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn continue_as_new_enqueues_the_next_execution_with_carried_events() {
    let mut h = Vec::new();
    let arrivals = [
        start_msg(1),
        msg(2, event("a", "1")),
        msg(3, event("e", "12345678901234567890")),
    ];
    let out = run(
        &mut h,
        &arrivals,
        false,
        r#"[{"t":"status","value":{"p":1}},{"t":"continueAsNew","input":{"n":2},"carry":[1]}]"#,
    )
    .unwrap();
    assert!(matches!(out.terminal, Some(Terminal::ContinuedAsNew)));
    assert_eq!(out.messages.len(), 1);
    assert_eq!(out.messages[0].instance_id, "i1");
    match &out.messages[0].message {
        Message::Start {
            input,
            events,
            name,
            custom_status,
            ..
        } => {
            assert_eq!(name, "Flow");
            assert_eq!(
                custom_status.as_ref().map(|s| s.get()),
                Some(r#"{"p":1}"#),
                "the custom status is carried over"
            );
            assert_eq!(input.get(), r#"{"n":2}"#);
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].name, "e");
            assert_eq!(
                events[0].data.get(),
                "12345678901234567890",
                "payload text kept exactly"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn continue_as_new_with_an_unknown_event_ordinal_is_a_protocol_error() {
    let Plan::Run(turn) = plan_of(&[], &[start_msg(1)], false) else {
        panic!()
    };
    let err = turn
        .finish(raw(r#"[{"t":"continueAsNew","input":1,"carry":[0]}]"#))
        .unwrap_err();
    assert_eq!(
        err,
        EngineError::Protocol("continue-as-new carries event #0, but only 0 arrived".into())
    );
}

#[test]
fn a_newer_history_format_is_not_replayed() {
    let mut h = Vec::new();
    run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"wait","task":1,"name":"x"}]"#,
    )
    .unwrap();
    if let Event::ExecutionStarted { format, .. } = &mut h[0].event {
        *format = FORMAT_VERSION + 1;
    }
    let Plan::Unsupported(m) = plan_of(&h, &[msg(2, event("x", "1"))], true) else {
        panic!("a newer format must not be replayed")
    };
    assert_eq!(
        m,
        format!(
            "history format {} is newer than this engine's {FORMAT_VERSION}",
            FORMAT_VERSION + 1
        )
    );
}

#[test]
fn protocol_errors_are_not_nondeterminism() {
    let Plan::Run(turn) = plan_of(&[], &[start_msg(1)], false) else {
        panic!()
    };
    let err = turn
        .finish(raw(r#"[{"t":"activity","task":1}]"#))
        .unwrap_err();
    assert_eq!(
        err,
        EngineError::Protocol("command 'activity' is missing 'name'".into())
    );
    let err = turn
        .finish(raw(
            r#"[{"t":"activity","task":1,"name":"A"},{"t":"timer","task":1,"delayMs":1}]"#,
        ))
        .unwrap_err();
    assert_eq!(
        err,
        EngineError::Protocol("task number 1 is already in use".into())
    );
    let err = turn
        .finish(raw(r#"[{"t":"timer","task":1,"delayMs":-5}]"#))
        .unwrap_err();
    assert_eq!(
        err,
        EngineError::Protocol("timer delay must be a finite number >= 0, got -5".into())
    );
}

#[test]
fn fail_records_the_error_and_tells_the_parent() {
    let start = child_start_msg(1);
    let Plan::Run(turn) = plan_of(&[], &[start], false) else {
        panic!()
    };
    let error = TaskError::with_code("gone", "ERR_NOT_REGISTERED");
    let out = turn.fail(error.clone());
    assert_eq!(
        event_kinds(&out.events),
        vec!["ExecutionStarted", "ExecutionFailed"]
    );
    assert!(
        matches!(&out.events[1], Event::ExecutionFailed { error: e, by_engine: true } if *e == error),
        "{:?}",
        out.events[1]
    );
    assert!(matches!(&out.terminal, Some(Terminal::Failed(e)) if *e == error));
    assert_eq!(out.messages.len(), 1);
    assert_eq!(out.messages[0].instance_id, "p");
    assert!(
        matches!(
            &out.messages[0].message,
            Message::ChildFailed { execution_id: 2, task: 5, error: e } if *e == error
        ),
        "{:?}",
        out.messages[0].message
    );
}

#[test]
fn ending_lists_the_execution_s_open_activities_and_timers_for_deletion() {
    let mut h = Vec::new();
    run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"activity","task":1,"name":"A"},{"t":"timer","task":2,"delayMs":5},{"t":"activity","task":3,"name":"B"}]"#,
    )
    .unwrap();
    let out = run(
        &mut h,
        &[msg(2, completed(3, "1"))],
        true,
        r#"[{"t":"fail","error":{"message":"x"}}]"#,
    )
    .unwrap();
    assert_eq!(out.canceled_activities, vec![1]);
    assert_eq!(out.canceled_timers, vec![2]);
    let Plan::Run(turn) = plan_of(&[], &[start_msg(1)], false) else {
        panic!()
    };
    assert!(turn
        .fail(TaskError::new("gone"))
        .canceled_activities
        .is_empty());
}

fn failed(task: u32, message: &str) -> Message {
    activity_failed(1, task, message)
}

/// A, B succeed; C (task 3) fails and the code rethrows.
fn failed_after_two_history() -> Vec<HistoryRow> {
    let mut h = two_step_history();
    run(
        &mut h,
        &[msg(3, completed(2, "8"))],
        true,
        r#"[{"t":"activity","task":3,"name":"C","input":8,"retry":{"maxAttempts":2}}]"#,
    )
    .unwrap();
    run(
        &mut h,
        &[msg(4, failed(3, "boom"))],
        true,
        r#"[{"t":"fail","error":{"message":"boom"}}]"#,
    )
    .unwrap();
    h
}

#[test]
fn rewind_reruns_only_the_failed_activity() {
    let h = failed_after_two_history();
    assert_eq!(
        kinds(&h)[h.len() - 2..],
        ["ActivityFailed", "ExecutionFailed"]
    );
    let plan = plan_rewind(1, &h).unwrap();
    assert_eq!(plan.last_event_id, h.len() as u64);
    assert_eq!(plan.truncate_from, h.len() as u64 - 1);
    assert_eq!(plan.activities.len(), 1);
    assert_eq!(plan.activities[0].task, 3);
    assert_eq!(plan.activities[0].name, "C");
    assert_eq!(plan.activities[0].retry.as_ref().unwrap().max_attempts, 2);
    assert_eq!(plan.messages.len(), 1);
    assert!(matches!(
        &plan.messages[0].0,
        Message::Retry { error, removed: 2 } if error.message == "boom"
    ));
    assert!(plan.open_children.is_empty());
    assert!(plan.custom_status.is_none());

    // The retry turn replays A and B from history and runs the code after B for real.
    let mut kept: Vec<HistoryRow> = h[..plan.truncate_from as usize - 1].to_vec();
    let Plan::Run(turn) = plan_of(&kept, &[msg(9, plan.messages[0].0.clone())], true) else {
        panic!("a retry must run the code");
    };
    assert!(turn.full_replay);
    assert_eq!(turn.jobs.len(), 3);
    assert_eq!(turn.replay_count, 2);
    let out = turn
        .finish(raw(r#"[{"t":"activity","task":1,"name":"A","input":1},
                {"t":"activity","task":2,"name":"B","input":7},
                {"t":"activity","task":3,"name":"C","input":8}]"#))
        .unwrap();
    assert!(
        out.activities.is_empty(),
        "C is queued by the rewind, not again"
    );
    append(&mut kept, &out);
    assert_eq!(kinds(&kept).last(), Some(&"ExecutionRetried"));
}

#[test]
fn rewind_of_a_fan_out_redelivers_results_that_had_arrived() {
    let mut h = Vec::new();
    run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"activity","task":1,"name":"A","input":1},
            {"t":"activity","task":2,"name":"B","input":2},
            {"t":"timer","task":3,"delayMs":60000}]"#,
    )
    .unwrap();
    run(
        &mut h,
        &[
            msg(2, completed(1, "1")),
            msg(3, event("go", "true")),
            msg(4, failed(2, "bad")),
        ],
        true,
        r#"[{"t":"status","value":"failing"},{"t":"fail","error":{"message":"bad"}}]"#,
    )
    .unwrap();
    let plan = plan_rewind(1, &h).unwrap();
    // Everything from A's result on goes; A's result and the event come back as messages.
    assert_eq!(plan.truncate_from, 5);
    let kinds: Vec<&str> = plan.messages.iter().map(|(m, _)| m.kind()).collect();
    assert_eq!(kinds, ["Retry", "ActivityCompleted", "Event", "TimerFired"]);
    assert_eq!(plan.messages[3].1, Some(1000 + 60000));
    assert_eq!(plan.activities.len(), 1);
    assert_eq!(plan.activities[0].task, 2);
    assert!(matches!(plan.custom_status, Some(None)));
}

#[test]
fn rewind_after_runtime_failure_keeps_the_turn_and_replays_it() {
    let mut h = two_step_history();
    run(&mut h, &[msg(3, failed(2, "bad"))], true, "[]").unwrap();
    let plan = prepare(TurnInput {
        instance_id: "i1",
        execution_id: 1,
        history: &h,
        messages: &[msg(4, event("e", "1"))],
        now: 2000,
        incremental: false,
    });
    let Plan::Run(turn) = plan else { panic!() };
    let out = turn.fail(TaskError::with_code("changed", "ERR_NONDETERMINISM"));
    append(&mut h, &out);
    let plan = plan_rewind(1, &h).unwrap();
    assert_eq!(plan.truncate_from, h.len() as u64, "only the failure goes");
    assert!(plan.activities.is_empty());
    assert_eq!(plan.messages.len(), 1);
    assert!(
        matches!(
            &plan.messages[0],
            (Message::Retry { error, removed: 1 }, None)
                if error.code.as_deref() == Some("ERR_NONDETERMINISM")
        ),
        "{:?}",
        plan.messages[0]
    );
    // The kept turn (the event that arrived) replays; the code after it runs again for real.
    let kept = &h[..plan.truncate_from as usize - 1];
    assert_eq!(kinds(kept).last(), Some(&"EventRaised"));
    let Plan::Run(turn) = plan_of(kept, &[msg(9, plan.messages[0].0.clone())], true) else {
        panic!("a retry must run the code");
    };
    assert!(turn.full_replay);
    assert_eq!(turn.jobs.len(), 4);
    assert_eq!(turn.replay_count, 3);
}

#[test]
fn rewind_of_a_canceled_execution_reopens_its_children() {
    let mut h = Vec::new();
    run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"child","task":1,"name":"Kid","input":null}]"#,
    )
    .unwrap();
    run(&mut h, &[msg(2, cancel("stop"))], true, "[]").unwrap();
    assert_eq!(
        kinds(&h)[h.len() - 2..],
        ["CancelRequested", "ExecutionFailed"]
    );
    let plan = plan_rewind(1, &h).unwrap();
    assert_eq!(plan.truncate_from, h.len() as u64 - 1);
    assert_eq!(plan.open_children, vec![(1, "i1:1:1".to_owned())]);
}

#[test]
fn rewind_refuses_an_execution_that_did_not_fail() {
    let h = two_step_history();
    assert_eq!(
        plan_rewind(1, &h).unwrap_err(),
        "the execution ended with ActivityScheduled, not a failure"
    );
    assert_eq!(
        plan_rewind(1, &[]).unwrap_err(),
        "the execution has no history to retry from"
    );
}

#[test]
fn rewind_reruns_a_task_whose_runtime_error_code_the_code_rethrew() {
    // The activity was not registered anywhere; the code let the failure through.
    let mut h = two_step_history();
    let failure = Message::ActivityFailed {
        execution_id: 1,
        task: 2,
        error: TaskError::with_code("activity 'B' is not registered", "ERR_NOT_REGISTERED"),
    };
    run(
        &mut h,
        &[msg(3, failure)],
        true,
        r#"[{"t":"fail","error":{"message":"activity 'B' is not registered","code":"ERR_NOT_REGISTERED"}}]"#,
    )
    .unwrap();
    let plan = plan_rewind(1, &h).unwrap();
    assert_eq!(
        plan.truncate_from,
        h.len() as u64 - 1,
        "the task failure goes"
    );
    assert_eq!(plan.activities.len(), 1);
    assert_eq!(plan.activities[0].name, "B");
}

#[test]
fn rewind_never_undoes_work_done_after_a_caught_failure() {
    // A fails and is caught; C is scheduled and succeeds (a charge); then the code throws.
    let mut h = two_step_history();
    run(
        &mut h,
        &[msg(3, failed(2, "B broke"))],
        true,
        r#"[{"t":"activity","task":3,"name":"C","input":0}]"#,
    )
    .unwrap();
    run(
        &mut h,
        &[msg(4, completed(3, "\"charged\""))],
        true,
        r#"[{"t":"fail","error":{"message":"a bug"}}]"#,
    )
    .unwrap();
    let plan = plan_rewind(1, &h).unwrap();
    assert_eq!(plan.truncate_from, h.len() as u64, "only the failure goes");
    assert!(plan.activities.is_empty(), "C is not run again");
}

#[test]
fn rewind_keeps_a_failing_turn_that_started_a_sub_orchestration() {
    let mut h = two_step_history();
    run(
        &mut h,
        &[msg(3, failed(2, "B broke"))],
        true,
        r#"[{"t":"child","task":3,"name":"Undo","input":null},{"t":"fail","error":{"message":"B broke"}}]"#,
    )
    .unwrap();
    let plan = plan_rewind(1, &h).unwrap();
    assert_eq!(
        plan.truncate_from,
        h.len() as u64,
        "the child exists: the turn stays"
    );
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

fn event_kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind()).collect()
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

fn activity_failed(execution_id: u64, task: u32, message: &str) -> Message {
    Message::ActivityFailed {
        execution_id,
        task,
        error: TaskError::new(message),
    }
}

/// Open: activity 1, timer 2, children 3 and 4, activity 8. Settled: activity 5, timer 6,
/// child 7.
const EVERY_KIND_COMMANDS: &str = r#"[{"t":"activity","task":1,"name":"A","input":1},
    {"t":"timer","task":2,"delayMs":10},
    {"t":"child","task":3,"name":"Sub","input":null},
    {"t":"child","task":4,"name":"Sub","input":null},
    {"t":"activity","task":5,"name":"B","input":5},
    {"t":"timer","task":6,"delayMs":10},
    {"t":"child","task":7,"name":"Sub","input":null},
    {"t":"activity","task":8,"name":"C","input":8}]"#;

fn tasks_of_every_kind_history() -> Vec<HistoryRow> {
    let mut h = Vec::new();
    run(&mut h, &[start_msg(1)], false, EVERY_KIND_COMMANDS).unwrap();
    run(
        &mut h,
        &[
            msg(2, completed(5, "5")),
            msg(3, timer_fired(1, 6)),
            msg(4, child_completed(1, 7, "7")),
        ],
        true,
        "[]",
    )
    .unwrap();
    h
}

#[test]
fn results_for_another_execution_or_for_tasks_that_are_not_open_are_dropped() {
    let h = tasks_of_every_kind_history();
    assert_eq!(
        kinds(&h)[h.len() - 3..],
        ["ActivityCompleted", "TimerFired", "ChildCompleted"]
    );
    let stale = [
        // Another execution's results for task numbers open in this one.
        Message::ActivityCompleted {
            execution_id: 2,
            task: 1,
            result: p("1"),
        },
        activity_failed(2, 1, "x"),
        timer_fired(2, 2),
        child_completed(2, 3, "3"),
        child_failed(2, 4, "x"),
        // This execution's results for tasks already settled.
        completed(5, "5"),
        activity_failed(1, 5, "x"),
        timer_fired(1, 6),
        child_completed(1, 7, "7"),
        child_failed(1, 7, "x"),
        // Open task numbers of another kind, and an unknown one.
        activity_failed(1, 2, "x"),
        timer_fired(1, 1),
        child_completed(1, 2, "2"),
        child_failed(1, 1, "x"),
        timer_fired(1, 99),
    ];
    for message in stale {
        let described = format!("{message:?}");
        let Plan::Commit(out) = plan_of(&h, &[msg(10, message)], true) else {
            panic!("{described} must be dropped without running the code")
        };
        assert!(out.events.is_empty(), "{described}: {:?}", out.events);
        assert_eq!(out.consumed, vec![10], "{described}");
        assert!(!out.changes_instance(), "{described}");
    }
}

#[test]
fn results_for_open_tasks_of_this_execution_become_jobs_of_every_kind() {
    let h = tasks_of_every_kind_history();
    let arrivals = [
        msg(20, activity_failed(1, 8, "C broke")),
        msg(21, timer_fired(1, 2)),
        msg(22, child_completed(1, 3, r#""three""#)),
        msg(23, child_failed(1, 4, "four broke")),
        msg(24, completed(1, "1")),
        msg(25, event("go", "true")),
    ];
    let Plan::Run(turn) = plan_of(&h, &arrivals, false) else {
        panic!("the results must run the code")
    };
    // History replays first (the start, then its three results), then the arrivals.
    assert_eq!(turn.replay_count, 4);
    assert_eq!(
        jobs_json(&turn),
        concat!(
            r#"[{"t":"start","ts":1000,"input":{"n":1}},"#,
            r#"{"t":"ok","ts":1000,"task":5,"value":5},"#,
            r#"{"t":"ok","ts":1000,"task":6,"value":null},"#,
            r#"{"t":"ok","ts":1000,"task":7,"value":7},"#,
            r#"{"t":"err","ts":5000,"task":8,"error":{"message":"C broke"}},"#,
            r#"{"t":"ok","ts":5000,"task":2,"value":null},"#,
            r#"{"t":"ok","ts":5000,"task":3,"value":"three"},"#,
            r#"{"t":"err","ts":5000,"task":4,"error":{"message":"four broke"}},"#,
            r#"{"t":"ok","ts":5000,"task":1,"value":1},"#,
            r#"{"t":"event","ts":5000,"name":"go","data":true}]"#
        )
    );
    let out = turn.finish(raw(EVERY_KIND_COMMANDS)).unwrap();
    assert_eq!(
        event_kinds(&out.events),
        [
            "ActivityFailed",
            "TimerFired",
            "ChildCompleted",
            "ChildFailed",
            "ActivityCompleted",
            "EventRaised"
        ]
    );
    assert_eq!(out.consumed, vec![20, 21, 22, 23, 24, 25]);
    assert!(out.activities.is_empty() && out.timers.is_empty() && out.starts.is_empty());
}

#[test]
fn a_full_replay_whose_arrivals_were_all_dropped_commits_without_running_the_code() {
    let h = two_step_history();
    let Plan::Commit(out) = plan_of(&h, &[msg(3, completed(1, "7"))], false) else {
        panic!("nothing new for the code: commit only")
    };
    assert!(out.events.is_empty());
    assert_eq!(out.consumed, vec![3]);
    assert!(!out.changes_instance());
}

#[test]
fn a_retry_with_a_new_arrival_replays_all_of_the_kept_history() {
    let h = failed_after_two_history();
    let plan = plan_rewind(1, &h).unwrap();
    let kept = &h[..plan.truncate_from as usize - 1];
    assert_eq!(
        kinds(kept),
        [
            "ExecutionStarted",
            "ActivityScheduled",
            "ActivityCompleted",
            "ActivityScheduled",
            "ActivityCompleted",
            "ActivityScheduled"
        ]
    );
    let arrivals = [
        msg(9, plan.messages[0].0.clone()),
        msg(10, event("go", "1")),
    ];
    let Plan::Run(turn) = plan_of(kept, &arrivals, true) else {
        panic!("a retry must run the code")
    };
    assert!(turn.full_replay);
    assert_eq!(turn.jobs.len(), 4);
    assert_eq!(turn.replay_count, 3, "the event is the only live job");
}

/// Started; timer 1, wait 2 'go', detached 3 'Side' (id 'side-1'), custom status, cancel of
/// timer 1, activity 4 'A': the code's commands in that order.
const SIX_STEPS: [&str; 6] = [
    r#"{"t":"timer","task":1,"delayMs":10}"#,
    r#"{"t":"wait","task":2,"name":"go"}"#,
    r#"{"t":"detached","task":3,"name":"Side","id":"side-1","input":null}"#,
    r#"{"t":"status","value":"s"}"#,
    r#"{"t":"cancel","task":1}"#,
    r#"{"t":"activity","task":4,"name":"A","input":null}"#,
];

fn commands_of(steps: &[&str]) -> String {
    format!("[{}]", steps.join(","))
}

fn six_step_replay(steps: &[&str]) -> Result<TurnOutcome, EngineError> {
    let mut h = Vec::new();
    run(&mut h, &[start_msg(1)], false, &commands_of(&SIX_STEPS)).unwrap();
    assert_eq!(
        kinds(&h),
        [
            "ExecutionStarted",
            "TimerCreated",
            "EventWaitStarted",
            "DetachedStarted",
            "CustomStatusSet",
            "TaskCanceled",
            "ActivityScheduled"
        ]
    );
    let arrival = msg(2, event("go", "1"));
    let Plan::Run(turn) = plan_of(&h, &[arrival], false) else {
        panic!("the event must run the code")
    };
    turn.finish(raw(&commands_of(steps)))
}

#[test]
fn a_replay_that_reproduces_timers_waits_detached_starts_cancels_and_statuses_writes_nothing_again()
{
    let out = six_step_replay(&SIX_STEPS).unwrap();
    assert_eq!(event_kinds(&out.events), ["EventRaised"]);
    assert!(out.timers.is_empty() && out.starts.is_empty() && out.activities.is_empty());
    assert!(out.canceled_timers.is_empty());
    assert!(out.custom_status.is_none());
    assert!(!out.changes_instance());
}

#[test]
fn a_replay_that_drops_any_recorded_step_is_nondeterminism() {
    let described = [
        "timer (task 1)",
        "wait for event 'go' (task 2)",
        "detached orchestration 'Side' with id 'side-1' (task 3)",
        "custom status",
        "cancel (task 1)",
        "activity 'A' (task 4)",
    ];
    for (k, what) in described.iter().enumerate() {
        assert_eq!(
            six_step_replay(&SIX_STEPS[..k]).unwrap_err(),
            EngineError::Nondeterminism(format!(
                "history has {what} as step {} but the code no longer schedules it",
                k + 1
            ))
        );
    }
}

#[test]
fn a_replay_that_changes_a_timer_wait_detached_start_cancel_or_status_is_nondeterminism() {
    let cases = [
        (
            0,
            r#"{"t":"timer","task":5,"delayMs":10}"#,
            "history has timer (task 1) as step 1 but the code scheduled timer (task 5)",
        ),
        (
            1,
            r#"{"t":"wait","task":2,"name":"stop"}"#,
            "history has wait for event 'go' (task 2) as step 2 but the code scheduled wait for event 'stop' (task 2)",
        ),
        (
            2,
            r#"{"t":"detached","task":3,"name":"Side","id":"side-2","input":null}"#,
            "history has detached orchestration 'Side' with id 'side-1' (task 3) as step 3 but the code scheduled detached orchestration 'Side' with id 'side-2' (task 3)",
        ),
        (
            3,
            r#"{"t":"cancel","task":2}"#,
            "history has custom status as step 4 but the code scheduled cancel (task 2)",
        ),
        (
            4,
            r#"{"t":"cancel","task":2}"#,
            "history has cancel (task 1) as step 5 but the code scheduled cancel (task 2)",
        ),
    ];
    for (k, changed, expected) in cases {
        let mut steps = SIX_STEPS.to_vec();
        steps[k] = changed;
        assert_eq!(
            six_step_replay(&steps).unwrap_err(),
            EngineError::Nondeterminism(expected.into())
        );
    }
}

#[test]
fn a_replay_that_fails_or_continues_as_new_early_names_what_the_code_did() {
    assert_eq!(
        replay_error(
            r#"[{"t":"activity","task":1,"name":"A","input":1},{"t":"fail","error":{"message":"x"}}]"#
        ),
        "history has activity 'B' (task 2) as step 2 but the code failed instead"
    );
    assert_eq!(
        replay_error(r#"[{"t":"continueAsNew","input":1}]"#),
        "history has activity 'A' (task 1) as step 1 but the code continued as new instead"
    );
}

#[test]
fn cancel_writes_consume_the_claim_and_cancel_only_open_children() {
    let mut h = Vec::new();
    run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"child","task":1,"name":"Sub","input":null},
            {"t":"child","task":2,"name":"Sub","id":"kid-b","input":null},
            {"t":"child","task":3,"name":"Sub","input":null},
            {"t":"activity","task":4,"name":"A"},
            {"t":"timer","task":5,"delayMs":100}]"#,
    )
    .unwrap();
    run(&mut h, &[msg(2, child_completed(1, 1, "1"))], true, "[]").unwrap();
    let arrivals = [
        msg(3, event("e", "1")),
        msg(4, cancel("stop")),
        msg(5, cancel("again")),
    ];
    let Plan::Commit(out) = plan_of(&h, &arrivals, true) else {
        panic!("a cancel does not run the code")
    };
    assert_eq!(
        event_kinds(&out.events),
        ["EventRaised", "CancelRequested", "ExecutionFailed"]
    );
    assert!(
        matches!(&out.events[1], Event::CancelRequested { reason } if reason == "stop"),
        "{:?}",
        out.events[1]
    );
    let error = TaskError::with_code("canceled: stop", "ERR_CANCELED");
    assert!(
        matches!(&out.events[2], Event::ExecutionFailed { error: e, by_engine: false } if *e == error),
        "{:?}",
        out.events[2]
    );
    assert_eq!(out.consumed, vec![3, 4, 5]);
    assert_eq!(out.started, None);
    assert!(matches!(&out.terminal, Some(Terminal::Failed(e)) if *e == error));
    assert!(out.custom_status.is_none());
    let cancels: Vec<(&str, String)> = out
        .messages
        .iter()
        .map(|m| (m.instance_id.as_str(), message_data(&m.message)))
        .collect();
    assert_eq!(
        cancels,
        [
            ("kid-b", r#"{"reason":"stop"}"#.to_owned()),
            ("i1:1:3", r#"{"reason":"stop"}"#.to_owned())
        ],
        "the settled child 1 is not told"
    );
    assert!(out.messages.iter().all(|m| m.message.kind() == "Cancel"));
    assert_eq!(out.canceled_activities, vec![4]);
    assert_eq!(out.canceled_timers, vec![5]);
    assert!(out.activities.is_empty() && out.timers.is_empty() && out.starts.is_empty());
    assert!(out.changes_instance());
}

#[test]
fn cancel_arriving_with_the_start_records_the_start_and_consumes_both() {
    let arrivals = [msg(1, cancel("early")), start_msg(2)];
    let Plan::Commit(out) = plan_of(&[], &arrivals, true) else {
        panic!("a cancel does not run the code")
    };
    assert_eq!(
        event_kinds(&out.events),
        ["ExecutionStarted", "CancelRequested", "ExecutionFailed"]
    );
    assert_eq!(out.consumed, vec![2, 1]);
    assert_eq!(out.started, Some(("Flow".into(), Some("1.0.0".into()))));
    assert!(matches!(&out.terminal, Some(Terminal::Failed(e)) if e.message == "canceled: early"));
    assert!(out.messages.is_empty());
}

#[test]
fn an_outcome_changes_the_instance_only_when_it_starts_ends_or_sets_a_status() {
    assert!(!TurnOutcome::default().changes_instance());
    let busy = TurnOutcome {
        events: vec![Event::TimerFired { task: 1 }],
        consumed: vec![1],
        activities: vec![ActivityRequest {
            task: 2,
            name: "A".into(),
            input: p("null"),
            retry: None,
        }],
        timers: vec![TimerRequest {
            task: 3,
            fire_at: 10,
        }],
        canceled_activities: vec![4],
        canceled_timers: vec![5],
        ..Default::default()
    };
    assert!(!busy.changes_instance());
    let started = TurnOutcome {
        started: Some(("Flow".into(), None)),
        ..Default::default()
    };
    assert!(started.changes_instance());
    let ended = TurnOutcome {
        terminal: Some(Terminal::ContinuedAsNew),
        ..Default::default()
    };
    assert!(ended.changes_instance());
    let status = TurnOutcome {
        custom_status: Some(p(r#""s""#)),
        ..Default::default()
    };
    assert!(status.changes_instance());
}

#[test]
fn cancelling_work_scheduled_in_the_same_turn_keeps_the_rest_of_it() {
    let mut h = Vec::new();
    let out = run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"timer","task":1,"delayMs":10},{"t":"timer","task":2,"delayMs":20},
            {"t":"activity","task":3,"name":"A"},{"t":"activity","task":4,"name":"B"},
            {"t":"cancel","task":1},{"t":"cancel","task":4}]"#,
    )
    .unwrap();
    assert_eq!(
        out.timers
            .iter()
            .map(|t| (t.task, t.fire_at))
            .collect::<Vec<_>>(),
        [(2, 1020)]
    );
    assert_eq!(
        out.activities
            .iter()
            .map(|a| (a.task, a.name.as_str()))
            .collect::<Vec<_>>(),
        [(3, "A")]
    );
    assert!(out.canceled_timers.is_empty() && out.canceled_activities.is_empty());
}

#[test]
fn a_timer_of_zero_or_a_fraction_of_a_millisecond_is_accepted() {
    let mut h = Vec::new();
    let out = run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"timer","task":1,"delayMs":0},{"t":"timer","task":2,"delayMs":0.25}]"#,
    )
    .unwrap();
    assert_eq!(
        out.timers
            .iter()
            .map(|t| (t.task, t.fire_at))
            .collect::<Vec<_>>(),
        [(1, 1000), (2, 1001)]
    );
}

#[test]
fn events_name_their_task_and_only_completion_failure_and_continue_as_new_end_an_execution() {
    let err = || TaskError::new("x");
    let cases: Vec<(Event, Option<u32>, bool)> = vec![
        (
            Event::ExecutionStarted {
                name: "Flow".into(),
                version: None,
                input: p("null"),
                format: FORMAT_VERSION,
                parent: None,
                events: vec![],
                custom_status: None,
            },
            None,
            false,
        ),
        (
            Event::ActivityScheduled {
                task: 1,
                name: "A".into(),
                input: p("null"),
                retry: None,
            },
            Some(1),
            false,
        ),
        (
            Event::ActivityCompleted {
                task: 2,
                result: p("1"),
            },
            Some(2),
            false,
        ),
        (
            Event::ActivityFailed {
                task: 3,
                error: err(),
            },
            Some(3),
            false,
        ),
        (
            Event::TimerCreated {
                task: 4,
                fire_at: 9,
            },
            Some(4),
            false,
        ),
        (Event::TimerFired { task: 5 }, Some(5), false),
        (
            Event::EventWaitStarted {
                task: 6,
                name: "go".into(),
            },
            Some(6),
            false,
        ),
        (
            Event::EventRaised {
                name: "go".into(),
                data: p("1"),
            },
            None,
            false,
        ),
        (
            Event::ChildScheduled {
                task: 7,
                name: "Sub".into(),
                instance_id: "kid".into(),
                explicit_id: true,
                input: p("null"),
                version: None,
            },
            Some(7),
            false,
        ),
        (
            Event::ChildCompleted {
                task: 8,
                output: p("1"),
            },
            Some(8),
            false,
        ),
        (
            Event::ChildFailed {
                task: 9,
                error: err(),
            },
            Some(9),
            false,
        ),
        (
            Event::DetachedStarted {
                task: 10,
                name: "Side".into(),
                instance_id: "side".into(),
                input: p("null"),
                version: None,
            },
            Some(10),
            false,
        ),
        (Event::TaskCanceled { task: 11 }, Some(11), false),
        (Event::CustomStatusSet { value: p("1") }, None, false),
        (
            Event::CancelRequested {
                reason: "stop".into(),
            },
            None,
            false,
        ),
        (Event::ExecutionCompleted { output: p("1") }, None, true),
        (
            Event::ExecutionFailed {
                error: err(),
                by_engine: false,
            },
            None,
            true,
        ),
        (
            Event::ContinuedAsNew {
                input: p("1"),
                version: None,
                events: vec![],
            },
            None,
            true,
        ),
        (
            Event::ExecutionRetried {
                error: err(),
                removed: 2,
            },
            None,
            false,
        ),
    ];
    for (event, task, terminal) in cases {
        assert_eq!(event.task(), task, "{}", event.kind());
        assert_eq!(event.is_terminal(), terminal, "{}", event.kind());
    }
}

#[test]
fn an_engine_failure_is_stored_with_its_flag_and_a_code_failure_without_one() {
    let by_code = Event::ExecutionFailed {
        error: TaskError::new("x"),
        by_engine: false,
    };
    assert_eq!(event_data(&by_code), r#"{"error":{"message":"x"}}"#);
    let by_engine = Event::ExecutionFailed {
        error: TaskError::with_code("changed", "ERR_NONDETERMINISM"),
        by_engine: true,
    };
    let data = event_data(&by_engine);
    assert_eq!(
        data,
        r#"{"error":{"message":"changed","code":"ERR_NONDETERMINISM"},"byEngine":true}"#
    );
    assert!(matches!(
        event_from_row("ExecutionFailed", &data).unwrap(),
        Event::ExecutionFailed {
            by_engine: true,
            ..
        }
    ));
    assert!(matches!(
        event_from_row("ExecutionFailed", r#"{"error":{"message":"x"}}"#).unwrap(),
        Event::ExecutionFailed {
            by_engine: false,
            ..
        }
    ));
}

#[test]
fn a_retry_policy_without_a_backoff_is_exponential() {
    let policy: RetryPolicy = serde_json::from_str(r#"{"maxAttempts":3}"#).unwrap();
    assert_eq!(
        policy,
        RetryPolicy {
            max_attempts: 3,
            backoff: Backoff::Exponential,
            initial_delay_ms: 0,
            max_delay_ms: None,
            timeout_ms: None,
            jitter: false,
        }
    );
    assert_eq!(
        serde_json::to_string(&policy).unwrap(),
        r#"{"maxAttempts":3,"backoff":"exponential","initialDelayMs":0,"jitter":false}"#
    );
}

#[test]
fn an_unknown_backoff_is_rejected_naming_the_field() {
    for name in ["fixed", "linear", "exponential"] {
        let text = format!(r#"{{"maxAttempts":2,"backoff":"{name}"}}"#);
        assert!(serde_json::from_str::<RetryPolicy>(&text).is_ok(), "{name}");
    }
    let err = serde_json::from_str::<RetryPolicy>(r#"{"maxAttempts":2,"backoff":"quadratic"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("quadratic"), "{err}");
    assert!(
        err.contains("fixed") && err.contains("exponential"),
        "{err}"
    );
}

#[test]
fn messages_are_stored_as_their_fields_and_read_back() {
    let cases = [
        (
            Message::Start {
                name: "Flow".into(),
                version: Some("1.0.0".into()),
                input: p(r#"{"n":1}"#),
                parent: None,
                events: vec![],
                custom_status: None,
            },
            r#"{"name":"Flow","version":"1.0.0","input":{"n":1}}"#,
        ),
        (
            Message::Start {
                name: "Sub".into(),
                version: None,
                input: p("null"),
                parent: Some(ParentLink {
                    instance_id: "p".into(),
                    execution_id: 2,
                    task: 5,
                }),
                events: vec![BufferedEvent {
                    name: "e".into(),
                    data: p("1"),
                }],
                custom_status: Some(p(r#""s""#)),
            },
            r#"{"name":"Sub","version":null,"input":null,"parent":{"instanceId":"p","executionId":2,"task":5},"events":[{"name":"e","data":1}],"customStatus":"s"}"#,
        ),
        (
            completed(2, "7"),
            r#"{"executionId":1,"task":2,"result":7}"#,
        ),
        (
            Message::ActivityFailed {
                execution_id: 1,
                task: 2,
                error: TaskError::with_code("bad", "E"),
            },
            r#"{"executionId":1,"task":2,"error":{"message":"bad","code":"E"}}"#,
        ),
        (timer_fired(1, 3), r#"{"executionId":1,"task":3}"#),
        (event("go", "true"), r#"{"name":"go","data":true}"#),
        (
            child_completed(2, 4, "[1]"),
            r#"{"executionId":2,"task":4,"output":[1]}"#,
        ),
        (
            child_failed(2, 4, "x"),
            r#"{"executionId":2,"task":4,"error":{"message":"x"}}"#,
        ),
        (cancel("stop"), r#"{"reason":"stop"}"#),
        (
            Message::Retry {
                error: TaskError::new("boom"),
                removed: 2,
            },
            r#"{"error":{"message":"boom"},"removed":2}"#,
        ),
    ];
    for (message, data) in cases {
        assert_eq!(message_data(&message), data, "{}", message.kind());
        let back = message_from_row(message.kind(), data).unwrap();
        assert_eq!(back.kind(), message.kind());
        assert_eq!(message_data(&back), data);
    }
}

#[test]
fn every_history_event_has_its_lifecycle_event() {
    use super::lifecycle::Lifecycle;
    let err = || TaskError::with_code("bad", "E");
    let cases: Vec<(Event, &str)> = vec![
        (
            Event::ExecutionStarted {
                name: "Flow".into(),
                version: Some("1.0.0".into()),
                input: p(r#"{"n":1}"#),
                format: FORMAT_VERSION,
                parent: None,
                events: vec![],
                custom_status: None,
            },
            r#""type":"instanceStarted","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"name":"Flow","version":"1.0.0","input":{"n":1}"#,
        ),
        (
            Event::ActivityScheduled {
                task: 1,
                name: "A".into(),
                input: p("[1]"),
                retry: None,
            },
            r#""type":"activityScheduled","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"task":1,"name":"A","input":[1]"#,
        ),
        (
            Event::ActivityCompleted {
                task: 1,
                result: p("2"),
            },
            r#""type":"activityCompleted","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"task":1,"result":2"#,
        ),
        (
            Event::ActivityFailed {
                task: 1,
                error: err(),
            },
            r#""type":"activityFailed","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"task":1,"error":{"message":"bad","code":"E"}"#,
        ),
        (
            Event::TimerCreated {
                task: 2,
                fire_at: 5000,
            },
            r#""type":"timerCreated","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"task":2,"fireAt":5000"#,
        ),
        (
            Event::TimerFired { task: 2 },
            r#""type":"timerFired","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"task":2"#,
        ),
        (
            Event::EventWaitStarted {
                task: 3,
                name: "go".into(),
            },
            r#""type":"eventWaitStarted","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"task":3,"name":"go""#,
        ),
        (
            Event::EventRaised {
                name: "go".into(),
                data: p("true"),
            },
            r#""type":"eventReceived","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"name":"go","data":true"#,
        ),
        (
            Event::ChildScheduled {
                task: 4,
                name: "Sub".into(),
                instance_id: "kid".into(),
                explicit_id: true,
                input: p("null"),
                version: Some("2".into()),
            },
            r#""type":"subOrchestrationScheduled","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"task":4,"name":"Sub","childInstanceId":"kid","input":null"#,
        ),
        (
            Event::ChildCompleted {
                task: 4,
                output: p(r#""done""#),
            },
            r#""type":"subOrchestrationCompleted","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"task":4,"output":"done""#,
        ),
        (
            Event::ChildFailed {
                task: 4,
                error: err(),
            },
            r#""type":"subOrchestrationFailed","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"task":4,"error":{"message":"bad","code":"E"}"#,
        ),
        (
            Event::DetachedStarted {
                task: 5,
                name: "Side".into(),
                instance_id: "side".into(),
                input: p("{}"),
                version: None,
            },
            r#""type":"detachedOrchestrationStarted","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"task":5,"name":"Side","childInstanceId":"side","input":{}"#,
        ),
        (
            Event::TaskCanceled { task: 6 },
            r#""type":"taskCanceled","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"task":6"#,
        ),
        (
            Event::CustomStatusSet {
                value: p(r#"{"p":1}"#),
            },
            r#""type":"customStatusChanged","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"value":{"p":1}"#,
        ),
        (
            Event::CancelRequested {
                reason: "stop".into(),
            },
            r#""type":"cancelRequested","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"reason":"stop""#,
        ),
        (
            Event::ExecutionCompleted { output: p("15") },
            r#""type":"instanceCompleted","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"output":15"#,
        ),
        (
            Event::ExecutionFailed {
                error: err(),
                by_engine: true,
            },
            r#""type":"instanceFailed","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"error":{"message":"bad","code":"E"}"#,
        ),
        (
            Event::ContinuedAsNew {
                input: p(r#"{"n":2}"#),
                version: None,
                events: vec![],
            },
            r#""type":"instanceContinuedAsNew","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"input":{"n":2}"#,
        ),
        (
            Event::ExecutionRetried {
                error: err(),
                removed: 3,
            },
            r#""type":"instanceRetried","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"error":{"message":"bad","code":"E"},"removed":3"#,
        ),
    ];
    for (event, fields) in &cases {
        let l = Lifecycle::of_event(event, "i1", 2, 7, 1234);
        assert_eq!(l.to_json(), format!("{{{fields}}}"), "{}", event.kind());
    }
}

/// Task failures the failing turn took together with other results: activity 1 fails while
/// activity 2's result, timer 3 and child 4 arrive in the same turn; the code then sets a
/// status and fails. `kept_status` is set by the first turn.
fn results_with_the_failure_history(
    carried: Option<&str>,
    kept_status: Option<&str>,
) -> Vec<HistoryRow> {
    let start = msg(
        1,
        Message::Start {
            name: "Flow".into(),
            version: None,
            input: p("null"),
            parent: None,
            events: vec![],
            custom_status: carried.map(p),
        },
    );
    let mut first = vec![
        r#"{"t":"activity","task":1,"name":"A","input":1}"#.to_owned(),
        r#"{"t":"activity","task":2,"name":"B","input":2}"#.to_owned(),
        r#"{"t":"timer","task":3,"delayMs":60000}"#.to_owned(),
        r#"{"t":"child","task":4,"name":"Sub","input":null}"#.to_owned(),
    ];
    if let Some(status) = kept_status {
        first.push(format!(r#"{{"t":"status","value":{status}}}"#));
    }
    let mut h = Vec::new();
    run(&mut h, &[start], false, &format!("[{}]", first.join(","))).unwrap();
    run(
        &mut h,
        &[
            msg(2, activity_failed(1, 1, "bad")),
            msg(3, completed(2, "2")),
            msg(4, timer_fired(1, 3)),
            msg(5, child_completed(1, 4, r#""four""#)),
        ],
        true,
        r#"[{"t":"status","value":"failing"},{"t":"fail","error":{"message":"bad"}}]"#,
    )
    .unwrap();
    h
}

fn plan_messages(plan: &RewindPlan) -> Vec<(&'static str, String, Option<i64>)> {
    plan.messages
        .iter()
        .map(|(m, at)| (m.kind(), message_data(m), *at))
        .collect()
}

#[test]
fn rewind_of_a_failure_taken_with_other_results_redelivers_those_results() {
    let h = results_with_the_failure_history(None, None);
    assert_eq!(
        kinds(&h)[5..],
        [
            "ActivityFailed",
            "ActivityCompleted",
            "TimerFired",
            "ChildCompleted",
            "CustomStatusSet",
            "ExecutionFailed"
        ]
    );
    let plan = plan_rewind(1, &h).unwrap();
    assert_eq!(
        plan.truncate_from, 6,
        "the failing turn goes from its failure on"
    );
    assert_eq!(plan.last_event_id, 11);
    assert_eq!(
        plan_messages(&plan),
        [
            (
                "Retry",
                r#"{"error":{"message":"bad"},"removed":6}"#.to_owned(),
                None
            ),
            (
                "ActivityCompleted",
                r#"{"executionId":1,"task":2,"result":2}"#.to_owned(),
                None
            ),
            (
                "TimerFired",
                r#"{"executionId":1,"task":3}"#.to_owned(),
                None
            ),
            (
                "ChildCompleted",
                r#"{"executionId":1,"task":4,"output":"four"}"#.to_owned(),
                None
            ),
        ]
    );
    assert_eq!(
        plan.activities
            .iter()
            .map(|a| (a.task, a.name.as_str(), a.input.get()))
            .collect::<Vec<_>>(),
        [(1, "A", "1")]
    );
    assert!(
        plan.open_children.is_empty(),
        "child 4's result is redelivered"
    );
    assert!(matches!(plan.custom_status, Some(None)));
}

#[test]
fn rewind_restores_the_custom_status_carried_into_the_execution() {
    let h = results_with_the_failure_history(Some(r#""carried""#), None);
    let plan = plan_rewind(1, &h).unwrap();
    assert_eq!(plan.truncate_from, 6);
    assert_eq!(
        plan.custom_status
            .as_ref()
            .map(|s| s.as_ref().map(|v| v.get())),
        Some(Some(r#""carried""#))
    );
}

#[test]
fn rewind_restores_the_custom_status_the_kept_history_set_last() {
    let h = results_with_the_failure_history(Some(r#""carried""#), Some(r#""kept""#));
    let plan = plan_rewind(1, &h).unwrap();
    assert_eq!(plan.truncate_from, 7);
    assert_eq!(kinds(&h)[5], "CustomStatusSet");
    assert_eq!(
        plan.custom_status
            .as_ref()
            .map(|s| s.as_ref().map(|v| v.get())),
        Some(Some(r#""kept""#))
    );
}

#[test]
fn rewind_redelivers_no_result_for_a_task_the_kept_history_no_longer_waits_for() {
    // History never holds such results (a turn drops them); the rewind does not rely on it.
    let null = || p("null");
    let h = rows(vec![
        Event::ExecutionStarted {
            name: "Flow".into(),
            version: None,
            input: null(),
            format: FORMAT_VERSION,
            parent: None,
            events: vec![],
            custom_status: None,
        },
        Event::ActivityScheduled {
            task: 1,
            name: "A".into(),
            input: null(),
            retry: None,
        },
        Event::TimerCreated {
            task: 2,
            fire_at: 2000,
        },
        Event::ChildScheduled {
            task: 3,
            name: "Sub".into(),
            instance_id: "i1:1:3".into(),
            explicit_id: false,
            input: null(),
            version: None,
        },
        Event::ActivityScheduled {
            task: 4,
            name: "D".into(),
            input: null(),
            retry: None,
        },
        Event::ActivityCompleted {
            task: 1,
            result: p("1"),
        },
        Event::TimerFired { task: 2 },
        Event::ChildCompleted {
            task: 3,
            output: p("3"),
        },
        Event::CustomStatusSet { value: p("1") },
        // The failing turn: results for settled tasks 1, 2, 3 and an unknown timer 7.
        Event::ActivityCompleted {
            task: 1,
            result: p("1"),
        },
        Event::TimerFired { task: 2 },
        Event::ChildCompleted {
            task: 3,
            output: p("3"),
        },
        Event::TimerFired { task: 7 },
        Event::ActivityFailed {
            task: 4,
            error: TaskError::new("D broke"),
        },
        Event::ExecutionFailed {
            error: TaskError::new("D broke"),
            by_engine: false,
        },
    ]);
    let plan = plan_rewind(1, &h).unwrap();
    assert_eq!(plan.truncate_from, 10);
    assert_eq!(
        plan_messages(&plan),
        [(
            "Retry",
            r#"{"error":{"message":"D broke"},"removed":6}"#.to_owned(),
            None
        )]
    );
    assert_eq!(
        plan.activities.iter().map(|a| a.task).collect::<Vec<_>>(),
        [4]
    );
    assert!(plan.open_children.is_empty());
    assert!(plan.custom_status.is_none());
}

#[test]
fn rewind_of_a_history_without_its_start_cuts_at_the_first_event() {
    let failure = || Event::ExecutionFailed {
        error: TaskError::new("x"),
        by_engine: false,
    };
    let only_failure = rows(vec![failure()]);
    let plan = plan_rewind(1, &only_failure).unwrap();
    assert_eq!((plan.truncate_from, plan.last_event_id), (1, 1));
    assert_eq!(
        plan_messages(&plan),
        [(
            "Retry",
            r#"{"error":{"message":"x"},"removed":1}"#.to_owned(),
            None
        )]
    );

    let arrivals_first = rows(vec![
        Event::EventRaised {
            name: "e".into(),
            data: p("1"),
        },
        Event::ActivityFailed {
            task: 1,
            error: TaskError::new("x"),
        },
        failure(),
    ]);
    let plan = plan_rewind(1, &arrivals_first).unwrap();
    assert_eq!((plan.truncate_from, plan.last_event_id), (1, 3));
    assert_eq!(
        plan_messages(&plan),
        [
            (
                "Retry",
                r#"{"error":{"message":"x"},"removed":3}"#.to_owned(),
                None
            ),
            ("Event", r#"{"name":"e","data":1}"#.to_owned(), None)
        ]
    );
    assert!(plan.activities.is_empty(), "task 1 was never scheduled");
}
