//! In-process wake-ups shared by every backend.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// In-process wake-ups, signalled after commits so nothing has to poll within a process.
#[derive(Default)]
pub struct Wakers {
    /// Orchestration messages became visible.
    pub orchestrations: Notify,
    /// Activities were enqueued.
    pub activities: Notify,
    /// Per-instance watchers of status and custom status: only such a change wakes them.
    watchers: Mutex<HashMap<String, Arc<Notify>>>,
    /// Per-instance followers of everything (history appended, activity attempts): kept
    /// apart so that status waiters are not woken by every turn.
    followers: Mutex<HashMap<String, Arc<Notify>>>,
    /// Per-instance waiters for the end only: not woken when an instance starts running or
    /// sets its custom status.
    finishers: Mutex<HashMap<String, Arc<Notify>>>,
}

fn subscribe(map: &Mutex<HashMap<String, Arc<Notify>>>, instance_id: &str) -> Arc<Notify> {
    map.lock()
        .unwrap()
        .entry(instance_id.to_owned())
        .or_default()
        .clone()
}

fn unsubscribe(map: &Mutex<HashMap<String, Arc<Notify>>>, instance_id: &str, notify: Arc<Notify>) {
    let mut map = map.lock().unwrap();
    drop(notify);
    if map
        .get(instance_id)
        .is_some_and(|n| Arc::strong_count(n) == 1)
    {
        map.remove(instance_id);
    }
}

fn wake(map: &Mutex<HashMap<String, Arc<Notify>>>, id: &str) {
    if let Some(n) = map.lock().unwrap().get(id) {
        n.notify_waiters();
    }
}

impl Wakers {
    /// A Notify woken whenever `instance_id`'s status or custom status changes; pair with
    /// [`Wakers::unwatch`].
    pub fn watch(&self, instance_id: &str) -> Arc<Notify> {
        subscribe(&self.watchers, instance_id)
    }

    pub fn unwatch(&self, instance_id: &str, notify: Arc<Notify>) {
        unsubscribe(&self.watchers, instance_id, notify)
    }

    /// A Notify woken by anything that happens to `instance_id` (a commit, an activity
    /// attempt starting or being retried); pair with [`Wakers::unfollow`].
    pub fn follow(&self, instance_id: &str) -> Arc<Notify> {
        subscribe(&self.followers, instance_id)
    }

    pub fn unfollow(&self, instance_id: &str, notify: Arc<Notify>) {
        unsubscribe(&self.followers, instance_id, notify)
    }

    /// A Notify woken when `instance_id` may have finished (and by any change not known to
    /// leave it running); pair with [`Wakers::unwatch_finish`].
    pub fn watch_finish(&self, instance_id: &str) -> Arc<Notify> {
        subscribe(&self.finishers, instance_id)
    }

    pub fn unwatch_finish(&self, instance_id: &str, notify: Arc<Notify>) {
        unsubscribe(&self.finishers, instance_id, notify)
    }

    /// The instance's status or custom status changed, perhaps to an end (everyone hears
    /// it).
    pub fn instance_changed(&self, instance_id: &str) {
        wake(&self.watchers, instance_id);
        wake(&self.followers, instance_id);
        wake(&self.finishers, instance_id);
    }

    /// The instance's status or custom status changed and it is still running: waiters for
    /// its end sleep on.
    pub fn instance_changed_running(&self, instance_id: &str) {
        wake(&self.watchers, instance_id);
        wake(&self.followers, instance_id);
    }

    /// Something happened to the instance that only followers care about.
    pub fn instance_progressed(&self, instance_id: &str) {
        wake(&self.followers, instance_id);
    }

    /// Wakes every instance watcher, so each re-reads its instance (after changes this
    /// process may have missed, e.g. while a notification connection was down).
    pub fn all_instances_changed(&self) {
        for map in [&self.watchers, &self.followers, &self.finishers] {
            for n in map.lock().unwrap().values() {
                n.notify_waiters();
            }
        }
    }
}
