//! A cancel message: the execution fails without running the code, its open children are
//! told, and its queued work is listed for deletion.

use super::*;

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
