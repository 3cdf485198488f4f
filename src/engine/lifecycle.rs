//! Lifecycle events: what happened to an instance, as `client.watch()` and
//! `runtime.events()` report it. Most come from history events; `activityStarted` and
//! `activityRetried` come from the activity queue (they are never part of history).

use serde::Serialize;
use serde_json::value::RawValue;

use super::history::{Event, TaskError};

/// One lifecycle event, serialized as a flat camelCase JSON object with a `type`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub instance_id: &'a str,
    pub execution_id: u64,
    /// The history event it comes from (absent for queue observations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<u64>,
    /// When it happened (epoch ms, the store's clock).
    pub timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_instance_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<&'a RawValue>,
    /// valueSet: the string stored under `key` (serialized as `value`, like the custom status).
    #[serde(rename = "value", skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a TaskError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fire_at: Option<i64>,
    /// activityRetried: when the next attempt may start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<i64>,
    /// instanceRetried: how many events the retry took out of history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<u64>,
}

impl<'a> Lifecycle<'a> {
    pub fn new(
        kind: &'static str,
        instance_id: &'a str,
        execution_id: u64,
        timestamp: i64,
    ) -> Self {
        Lifecycle {
            kind,
            instance_id,
            execution_id,
            timestamp,
            ..Default::default()
        }
    }

    /// Types reported for activity attempts, which have no history event of their own.
    pub const ATTEMPT_TYPES: [&'static str; 2] = ["activityStarted", "activityRetried"];

    /// The lifecycle event a history event stands for.
    pub fn of_event(
        event: &'a Event,
        instance_id: &'a str,
        execution_id: u64,
        event_id: u64,
        timestamp: i64,
    ) -> Self {
        let kind = match event {
            Event::ExecutionStarted { .. } => "instanceStarted",
            Event::ActivityScheduled { .. } => "activityScheduled",
            Event::ActivityCompleted { .. } => "activityCompleted",
            Event::ActivityFailed { .. } => "activityFailed",
            Event::TimerCreated { .. } => "timerCreated",
            Event::TimerFired { .. } => "timerFired",
            Event::EventWaitStarted { .. } => "eventWaitStarted",
            Event::EventRaised { .. } => "eventReceived",
            Event::ChildScheduled { .. } => "subOrchestrationScheduled",
            Event::ChildCompleted { .. } => "subOrchestrationCompleted",
            Event::ChildFailed { .. } => "subOrchestrationFailed",
            Event::DetachedStarted { .. } => "detachedOrchestrationStarted",
            Event::TaskCanceled { .. } => "taskCanceled",
            Event::CustomStatusSet { .. } => "customStatusChanged",
            Event::KvSet { .. } => "valueSet",
            Event::KvCleared { .. } => "valueCleared",
            Event::KvClearedAll {} => "valuesCleared",
            Event::CancelRequested { .. } => "cancelRequested",
            Event::ExecutionCompleted { .. } => "instanceCompleted",
            Event::ExecutionFailed { .. } => "instanceFailed",
            Event::ContinuedAsNew { .. } => "instanceContinuedAsNew",
            Event::ExecutionRetried { .. } => "instanceRetried",
        };
        let mut l = Lifecycle::new(kind, instance_id, execution_id, timestamp);
        l.event_id = Some(event_id);
        l.task = event.task();
        match event {
            Event::ExecutionStarted {
                name,
                version,
                input,
                ..
            } => {
                l.name = Some(name);
                l.version = version.as_deref();
                l.input = Some(input);
            }
            Event::ActivityScheduled { name, input, .. } => {
                l.name = Some(name);
                l.input = Some(input);
            }
            Event::ActivityCompleted { result, .. } => l.result = Some(result),
            Event::ActivityFailed { error, .. }
            | Event::ChildFailed { error, .. }
            | Event::ExecutionFailed { error, .. } => l.error = Some(error),
            Event::TimerCreated { fire_at, .. } => l.fire_at = Some(*fire_at),
            Event::EventWaitStarted { name, .. } => l.name = Some(name),
            Event::EventRaised { name, data } => {
                l.name = Some(name);
                l.data = Some(data);
            }
            Event::ChildScheduled {
                name,
                instance_id: child,
                input,
                ..
            }
            | Event::DetachedStarted {
                name,
                instance_id: child,
                input,
                ..
            } => {
                l.name = Some(name);
                l.child_instance_id = Some(child);
                l.input = Some(input);
            }
            Event::ChildCompleted { output, .. } | Event::ExecutionCompleted { output } => {
                l.output = Some(output)
            }
            Event::CustomStatusSet { value } => l.value = Some(value),
            Event::KvSet { key, value } => {
                l.key = Some(key);
                l.text = Some(value);
            }
            Event::KvCleared { key } => l.key = Some(key),
            Event::CancelRequested { reason } => l.reason = Some(reason),
            Event::ContinuedAsNew { input, .. } => l.input = Some(input),
            Event::ExecutionRetried { error, removed } => {
                l.error = Some(error);
                l.removed = Some(*removed);
            }
            Event::TimerFired { .. } | Event::TaskCanceled { .. } | Event::KvClearedAll {} => {}
        }
        l
    }

    /// The event as a JSON value to carry inside a message.
    pub fn to_raw(&self) -> Box<serde_json::value::RawValue> {
        serde_json::value::to_raw_value(self).expect("lifecycle events serialize")
    }
}
