//! A full replay checked against history: reproducing the recorded commands writes nothing
//! again; dropping or changing one is nondeterminism, named step by step.

use super::*;

fn replay_error(commands: &str) -> String {
    let h = two_step_history();
    let Plan::Run(mut full) = plan_of(&h, &[msg(3, completed(2, "8"))], false) else {
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
    let Plan::Run(mut full) = plan_of(&h, &[msg(2, event("x", "1"))], false) else {
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
    let Plan::Run(mut turn) = plan_of(&h, &[arrival], false) else {
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
