//! The lifecycle event each history event becomes.

use super::*;

#[test]
fn every_history_event_has_its_lifecycle_event() {
    use crate::engine::lifecycle::Lifecycle;
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
                kv: None,
            },
            r#""type":"instanceStarted","instanceId":"i1","executionId":2,"eventId":7,"timestamp":1234,"name":"Flow","version":"1.0.0","input":{"n":1}"#,
        ),
        (
            Event::ActivityScheduled {
                task: 1,
                name: "A".into(),
                input: p("[1]"),
                retry: None,
                session_id: None,
                tag: None,
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
        assert_eq!(
            l.to_raw().get(),
            format!("{{{fields}}}"),
            "{}",
            event.kind()
        );
    }
}
