//! The history model on its own: what events say about themselves, and how events,
//! messages and retry policies are stored and read back.

use super::*;

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
                kv: None,
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
                session_id: None,
                tag: None,
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
            total_timeout_ms: None,
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
                kv: None,
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
                kv: None,
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
