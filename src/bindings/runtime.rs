//! `NativeRuntime`: options and registrations in, the JavaScript driver as the runtime's
//! host, answers from the driver back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use super::provider::NativeProvider;
use super::tracing::{log_err, log_format, log_level};
use super::{err, json_arg, store_err};
use crate::error_code::ErrorCode;
use crate::logging::{self, LogFormat};
use crate::runtime::{Host, JobCall, Registry, Runtime, RuntimeOptions};
use crate::store::SharedProvider;

type DriverFn = ThreadsafeFunction<String, (), String, Status, false, true>;

/// Sends to the JavaScript driver without waiting (the TSFN is weak: an idle runtime does
/// not keep Node alive; pending client promises do).
struct JsHost {
    tsfn: DriverFn,
}

impl Host for JsHost {
    fn send(&self, message: String) -> bool {
        self.tsfn
            .call(message, ThreadsafeFunctionCallMode::NonBlocking)
            == Status::Ok
    }
}

#[napi]
pub struct NativeRuntime {
    provider: SharedProvider,
    options: RuntimeOptions,
    /// Applied to the process's tracing at start when nothing configured it before.
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    driver: Mutex<Option<DriverFn>>,
    runtime: Arc<Mutex<Option<Arc<Runtime>>>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct OptionsIn {
    orchestration_concurrency: Option<usize>,
    worker_concurrency: Option<usize>,
    generator_cache_size: Option<usize>,
    lock_timeout_ms: Option<i64>,
    poll_interval_ms: Option<u64>,
    max_deliveries: Option<u32>,
    not_registered_grace_ms: Option<i64>,
    unserved_grace_ms: Option<i64>,
    max_turn_ms: Option<u64>,
    activity_timeout_ms: Option<u64>,
    metrics_interval_ms: Option<u64>,
    worker_node_id: Option<String>,
    host: Option<String>,
    heartbeat_interval_ms: Option<u64>,
    heartbeat_timeout_ms: Option<i64>,
    log_format: Option<String>,
    log_level: Option<String>,
    service_name: Option<String>,
    service_version: Option<String>,
    max_sessions_per_runtime: Option<u32>,
    session_idle_timeout_ms: Option<i64>,
}

#[derive(serde::Deserialize)]
struct RegistryIn {
    orchestrations: std::collections::HashMap<String, Vec<String>>,
    activities: Vec<String>,
    #[serde(default)]
    tags: crate::store::TagFilter,
}

#[napi]
impl NativeRuntime {
    /// `options` is JSON, already validated by the JavaScript layer.
    #[napi(constructor)]
    pub fn new(provider: &NativeProvider, options: String) -> Result<Self> {
        let o: OptionsIn = json_arg(&options)?;
        let d = RuntimeOptions::default();
        Ok(NativeRuntime {
            provider: provider.inner.clone(),
            log_format: log_format(o.log_format.as_deref())?,
            log_level: log_level(o.log_level.as_deref())?,
            options: RuntimeOptions {
                orchestration_concurrency: o
                    .orchestration_concurrency
                    .unwrap_or(d.orchestration_concurrency),
                worker_concurrency: o.worker_concurrency.unwrap_or(d.worker_concurrency),
                generator_cache_size: o.generator_cache_size.unwrap_or(d.generator_cache_size),
                lease_ms: o.lock_timeout_ms.unwrap_or(d.lease_ms),
                poll_interval_ms: o.poll_interval_ms.unwrap_or(d.poll_interval_ms),
                max_deliveries: o.max_deliveries.unwrap_or(d.max_deliveries),
                not_registered_grace_ms: o
                    .not_registered_grace_ms
                    .unwrap_or(d.not_registered_grace_ms),
                unserved_grace_ms: o.unserved_grace_ms.unwrap_or(d.unserved_grace_ms),
                max_turn_ms: o.max_turn_ms.unwrap_or(d.max_turn_ms),
                activity_timeout_ms: o.activity_timeout_ms.unwrap_or(d.activity_timeout_ms),
                metrics_interval_ms: o.metrics_interval_ms.unwrap_or(d.metrics_interval_ms),
                worker_node_id: o.worker_node_id,
                host: o.host.unwrap_or(d.host),
                heartbeat_interval_ms: o.heartbeat_interval_ms.unwrap_or(d.heartbeat_interval_ms),
                heartbeat_timeout_ms: o.heartbeat_timeout_ms.unwrap_or(d.heartbeat_timeout_ms),
                service_name: o.service_name,
                service_version: o.service_version,
                max_sessions_per_runtime: o
                    .max_sessions_per_runtime
                    .unwrap_or(d.max_sessions_per_runtime),
                session_idle_timeout_ms: o
                    .session_idle_timeout_ms
                    .unwrap_or(d.session_idle_timeout_ms),
            },
            driver: Mutex::new(None),
            runtime: Arc::new(Mutex::new(None)),
        })
    }

    /// The one JavaScript entry point for turns, activities and aborts.
    #[napi]
    pub fn set_driver(&self, callback: Function<String, ()>) -> Result<()> {
        let tsfn = callback
            .build_threadsafe_function::<String>()
            .weak::<true>()
            .callee_handled::<false>()
            .build()?;
        *self.driver.lock().unwrap() = Some(tsfn);
        Ok(())
    }

    #[napi]
    pub async fn start(&self, registry: String) -> Result<()> {
        let r: RegistryIn = json_arg(&registry)?;
        let tsfn = self.driver.lock().unwrap().take().ok_or_else(|| {
            err(
                ErrorCode::InvalidState,
                "setDriver must be called before start",
            )
        })?;
        let ignored = logging::configure_for_runtime(self.log_format, self.log_level.clone())
            .map_err(log_err)?;
        if let Some(warning) = ignored {
            tracing::warn!(target: "reprise", "{warning}");
        }
        let runtime = Runtime::attach(
            self.provider.clone(),
            Box::new(JsHost { tsfn }),
            self.options.clone(),
            Registry {
                orchestrations: r.orchestrations,
                activities: r.activities.into_iter().collect(),
                tags: r.tags,
            },
        )
        .await
        .map_err(store_err)?;
        // Answers from JavaScript find the runtime before the first work is sent.
        let runtime = Arc::new(runtime);
        *self.runtime.lock().unwrap() = Some(runtime.clone());
        runtime.run();
        Ok(())
    }

    #[napi]
    pub fn complete_turn(&self, token: f64, reply: String) {
        if let Some(rt) = self.runtime.lock().unwrap().as_ref() {
            rt.complete_turn(token as u64, reply);
        }
    }

    #[napi]
    pub fn complete_activity(&self, id: f64, result: String) {
        if let Some(rt) = self.runtime.lock().unwrap().as_ref() {
            rt.complete_activity(id as i64, result);
        }
    }

    /// A request of the job attempt running as activity `id` (`JobCall` JSON); the answer
    /// as JSON text.
    #[napi]
    pub async fn job_call(&self, id: f64, request: String) -> Result<String> {
        let call: JobCall = json_arg(&request)?;
        let runtime = self.runtime.lock().unwrap().clone();
        let runtime =
            runtime.ok_or_else(|| err(ErrorCode::InvalidState, "the runtime is not started"))?;
        let value = runtime.job_call(id as i64, call).await.map_err(store_err)?;
        Ok(value.to_string())
    }

    /// Lifecycle events on or off (`{"kind":"events"}` driver messages).
    #[napi]
    pub fn set_events(&self, enabled: bool) {
        if let Some(rt) = self.runtime.lock().unwrap().as_ref() {
            rt.set_events(enabled);
        }
    }

    /// The runtime's id in the registry (null before start).
    #[napi]
    pub fn runtime_id(&self) -> Option<String> {
        self.runtime
            .lock()
            .unwrap()
            .as_ref()
            .map(|rt| rt.id().to_owned())
    }

    #[napi]
    pub fn metrics_snapshot(&self) -> String {
        match self.runtime.lock().unwrap().as_ref() {
            Some(rt) => rt.metrics_json(),
            None => "{}".to_owned(),
        }
    }

    /// Resolves once in-flight work drained, or at the deadline with the rest abandoned.
    #[napi]
    pub async fn shutdown(&self, timeout_ms: f64) -> Result<()> {
        let rt = self.runtime.lock().unwrap().clone();
        if let Some(rt) = rt {
            rt.shutdown(Duration::from_millis(timeout_ms.max(0.0) as u64))
                .await;
            *self.runtime.lock().unwrap() = None;
        }
        Ok(())
    }
}
