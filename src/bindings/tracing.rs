//! Trace lines from JavaScript code, and the store clock, for `lib/`.

use napi_derive::napi;

use crate::store::now_ms;

/// A trace line from orchestration or activity code, inside a span naming the instance.
#[napi]
pub fn trace(
    level: String,
    source: String,
    instance_id: String,
    execution_id: f64,
    name: String,
    message: String,
) {
    let exec = execution_id as u64;
    macro_rules! emit {
        ($target:literal, $span:literal) => {{
            let span = tracing::error_span!(target: $target, $span, instance_id = %instance_id, execution_id = exec, name = %name);
            let _entered = span.enter();
            match level.as_str() {
                "error" => tracing::error!(target: $target, "{message}"),
                "warn" => tracing::warn!(target: $target, "{message}"),
                "debug" => tracing::debug!(target: $target, "{message}"),
                _ => tracing::info!(target: $target, "{message}"),
            }
        }};
    }
    if source == "activity" {
        emit!("reprise::activity", "activity")
    } else {
        emit!("reprise::orchestration", "orchestration")
    }
}

/// The store's clock as seen by this process (epoch ms).
#[napi]
pub fn now() -> f64 {
    now_ms() as f64
}
