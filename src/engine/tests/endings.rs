//! How an execution ends (completion, failure, continue-as-new) and what that writes: the
//! parent's notice, the next execution, the open work to delete.

use super::*;

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
            kv: None,
        },
    )
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
    let Plan::Run(mut turn) = plan_of(&[], &[start_msg(1)], false) else {
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
            session_id: None,
            tag: None,
            orchestration: "O".into(),
            orchestration_version: None,
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
