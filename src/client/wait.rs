//! Waiting on an instance: woken at once by commits in this process, and polling only for
//! other processes' commits (when the provider cannot be told about them).

use std::pin::Pin;

use tokio::sync::futures::Notified;
use tokio::time::Instant;

use super::watch::{watch_step, WatchCursor, WatchStep};
use crate::store::{InstanceInfo, Provider, Result, StoreError};

/// How often a wait looks again while the store is unreachable.
const UNAVAILABLE_RETRY: std::time::Duration = std::time::Duration::from_millis(250);

/// A wait rides through a store outage until its own deadline: an unreachable store is
/// retried (`Ok(None)`), any other error ends the wait.
async fn outage_pause<T>(result: Result<T>, deadline: Instant) -> Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_unavailable() => {
            tracing::debug!(error = %e, "the store is unreachable; the wait goes on");
            tokio::time::sleep_until((Instant::now() + UNAVAILABLE_RETRY).min(deadline)).await;
            Ok(None)
        }
        Err(e) => Err::<Option<T>, StoreError>(e),
    }
}

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

/// What wakes a wait to read its instance again.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum WakeOn {
    /// Any change of status or custom status.
    Change,
    /// Only a change that may have ended the instance.
    End,
}

/// Re-reads the instance until `done` holds for it: `Some(info)`, or `None` at `deadline`.
pub async fn wait_until(
    provider: &dyn Provider,
    instance_id: &str,
    deadline: Instant,
    wake_on: WakeOn,
    done: impl Fn(&InstanceInfo) -> bool,
) -> Result<Option<InstanceInfo>> {
    let done = &done;
    wait_for(
        provider,
        instance_id,
        deadline,
        wake_on,
        move || async move { Ok(provider.instance(instance_id).await?.filter(|i| done(i))) },
    )
    .await
}

/// Calls `look` until it finds something: `Some(found)`, or `None` at `deadline`. `look`
/// runs again whenever the instance changes (`wake_on`).
pub async fn wait_for<T, Look, Found>(
    provider: &dyn Provider,
    instance_id: &str,
    deadline: Instant,
    wake_on: WakeOn,
    look: Look,
) -> Result<Option<T>>
where
    Look: Fn() -> Found,
    Found: std::future::Future<Output = Result<Option<T>>>,
{
    let wakers = provider.wakers().clone();
    let changed = match wake_on {
        WakeOn::Change => wakers.watch(instance_id),
        WakeOn::End => wakers.watch_finish(instance_id),
    };
    let result = async {
        loop {
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match outage_pause(look().await, deadline).await? {
                Some(Some(found)) => return Ok(Some(found)),
                Some(None) => until_woken(provider, notified, deadline).await,
                None => {}
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }
    .await;
    match wake_on {
        WakeOn::Change => wakers.unwatch(instance_id, changed),
        WakeOn::End => wakers.unwatch_finish(instance_id, changed),
    }
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
            let Some(step) =
                outage_pause(watch_step(provider, instance_id, cursor).await, deadline).await?
            else {
                if Instant::now() >= deadline {
                    return Ok(WatchStep::default());
                }
                continue;
            };
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
