//! The driver's new commands turned into writes: what is accepted, what is refused as a
//! protocol error, and cancels of tasks the code no longer waits for (a race's losers).

use super::*;

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
fn protocol_errors_are_not_nondeterminism() {
    let Plan::Run(mut turn) = plan_of(&[], &[start_msg(1)], false) else {
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
