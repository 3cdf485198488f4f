//! Lifecycle events held back so that each instance's events reach JavaScript in order: an
//! activity that a commit queued can be claimed and started elsewhere in this runtime before
//! the commit's own events are sent, and its `activityStarted` must not overtake them.

use super::*;

/// A commit for `instance_id` is about to be written; events for it wait until it is done.
pub(super) fn hold(inner: &Inner, instance_id: &str) {
    inner
        .held_events
        .lock()
        .unwrap()
        .entry(instance_id.to_owned())
        .or_default();
}

/// The commit is done: its own events first (when it committed), then those that waited.
pub(super) fn release(inner: &Inner, instance_id: &str, events: &[Json], committed: bool) {
    let held = inner.held_events.lock().unwrap().remove(instance_id);
    if committed {
        emit_events(inner, events);
    }
    emit_events(inner, &held.unwrap_or_default());
}

/// Sends each `(instance id, event)` now, or after the commit of its instance in progress.
pub(super) fn emit_in_order(inner: &Inner, events: Vec<(String, Json)>) {
    let mut held = inner.held_events.lock().unwrap();
    let mut now = Vec::with_capacity(events.len());
    for (instance_id, event) in events {
        match held.get_mut(&instance_id) {
            Some(waiting) => waiting.push(event),
            None => now.push(event),
        }
    }
    drop(held);
    emit_events(inner, &now);
}
