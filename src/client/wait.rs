//! Waiting on an instance: woken at once by commits in this process, and polling only for
//! other processes' commits (when the provider cannot be told about them).

use std::pin::Pin;

use tokio::sync::futures::Notified;
use tokio::time::Instant;

use super::watch::{watch_step, WatchCursor, WatchStep};
use crate::store::{InstanceInfo, Provider, Result};

/// Waits for `notified` (a commit in this process), the next look at other processes'
/// commits, or `deadline`.
async fn until_woken(provider: &dyn Provider, notified: Pin<&mut Notified<'_>>, deadline: Instant) {
    let wake_at = match provider.foreign_commit_poll() {
        Some(poll) => (Instant::now() + poll).min(deadline),
        None => deadline,
    };
    tokio::select! {
        _ = notified => {}
        _ = tokio::time::sleep_until(wake_at) => {}
    }
}

/// Re-reads the instance until `done` holds for it: `Some(info)`, or `None` at `deadline`.
pub async fn wait_until(
    provider: &dyn Provider,
    instance_id: &str,
    deadline: Instant,
    done: impl Fn(&InstanceInfo) -> bool,
) -> Result<Option<InstanceInfo>> {
    let wakers = provider.wakers().clone();
    let changed = wakers.watch(instance_id);
    let result = async {
        loop {
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(info) = provider.instance(instance_id).await? {
                if done(&info) {
                    return Ok(Some(info));
                }
            }
            until_woken(provider, notified, deadline).await;
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }
    .await;
    wakers.unwatch(instance_id, changed);
    result
}

/// The next watch step with something in it (or the end), waiting up to `deadline`.
pub async fn watch_next(
    provider: &dyn Provider,
    instance_id: &str,
    cursor: &mut WatchCursor,
    deadline: Instant,
) -> Result<WatchStep> {
    let wakers = provider.wakers().clone();
    let changed = wakers.follow(instance_id);
    let result = async {
        loop {
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let step = watch_step(provider, instance_id, cursor).await?;
            if !step.events.is_empty() || step.done || Instant::now() >= deadline {
                return Ok(step);
            }
            until_woken(provider, notified, deadline).await;
        }
    }
    .await;
    wakers.unfollow(instance_id, changed);
    result
}
