//! Rewinding a failed execution: where history is cut, which tasks run again, and the retry
//! turn that replays the kept history.

use super::*;

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
    let Plan::Run(mut turn) = plan_of(&kept, &[msg(9, plan.messages[0].0.clone())], true) else {
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
        state: None,
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
