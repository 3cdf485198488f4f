//! What the runtime sends to JavaScript: one message type, tagged by `kind`.

use super::*;

/// A JSON value serialized once, carried as is inside a message.
pub(super) type Json = Box<RawValue>;

/// Every message the runtime sends to the JavaScript side (`lib/driver.js` reads them).
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub(super) enum HostMessage<'a> {
    /// Turns for the driver; the cached generators to drop come first.
    Turns {
        evict: Vec<String>,
        activations: Vec<Json>,
    },
    /// Activity attempts to run ([`ActivityDelivery`] each).
    Activities { items: Vec<Json> },
    /// Lifecycle events for `runtime.events()`.
    Events { events: &'a [Json] },
    /// Running activities whose outcome is no longer wanted.
    Abort { ids: Vec<i64>, reason: &'a str },
}

/// Queues `message` for the JavaScript thread; `false` if it can no longer be delivered.
pub(super) fn send(inner: &Inner, message: &HostMessage) -> bool {
    inner
        .host
        .send(serde_json::to_string(message).expect("host messages serialize"))
}

/// Serializes a part of a message (an activation, a delivery) ahead of the message.
pub(super) fn to_json<T: Serialize>(value: &T) -> Json {
    serde_json::value::to_raw_value(value).expect("host message parts serialize")
}

/// Where activations and activities go: the JavaScript driver, behind a non-blocking call.
pub trait Host: Send + Sync + 'static {
    /// Queues `message` for the JavaScript thread; `false` if it can no longer be delivered.
    fn send(&self, message: String) -> bool;
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Activation<'a> {
    pub(super) token: u64,
    pub(super) instance_id: &'a str,
    pub(super) execution_id: u64,
    pub(super) name: &'a str,
    pub(super) version: Option<&'a str>,
    /// Replace any cached generator: this activation replays from the start.
    pub(super) fresh: bool,
    /// Keep the generator after this turn.
    pub(super) keep: bool,
    pub(super) replay_count: usize,
    pub(super) jobs: &'a [Job],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ActivityDelivery<'a> {
    pub(super) id: i64,
    pub(super) instance_id: &'a str,
    pub(super) execution_id: u64,
    pub(super) task: u32,
    pub(super) name: &'a str,
    pub(super) input: &'a RawValue,
    pub(super) attempt: u32,
    pub(super) orchestration_name: &'a str,
    pub(super) orchestration_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) session_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tag: Option<&'a str>,
}

pub(super) fn events_enabled(inner: &Inner) -> bool {
    inner.events_enabled.load(Ordering::Relaxed)
}

/// Sends lifecycle events (JSON objects) to JavaScript.
pub(super) fn emit_events(inner: &Inner, events: &[Json]) {
    if events.is_empty() {
        return;
    }
    send(inner, &HostMessage::Events { events });
}

pub(super) fn activity_event<'a>(
    kind: &'static str,
    item: &'a ActivityItem,
    attempt: u32,
) -> Lifecycle<'a> {
    let mut l = Lifecycle::new(kind, &item.instance_id, item.execution_id, now_ms());
    l.task = Some(item.task);
    l.name = Some(&item.name);
    l.attempt = Some(attempt);
    l
}

pub(super) fn abort_in_js(inner: &Inner, ids: Vec<i64>, reason: &str) {
    if ids.is_empty() {
        return;
    }
    send(inner, &HostMessage::Abort { ids, reason });
}
