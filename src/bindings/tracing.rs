//! Tracing setup (`initTracing`), trace lines from JavaScript code, and the store clock,
//! for `lib/`.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::{err, json_arg};
use crate::error_code::ErrorCode;
use crate::logging::{self, LogError, LogFormat};
use crate::store::now_ms;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitTracingIn {
    log_file: String,
    log_format: Option<String>,
    log_level: Option<String>,
}

/// `initTracing(options)`: `options` is JSON, already validated by the JavaScript layer.
#[napi]
pub fn init_tracing(options: String) -> Result<()> {
    let o: InitTracingIn = json_arg(&options)?;
    let format = log_format(o.log_format.as_deref())?.unwrap_or_default();
    let level = log_level(o.log_level.as_deref())?;
    logging::init_file(std::path::Path::new(&o.log_file), format, level).map_err(log_err)
}

pub(super) fn log_format(format: Option<&str>) -> Result<Option<LogFormat>> {
    format
        .map(|f| f.parse().map_err(|e| err(ErrorCode::InvalidArgument, e)))
        .transpose()
}

pub(super) fn log_level(level: Option<&str>) -> Result<Option<String>> {
    level
        .map(|l| logging::parse_level(l).map_err(|e| err(ErrorCode::InvalidArgument, e)))
        .transpose()
}

pub(super) fn log_err(e: LogError) -> Error {
    let code = match e {
        LogError::Invalid(_) => ErrorCode::InvalidArgument,
        LogError::AlreadyConfigured(_) => ErrorCode::InvalidState,
    };
    err(code, e)
}

/// A trace line from orchestration or activity code, inside a span naming the instance (and
/// the runtime's service, when it has one).
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn trace(
    level: String,
    source: String,
    instance_id: String,
    execution_id: f64,
    name: String,
    message: String,
    service_name: Option<String>,
    service_version: Option<String>,
) {
    let exec = execution_id as u64;
    let (service_name, service_version) = (service_name.as_deref(), service_version.as_deref());
    macro_rules! emit {
        ($target:literal, $span:literal) => {{
            let span = tracing::error_span!(
                target: $target,
                $span,
                instance_id = %instance_id,
                execution_id = exec,
                name = %name,
                service.name = service_name,
                service.version = service_version,
            );
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
