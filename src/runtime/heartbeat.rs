//! The runtime's row in the registry of runtimes: recorded at start, refreshed by a
//! heartbeat from this tokio task (a blocked JavaScript event loop does not stop it), and
//! removed at shutdown. Each heartbeat also removes runtimes whose heartbeat went stale,
//! releasing their leases at once: a dead process's work resumes within the heartbeat
//! timeout, not the lease.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::metrics::{add, inc};
use super::{stopping, Inner};
use crate::store::{Reaped, RuntimeRegistration, SharedProvider, StoreError};

pub(super) async fn heartbeat_loop(inner: Arc<Inner>) {
    let interval = Duration::from_millis(inner.options.heartbeat_interval_ms.max(1));
    let stale = Duration::from_millis(inner.options.heartbeat_timeout_ms.max(0) as u64);
    // After a stretch without heartbeats (this process cut off from the store, or stalled)
    // every other runtime's heartbeat looks stale too: give them one timeout of steady
    // heartbeats to show they live before removing anyone.
    let mut reap_from = Instant::now();
    let mut last_beat = Instant::now();
    let mut outage_since: Option<Instant> = None;
    while !stopping(&inner) {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = inner.stop.notified() => break,
        }
        if last_beat.elapsed() > stale {
            reap_from = Instant::now() + stale;
        }
        let reap = Instant::now() >= reap_from;
        match inner.provider.heartbeat(&inner.registration, reap).await {
            Ok(reaped) => {
                last_beat = Instant::now();
                if let Some(since) = outage_since.take() {
                    info!(
                        after_ms = since.elapsed().as_millis() as u64,
                        "the store is reachable again; work resumes"
                    );
                }
                if !reaped.runtimes.is_empty() {
                    add(&inner.metrics.runtimes_reaped, reaped.runtimes.len() as u64);
                    log_reaped(&reaped);
                }
            }
            Err(StoreError::Locked(reason)) => {
                inc(&inner.metrics.store_errors);
                warn!(%reason, "heartbeat refused: this runtime was taken for dead and its workerNodeId taken over");
            }
            Err(e) if e.is_unavailable() => {
                inc(&inner.metrics.store_errors);
                if outage_since.is_none() {
                    outage_since = Some(Instant::now());
                    inc(&inner.metrics.store_outages);
                    warn!(error = %e, "the store is unreachable: finished activity results are kept, waits go on, and the runtime reconnects by itself");
                }
            }
            Err(e) => {
                inc(&inner.metrics.store_errors);
                debug!(error = %e, "heartbeat failed");
            }
        }
    }
}

pub(super) fn log_reaped(reaped: &Reaped) {
    for runtime in &reaped.runtimes {
        info!(
            dead_runtime = %runtime,
            instances = reaped.instances,
            activities = reaped.activities,
            "a runtime stopped heartbeating and is taken for dead: its leases were released and its work resumes now"
        );
    }
}

/// Before a runtime with `node` (a workerNodeId) starts: the runtime that had the name
/// before, when it is dead (the new one then replaces it at once), or `None`. A
/// predecessor whose heartbeat still advances is alive: `StoreError::Locked`.
pub(super) async fn dead_predecessor(
    provider: &SharedProvider,
    node: &str,
    me: &RuntimeRegistration,
) -> Result<Option<String>, StoreError> {
    let deadline = Instant::now() + Duration::from_millis(me.stale_after_ms.max(0) as u64 + 1_000);
    let mut first_seen = None;
    loop {
        let runtimes = provider.list_runtimes().await?;
        let Some(previous) = runtimes
            .into_iter()
            .find(|r| r.worker_node_id.as_deref() == Some(node))
        else {
            return Ok(None);
        };
        let gone_here = previous.host == me.host
            && !process_exists(previous.pid)
            && previous.pid != me.pid as i64;
        if !previous.alive() || gone_here {
            return Ok(Some(previous.runtime_id));
        }
        let beat = previous.heartbeat_at;
        if first_seen.is_some_and(|first| beat != first) || Instant::now() >= deadline {
            return Err(StoreError::Locked(format!(
                "a runtime with workerNodeId '{node}' is alive on this store (host {}, pid {}, heartbeat {} ms ago); two live processes must never share a workerNodeId",
                previous.host,
                previous.pid,
                previous.now - previous.heartbeat_at
            )));
        }
        first_seen.get_or_insert(beat);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether a process with this id runs on this machine (Linux: `/proc`); elsewhere it is
/// assumed to, so only its heartbeat decides.
fn process_exists(pid: i64) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}
