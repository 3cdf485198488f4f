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
        out.events.iter().map(|e| e.kind()).collect::<Vec<_>>(),
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
    let Plan::Run(full) = plan_of(
        &h,
        &[msg(
            2,
            Message::Event {
                name: "x".into(),
                data: p("1"),
            },
        )],
        false,
    ) else {
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
    assert_eq!(err.code(), "ERR_NONDETERMINISM");
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
        &[msg(
            2,
            Message::Event {
                name: "go".into(),
                data: p("true"),
            },
        )],
        true,
        r#"[{"t":"cancel","task":2}]"#,
    )
    .unwrap();
    assert_eq!(out.canceled_timers, vec![2]);
}

#[test]
fn messages_before_start_wait_and_events_are_kept() {
    let early = msg(
        1,
        Message::Event {
            name: "e".into(),
            data: p("1"),
        },
    );
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
        out.events.iter().map(|e| e.kind()).collect::<Vec<_>>(),
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
    let Plan::Commit(out) = plan_of(
        &h,
        &[msg(
            2,
            Message::Event {
                name: "e".into(),
                data: p("1"),
            },
        )],
        true,
    ) else {
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
    let out = run(
        &mut h,
        &[msg(
            2,
            Message::Cancel {
                reason: "user asked".into(),
            },
        )],
        true,
        "[]",
    )
    .unwrap();
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
    let start = QueuedMessage {
        seq: 1,
        deliveries: 1,
        message: Message::Start {
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
    };
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
        msg(
            2,
            Message::Event {
                name: "a".into(),
                data: p("1"),
            },
        ),
        msg(
            3,
            Message::Event {
                name: "e".into(),
                data: p("12345678901234567890"),
            },
        ),
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
    let Plan::Unsupported(m) = plan_of(
        &h,
        &[msg(
            2,
            Message::Event {
                name: "x".into(),
                data: p("1"),
            },
        )],
        true,
    ) else {
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
    let start = msg(
        1,
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
    );
    let Plan::Run(turn) = plan_of(&[], &[start], false) else {
        panic!()
    };
    let error = TaskError::with_code("gone", "ERR_NOT_REGISTERED");
    let out = turn.fail(error.clone());
    assert_eq!(
        out.events.iter().map(|e| e.kind()).collect::<Vec<_>>(),
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
    Message::ActivityFailed {
        execution_id: 1,
        task,
        error: TaskError::new(message),
    }
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
            msg(
                3,
                Message::Event {
                    name: "go".into(),
                    data: p("true"),
                },
            ),
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
        messages: &[msg(
            4,
            Message::Event {
                name: "e".into(),
                data: p("1"),
            },
        )],
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
    run(
        &mut h,
        &[msg(
            2,
            Message::Cancel {
                reason: "stop".into(),
            },
        )],
        true,
        "[]",
    )
    .unwrap();
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
