//! Counters the runtime keeps; read with `runtime.metricsSnapshot()`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::debug;

use super::{stopping, Inner};
use crate::store::{Orphans, ORCHESTRATION_KIND};

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        #[derive(Debug, Default)]
        pub struct Metrics { $(pub $name: AtomicU64,)* }

        impl Metrics {
            /// `{"name": value, ...}` for the JavaScript side, keys in camelCase (the
            /// Prometheus names, `reprise_` + snake_case, are mapped in `lib/metrics.js`).
            pub fn snapshot_json(&self, gauges: &[(&str, u64)]) -> String {
                let mut map = serde_json::Map::new();
                $(map.insert(camel_case(stringify!($name)), self.$name.load(Relaxed).into());)*
                for (name, value) in gauges {
                    map.insert(camel_case(name), (*value).into());
                }
                serde_json::Value::Object(map).to_string()
            }
        }
    };
}

counters!(
    driver_calls,
    activations,
    jobs_sent,
    full_replays,
    turns_committed,
    turns_abandoned,
    orchestrations_completed,
    orchestrations_failed,
    nondeterminism_errors,
    activity_batches,
    activities_started,
    activities_completed,
    activities_failed,
    activity_retries,
    activities_abandoned,
    poisoned,
    lease_renewals,
    lease_losses,
    store_errors,
    claims,
    claimed_items,
    activity_claims,
    activity_claimed_items,
    activities_claimed_on_commit,
    turns_claimed_on_completion,
    history_events_read,
    runtimes_reaped,
    store_outages,
    // duroxide-node's counters: executions started and continued as new, sub-orchestrations
    // scheduled, and failures by cause (see `FailureCause`).
    orch_starts,
    orch_continue_as_new,
    suborchestration_calls,
    orch_application_errors,
    orch_infrastructure_errors,
    orch_configuration_errors,
    orch_poison,
    activity_app_errors,
    activity_infra_errors,
    activity_config_errors,
    activity_poison,
);

/// `turns_committed` → `turnsCommitted`.
pub fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// What a failure is counted as: the code's own (application), the setup's (an unregistered
/// name, a replay that no longer matches), the runtime's (protocol), or poison.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum FailureCause {
    Application,
    Configuration,
    Infrastructure,
    Poison,
}

impl FailureCause {
    pub(super) fn of(code: Option<&str>) -> Self {
        match code {
            Some("ERR_POISON") => FailureCause::Poison,
            Some("ERR_NOT_REGISTERED" | "ERR_NONDETERMINISM") => FailureCause::Configuration,
            Some("ERR_PROTOCOL") => FailureCause::Infrastructure,
            _ => FailureCause::Application,
        }
    }
}

impl Metrics {
    pub(super) fn orchestration_failed(&self, cause: FailureCause) {
        inc(&self.orchestrations_failed);
        inc(match cause {
            FailureCause::Application => &self.orch_application_errors,
            FailureCause::Configuration => &self.orch_configuration_errors,
            FailureCause::Infrastructure => &self.orch_infrastructure_errors,
            FailureCause::Poison => &self.orch_poison,
        });
    }

    pub(super) fn activity_failed(&self, cause: FailureCause) {
        inc(&self.activities_failed);
        inc(match cause {
            FailureCause::Application => &self.activity_app_errors,
            FailureCause::Configuration => &self.activity_config_errors,
            FailureCause::Infrastructure => &self.activity_infra_errors,
            FailureCause::Poison => &self.activity_poison,
        });
    }
}

pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

/// The runtime's periodic store upkeep: keeps the queue depth and unserved-work gauges of
/// `metricsSnapshot()` fresh, with the orphans its claims take (one query each per period),
/// and, once a minute, deletes the expired events of instances that never came
/// (`Provider::expire_unknown_events`).
pub(super) async fn upkeep_loop(inner: Arc<Inner>) {
    // Events for instances that never came are swept along, once a minute.
    let mut next_sweep = Instant::now();
    while !stopping(&inner) {
        if Instant::now() >= next_sweep {
            next_sweep = Instant::now() + Duration::from_secs(60);
            match inner.provider.expire_unknown_events().await {
                Ok(0) => {}
                Ok(n) => debug!(events = n, "expired events of instances that never started"),
                Err(e) => {
                    inc(&inner.metrics.store_errors);
                    debug!(error = %e, "expiring unknown events failed");
                }
            }
        }
        refresh_orphans(&inner).await;
        match inner.provider.queue_depths().await {
            Ok(depths) => *inner.queue_depths.lock().unwrap() = Some((Instant::now(), depths)),
            Err(e) => {
                inc(&inner.metrics.store_errors);
                debug!(error = %e, "reading queue depths failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(inner.options.metrics_interval_ms)) => {}
            _ = inner.stop.notified() => {}
        }
    }
}

/// Reads which queued work no live runtime can run: counted for metrics, and the names no
/// runtime ever had, or none has had for the unserved grace period, become this runtime's
/// orphans (claimed only to fail their work as not registered).
async fn refresh_orphans(inner: &Inner) {
    let work = match inner
        .provider
        .unserved_work(inner.options.heartbeat_timeout_ms)
        .await
    {
        Ok(work) => work,
        Err(e) => {
            inc(&inner.metrics.store_errors);
            debug!(error = %e, "reading unserved work failed");
            return;
        }
    };
    let grace = inner.options.unserved_grace_ms;
    let mut orphans = Orphans::default();
    let mut waiting = (0, 0);
    for n in work.names {
        let orphan = n.last_seen_at.is_none_or(|seen| work.now - seen >= grace);
        if n.kind == ORCHESTRATION_KIND {
            waiting.0 += n.waiting;
            if orphan {
                orphans.orchestrations.push(n.name);
            }
        } else {
            waiting.1 += n.waiting;
            if orphan {
                orphans.activities.push(n.name);
            }
        }
    }
    *inner.unserved.lock().unwrap() = waiting;
    let current = inner.routing();
    if current.orphans == orphans {
        return;
    }
    if !orphans.orchestrations.is_empty() || !orphans.activities.is_empty() {
        debug!(
            ?orphans,
            "work no runtime has had for the grace period: claimed to fail it"
        );
    }
    let mut next = (*current).clone();
    next.orphans = orphans;
    *inner.routing.write().unwrap() = Arc::new(next);
    let wakers = inner.provider.wakers();
    wakers.orchestrations.notify_one();
    wakers.activities.notify_one();
}
