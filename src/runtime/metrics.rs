//! Counters the runtime keeps; read with `runtime.metricsSnapshot()`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        #[derive(Debug, Default)]
        pub struct Metrics { $(pub $name: AtomicU64,)* }

        impl Metrics {
            /// `{"name": value, ...}` for the JavaScript side.
            pub fn snapshot_json(&self, gauges: &[(&str, u64)]) -> String {
                let mut map = serde_json::Map::new();
                $(map.insert(stringify!($name).to_owned(), self.$name.load(Relaxed).into());)*
                for (name, value) in gauges {
                    map.insert((*name).to_owned(), (*value).into());
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
);

pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}
