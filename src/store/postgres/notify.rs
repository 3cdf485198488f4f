//! Wake-ups between processes: LISTEN/NOTIFY on one channel per schema. A commit's change
//! is signalled in this process at once and sent to the others after the commit, coalesced
//! with whatever else is waiting to be sent.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::{mpsc, oneshot};

use super::PostgresProvider;
use crate::store::Wakers;

/// Largest NOTIFY payload sent (the server refuses 8000 bytes and more); a larger change is
/// sent as "every instance changed".
const MAX_NOTIFY_PAYLOAD: usize = 4_000;

impl PostgresProvider {
    /// Signals this process's wakers now and the other processes' through the notifier;
    /// with `wait`, returns once the notification was sent (a client process may exit
    /// right after its call).
    pub(super) async fn signal(&self, change: Change, wait: bool) {
        change.apply(&self.wakers);
        let (done, sent) = if wait {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        if self.changes.send(Outgoing { change, done }).is_ok() {
            if let Some(sent) = sent {
                let _ = sent.await;
            }
        }
    }

    /// For a one-statement client call that notifies as part of its own transaction (one
    /// round trip instead of two; the notification goes out exactly when the change commits):
    /// the channel and payload for `pg_notify`. Signal this process with
    /// [`Self::signal_here`] after the commit.
    pub(super) fn inline_notify(&self, change: &Change) -> (String, String) {
        (self.channel.clone(), change.clone().payload(&self.sender))
    }

    /// Signals this process's wakers only (the other processes heard it from the commit).
    pub(super) fn signal_here(&self, change: &Change) {
        change.apply(&self.wakers);
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What a commit changed, as other processes need to hear it. Serialized as the NOTIFY
/// payload: `{"s":"<sender>","o":true,"a":true,"i":["id"],"all":true}`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(super) struct Change {
    /// The provider that sent it: it ignores its own notifications (it signalled itself).
    #[serde(rename = "s", default)]
    pub sender: String,
    /// Orchestration messages became visible (or may have).
    #[serde(rename = "o", default, skip_serializing_if = "is_false")]
    pub orchestrations: bool,
    /// Activities were enqueued or released.
    #[serde(rename = "a", default, skip_serializing_if = "is_false")]
    pub activities: bool,
    /// Instances whose status or custom status changed.
    #[serde(rename = "i", default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<String>,
    /// Any instance may have changed.
    #[serde(rename = "all", default, skip_serializing_if = "is_false")]
    pub all_instances: bool,
    /// Set when `instances` are known to be still running unless listed in `finished`; a
    /// change without it (or merged with one without it) may have ended any of them.
    #[serde(rename = "x", default, skip_serializing_if = "is_false")]
    pub exact: bool,
    /// With `exact`: the instances among `instances` that ended.
    #[serde(rename = "f", default, skip_serializing_if = "Vec::is_empty")]
    pub finished: Vec<String>,
}

impl Change {
    fn everything() -> Self {
        Change {
            orchestrations: true,
            activities: true,
            all_instances: true,
            ..Default::default()
        }
    }

    fn apply(&self, wakers: &Wakers) {
        if self.orchestrations {
            wakers.orchestrations.notify_one();
        }
        if self.activities {
            wakers.activities.notify_one();
        }
        if self.all_instances {
            wakers.all_instances_changed();
        } else {
            for id in &self.instances {
                if self.exact && !self.finished.contains(id) {
                    wakers.instance_changed_running(id);
                } else {
                    wakers.instance_changed(id);
                }
            }
        }
    }

    fn merge(&mut self, other: Change) {
        self.orchestrations |= other.orchestrations;
        self.activities |= other.activities;
        self.all_instances |= other.all_instances;
        self.instances.extend(other.instances);
        self.exact &= other.exact;
        self.finished.extend(other.finished);
    }

    pub(super) fn payload(mut self, sender: &str) -> String {
        self.sender = sender.to_owned();
        if self.all_instances {
            self.instances.clear();
            self.finished.clear();
        } else {
            let mut seen = HashSet::new();
            self.instances.retain(|id| seen.insert(id.clone()));
            let mut seen = HashSet::new();
            self.finished.retain(|id| seen.insert(id.clone()));
        }
        let text = serde_json::to_string(&self).expect("a change serializes");
        if text.len() <= MAX_NOTIFY_PAYLOAD {
            return text;
        }
        self.instances.clear();
        self.finished.clear();
        self.all_instances = true;
        serde_json::to_string(&self).expect("a change serializes")
    }
}

pub(super) struct Outgoing {
    change: Change,
    done: Option<oneshot::Sender<()>>,
}

/// Sends one NOTIFY for everything queued since the last one (outside any transaction: a
/// NOTIFY inside a turn's transaction would serialize committers on the notify queue).
pub(super) async fn notify_loop(
    pool: PgPool,
    channel: String,
    sender: String,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(first) = rx.recv().await {
        let mut change = first.change;
        let mut waiting: Vec<_> = first.done.into_iter().collect();
        while let Ok(next) = rx.try_recv() {
            change.merge(next.change);
            waiting.extend(next.done);
        }
        let payload = change.payload(&sender);
        if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&channel)
            .bind(&payload)
            .execute(&pool)
            .await
        {
            // While the server is down this repeats; the runtime logs the outage once.
            let e = crate::store::StoreError::from(e);
            if e.is_unavailable() {
                tracing::debug!(error = %e, "could not notify other processes of a change; they see it at their next poll");
            } else {
                tracing::warn!(error = %e, "could not notify other processes of a change; they see it at their next poll");
            }
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}

pub(super) async fn listen(
    pool: &PgPool,
    channel: &str,
) -> std::result::Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

/// Turns other processes' notifications into wake-ups. Notifications sent while the
/// connection was down are lost, so after every reconnect everything is signalled once:
/// the dispatchers claim again and waiting clients re-read their instances.
pub(super) async fn listen_loop(
    pool: PgPool,
    channel: String,
    me: String,
    wakers: Arc<Wakers>,
    mut listener: PgListener,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                match serde_json::from_str::<Change>(notification.payload()) {
                    Ok(change) if change.sender == me => {}
                    Ok(change) => change.apply(&wakers),
                    Err(_) => Change::everything().apply(&wakers),
                }
            }
            Ok(None) => {
                tracing::debug!(%channel, "LISTEN connection re-established; polling once");
                Change::everything().apply(&wakers);
            }
            Err(e) => {
                tracing::warn!(%channel, error = %e, "LISTEN connection failed; reconnecting");
                let mut backoff = Duration::from_millis(100);
                listener = loop {
                    tokio::time::sleep(backoff).await;
                    match listen(&pool, &channel).await {
                        Ok(l) => break l,
                        Err(e) => {
                            tracing::debug!(%channel, error = %e, "LISTEN reconnect failed");
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                        }
                    }
                };
                tracing::info!(%channel, "LISTEN connection re-established; polling once");
                Change::everything().apply(&wakers);
            }
        }
    }
}
