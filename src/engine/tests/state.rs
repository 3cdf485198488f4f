//! Turns planned from the state the last turn left (what the runtime keeps beside a cached
//! generator) instead of from the history: the same writes, a rejected turn that changes
//! nothing, and a retried execution that needs its history after all.

use super::*;

fn plan_from(state: ExecutionState, messages: &[QueuedMessage]) -> Plan {
    prepare(TurnInput {
        instance_id: "i1",
        execution_id: 1,
        history: &[],
        state: Some(state),
        messages,
        now: 5000,
        incremental: true,
    })
}

#[test]
fn a_turn_from_kept_state_writes_what_a_turn_from_history_writes() {
    let turns: [(Vec<QueuedMessage>, &str); 4] = [
        (
            vec![start_msg(1)],
            r#"[{"t":"activity","task":1,"name":"A","input":1},{"t":"wait","task":2,"name":"go"}]"#,
        ),
        (
            vec![msg(2, completed(1, "5")), msg(3, event("go", "1"))],
            r#"[{"t":"status","value":"half"},{"t":"timer","task":3,"delayMs":10},{"t":"activity","task":4,"name":"B"}]"#,
        ),
        (
            vec![msg(4, timer_fired(1, 3)), msg(5, event("late", "2"))],
            r#"[{"t":"cancel","task":4}]"#,
        ),
        (
            vec![msg(6, event("more", "3"))],
            r#"[{"t":"continueAsNew","input":7,"carry":[1]}]"#,
        ),
    ];
    let mut history = Vec::new();
    let mut state: Option<ExecutionState> = None;
    for (i, (messages, commands)) in turns.iter().enumerate() {
        let from_history = prepare(TurnInput {
            instance_id: "i1",
            execution_id: 1,
            history: &history,
            state: None,
            messages,
            now: 5000,
            incremental: i > 0,
        });
        let Plan::Run(mut expected_turn) = from_history else {
            panic!("turn {i} runs")
        };
        let expected = expected_turn.finish(raw(commands)).unwrap();
        let mut turn = match state.take() {
            None => expected_turn,
            Some(kept) => {
                let Plan::Run(mut turn) = plan_from(kept, messages) else {
                    panic!("turn {i} runs from state")
                };
                assert_eq!(
                    format!("{:?}", turn.jobs),
                    format!("{:?}", expected_turn.jobs),
                    "turn {i}: the same jobs"
                );
                assert!(!turn.full_replay);
                let out = turn.finish(raw(commands)).unwrap();
                assert_eq!(
                    format!("{out:?}"),
                    format!("{expected:?}"),
                    "turn {i}: the same writes"
                );
                turn
            }
        };
        if i == 0 {
            turn.finish(raw(commands)).unwrap_err(); // task 1 is taken now: refused, undone
        }
        append(&mut history, &expected);
        state = Some(turn.into_state());
    }
}

#[test]
fn a_rejected_turn_leaves_the_kept_state_as_it_was() {
    let mut history = Vec::new();
    run(
        &mut history,
        &[start_msg(1)],
        false,
        r#"[{"t":"activity","task":1,"name":"A"},{"t":"timer","task":2,"delayMs":10}]"#,
    )
    .unwrap();
    let Plan::Run(mut first) = plan_of(&[], &[start_msg(1)], false) else {
        panic!()
    };
    first
        .finish(raw(
            r#"[{"t":"activity","task":1,"name":"A"},{"t":"timer","task":2,"delayMs":10}]"#,
        ))
        .unwrap();
    let Plan::Run(mut turn) = plan_from(first.into_state(), &[msg(2, event("x", "1"))]) else {
        panic!()
    };
    // The cancel closes task 1, then a reused task number makes the driver's answer invalid.
    turn.finish(raw(
        r#"[{"t":"cancel","task":1},{"t":"activity","task":2,"name":"B"}]"#,
    ))
    .unwrap_err();
    // Failing the execution still deletes both open tasks: the cancel was undone.
    let out = turn.fail(TaskError::new("bad driver"));
    assert_eq!(out.canceled_activities, vec![1]);
    assert_eq!(out.canceled_timers, vec![2]);
    // And a valid answer is judged against the state as it was.
    let out = turn.finish(raw(r#"[{"t":"cancel","task":1}]"#)).unwrap();
    assert_eq!(out.canceled_activities, vec![1]);
}

#[test]
fn a_retried_execution_with_kept_state_asks_for_its_history() {
    let Plan::Run(mut first) = plan_of(&[], &[start_msg(1)], false) else {
        panic!()
    };
    first
        .finish(raw(r#"[{"t":"activity","task":1,"name":"A"}]"#))
        .unwrap();
    let retry = Message::Retry {
        error: TaskError::new("boom"),
        removed: 0,
    };
    assert!(matches!(
        plan_from(first.into_state(), &[msg(2, retry)]),
        Plan::NeedHistory
    ));
}
