//! Rewinding a failing turn that took other results with its failure: those results come
//! back as messages, and the custom status the kept history ends with is restored.

use super::*;

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
            kv: None,
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
            kv: None,
        },
        Event::ActivityScheduled {
            task: 1,
            name: "A".into(),
            input: null(),
            retry: None,
            session_id: None,
            tag: None,
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
            session_id: None,
            tag: None,
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
