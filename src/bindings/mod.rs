//! Every `#[napi]` item. Thin: convert, forward, map errors. Errors reach JavaScript as
//! `[CODE] message`; lib/errors.js turns the prefix into an error class.

use crate::error_code::ErrorCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::client::watch::{watch_step, WatchCursor};
use crate::client::{retry_instance, RetryError};
use crate::engine::{payload_from_str, Message, StartRequest};
use crate::runtime::{Host, Registry, Runtime, RuntimeOptions};
use crate::store::postgres::{PostgresOptions, PostgresProvider};
use crate::store::sqlite::{SqliteOptions, SqliteProvider};
use crate::store::{
    now_ms, DeleteFilter, Deletion, InstanceFilter, InstanceInfo, PageCursor, SharedProvider,
    StoreError,
};

#[napi_derive::module_init]
fn init() {
    // Honour RUST_LOG; stay quiet (warnings only) by default. An embedder's subscriber wins.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn err(code: ErrorCode, message: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, format!("[{code}] {message}"))
}

fn store_err(e: StoreError) -> Error {
    let code = match &e {
        StoreError::Config(_) => ErrorCode::InvalidArgument,
        StoreError::Unavailable(_) => ErrorCode::Unavailable,
        StoreError::Locked(_) => ErrorCode::Locked,
        StoreError::LeaseLost(_) => ErrorCode::LeaseLost,
        _ => ErrorCode::Store,
    };
    err(code, e)
}

fn payload(field: &str, text: &str) -> Result<crate::engine::Payload> {
    payload_from_str(text).map_err(|e| {
        err(
            ErrorCode::InvalidArgument,
            format!("{field} is not valid JSON: {e}"),
        )
    })
}

#[napi]
pub struct NativeProvider {
    inner: SharedProvider,
}

/// Opens (creating if needed) a SQLite database file.
#[napi]
pub async fn open_sqlite(url: String, synchronous_full: bool) -> Result<NativeProvider> {
    let provider = SqliteProvider::open(&url, SqliteOptions { synchronous_full })
        .await
        .map_err(store_err)?;
    Ok(NativeProvider { inner: provider })
}

#[napi]
pub async fn open_sqlite_in_memory() -> Result<NativeProvider> {
    let provider = SqliteProvider::in_memory().await.map_err(store_err)?;
    Ok(NativeProvider { inner: provider })
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PostgresOptionsIn {
    pool_size: Option<u32>,
    poll_interval_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
}

/// Connects to PostgreSQL on `schema` (default `public`, created if missing) and migrates
/// it. `options` is JSON, already validated by the JavaScript layer.
#[napi]
pub async fn open_postgres(
    url: String,
    schema: Option<String>,
    options: String,
) -> Result<NativeProvider> {
    let o: PostgresOptionsIn =
        serde_json::from_str(&options).map_err(|e| err(ErrorCode::InvalidArgument, e))?;
    let d = PostgresOptions::default();
    let provider = PostgresProvider::connect(
        &url,
        PostgresOptions {
            schema,
            pool_size: o.pool_size.unwrap_or(d.pool_size),
            poll_interval_ms: o.poll_interval_ms.unwrap_or(d.poll_interval_ms),
            connect_timeout_ms: o.connect_timeout_ms.unwrap_or(d.connect_timeout_ms),
        },
    )
    .await
    .map_err(store_err)?;
    Ok(NativeProvider { inner: provider })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusView<'a> {
    status: &'a str,
    output: Option<&'a RawValue>,
    error: Option<&'a str>,
    error_code: Option<&'a str>,
    custom_status: Option<&'a RawValue>,
    custom_status_version: i64,
    name: Option<&'a str>,
    version: Option<&'a str>,
    execution_id: Option<u64>,
}

fn raw(text: &Option<String>) -> Option<Box<RawValue>> {
    text.as_ref()
        .and_then(|t| RawValue::from_string(t.clone()).ok())
}

fn status_json(info: Option<&InstanceInfo>) -> String {
    let Some(i) = info else {
        return r#"{"status":"NotFound","output":null,"error":null,"errorCode":null,"customStatus":null,"customStatusVersion":0}"#.to_owned();
    };
    let output = raw(&i.output);
    let custom = raw(&i.custom_status);
    serde_json::to_string(&StatusView {
        status: &i.status,
        output: output.as_deref(),
        error: i.error.as_deref(),
        error_code: i.error_code.as_deref(),
        custom_status: custom.as_deref(),
        custom_status_version: i.custom_status_version,
        name: Some(&i.name),
        version: i.version.as_deref(),
        execution_id: Some(i.execution_id),
    })
    .expect("status serializes")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InfoView<'a> {
    instance_id: &'a str,
    name: &'a str,
    version: Option<&'a str>,
    status: &'a str,
    execution_id: u64,
    input: Option<&'a RawValue>,
    output: Option<&'a RawValue>,
    error: Option<&'a str>,
    error_code: Option<&'a str>,
    custom_status: Option<&'a RawValue>,
    custom_status_version: i64,
    created_at: i64,
    updated_at: i64,
    parent_id: Option<&'a str>,
}

fn info_json(i: &InstanceInfo) -> String {
    let (input, output, custom) = (raw(&i.input), raw(&i.output), raw(&i.custom_status));
    serde_json::to_string(&InfoView {
        instance_id: &i.instance_id,
        name: &i.name,
        version: i.version.as_deref(),
        status: &i.status,
        execution_id: i.execution_id,
        input: input.as_deref(),
        output: output.as_deref(),
        error: i.error.as_deref(),
        error_code: i.error_code.as_deref(),
        custom_status: custom.as_deref(),
        custom_status_version: i.custom_status_version,
        created_at: i.created_at,
        updated_at: i.updated_at,
        parent_id: i.parent_instance_id.as_deref(),
    })
    .expect("instance info serializes")
}

/// An opaque page cursor: hex of `<created_at>:<instance_id>`.
fn encode_cursor(c: &PageCursor) -> String {
    format!("{}:{}", c.created_at, c.instance_id)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_cursor(text: &str) -> Option<PageCursor> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let plain = String::from_utf8(bytes).ok()?;
    let (at, id) = plain.split_once(':')?;
    Some(PageCursor {
        created_at: at.parse().ok()?,
        instance_id: id.to_owned(),
    })
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListIn {
    status: Option<String>,
    name: Option<String>,
    created_after: Option<i64>,
    created_before: Option<i64>,
    parent_id: Option<String>,
    limit: u32,
    cursor: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeleteIn {
    ids: Option<Vec<String>>,
    completed_before: Option<i64>,
    status: Option<String>,
    limit: Option<u32>,
}

#[napi]
pub struct NativeClient {
    provider: SharedProvider,
}

#[napi]
impl NativeClient {
    #[napi(constructor)]
    pub fn new(provider: &NativeProvider) -> Self {
        NativeClient {
            provider: provider.inner.clone(),
        }
    }

    /// Creates the instance; `false` if the id already existed (nothing is changed then).
    #[napi]
    pub async fn start_orchestration(
        &self,
        instance_id: String,
        name: String,
        input: String,
        version: Option<String>,
    ) -> Result<bool> {
        let start = StartRequest {
            instance_id,
            name,
            version,
            input: payload("input", &input)?,
            parent: None,
        };
        self.provider
            .create_instance(&start)
            .await
            .map_err(store_err)
    }

    #[napi]
    pub async fn raise_event(&self, instance_id: String, name: String, data: String) -> Result<()> {
        let message = Message::Event {
            name,
            data: payload("data", &data)?,
        };
        self.provider
            .enqueue(&instance_id, &message)
            .await
            .map_err(store_err)
    }

    /// Cancels a running instance; `false` when it is not running (nothing happens then).
    #[napi]
    pub async fn cancel_instance(&self, instance_id: String, reason: String) -> Result<bool> {
        match self
            .provider
            .instance(&instance_id)
            .await
            .map_err(store_err)?
        {
            Some(info) if info.status == "Running" => {
                self.provider
                    .enqueue(&instance_id, &Message::Cancel { reason })
                    .await
                    .map_err(store_err)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Removes an instance, its sub-orchestrations and everything queued for them; returns
    /// how many instances were removed (0: unknown id). Refuses a running one without `force`.
    #[napi]
    pub async fn delete_instance(&self, instance_id: String, force: bool) -> Result<u32> {
        match self
            .provider
            .delete_instance(&instance_id, force)
            .await
            .map_err(store_err)?
        {
            Deletion::NotFound => Ok(0),
            Deletion::Deleted(ids) => Ok(ids.len() as u32),
            Deletion::Running => Err(err(
                ErrorCode::InvalidState,
                format!(
                    "instance '{instance_id}' is running; cancel it first or pass {{force: true}}"
                ),
            )),
        }
    }

    /// `{instances: [info...], nextCursor}`; `filter` is JSON, already validated by the
    /// JavaScript layer.
    #[napi]
    pub async fn list_instances(&self, filter: String) -> Result<String> {
        let f: ListIn =
            serde_json::from_str(&filter).map_err(|e| err(ErrorCode::InvalidArgument, e))?;
        let cursor = match &f.cursor {
            Some(text) => Some(decode_cursor(text).ok_or_else(|| {
                err(
                    ErrorCode::InvalidArgument,
                    "cursor is not a cursor returned by listInstances",
                )
            })?),
            None => None,
        };
        let page = self
            .provider
            .list_instances(&InstanceFilter {
                status: f.status,
                name: f.name,
                created_after: f.created_after,
                created_before: f.created_before,
                parent_id: f.parent_id,
                limit: f.limit,
                cursor,
            })
            .await
            .map_err(store_err)?;
        let mut out = String::from("{\"instances\":[");
        for (i, info) in page.instances.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&info_json(info));
        }
        out.push_str("],\"nextCursor\":");
        match &page.next_cursor {
            Some(c) => out.push_str(&format!("\"{}\"", encode_cursor(c))),
            None => out.push_str("null"),
        }
        out.push('}');
        Ok(out)
    }

    /// The instance's info as JSON, or `null`.
    #[napi]
    pub async fn get_instance_info(&self, instance_id: String) -> Result<String> {
        let info = self
            .provider
            .instance(&instance_id)
            .await
            .map_err(store_err)?;
        Ok(info
            .as_ref()
            .map(info_json)
            .unwrap_or_else(|| "null".into()))
    }

    /// `[{executionId, firstEventAt, lastEventAt, eventCount}]`, oldest first.
    #[napi]
    pub async fn list_executions(&self, instance_id: String) -> Result<String> {
        let executions = self
            .provider
            .list_executions(&instance_id)
            .await
            .map_err(store_err)?;
        let items: Vec<serde_json::Value> = executions
            .iter()
            .map(|e| {
                serde_json::json!({
                    "executionId": e.execution_id,
                    "firstEventAt": e.first_event_at,
                    "lastEventAt": e.last_event_at,
                    "eventCount": e.event_count,
                })
            })
            .collect();
        Ok(serde_json::Value::Array(items).to_string())
    }

    #[napi]
    pub async fn get_system_metrics(&self) -> Result<String> {
        let m = self.provider.system_metrics().await.map_err(store_err)?;
        Ok(serde_json::json!({
            "total": m.total,
            "running": m.running,
            "completed": m.completed,
            "failed": m.failed,
        })
        .to_string())
    }

    #[napi]
    pub async fn get_queue_depths(&self) -> Result<String> {
        let q = self.provider.queue_depths().await.map_err(store_err)?;
        Ok(serde_json::json!({
            "orchestrator": { "visible": q.orchestrator_visible, "delayed": q.orchestrator_delayed },
            "worker": { "visible": q.worker_visible, "running": q.worker_running, "delayed": q.worker_delayed },
        })
        .to_string())
    }

    /// Removes finished instances (with their sub-orchestrations); returns how many
    /// instances were removed. `filter` is JSON, already validated by the JavaScript layer.
    #[napi]
    pub async fn delete_instances(&self, filter: String) -> Result<u32> {
        let f: DeleteIn =
            serde_json::from_str(&filter).map_err(|e| err(ErrorCode::InvalidArgument, e))?;
        let removed = self
            .provider
            .delete_instances(&DeleteFilter {
                ids: f.ids,
                completed_before: f.completed_before,
                status: f.status,
                limit: f.limit,
            })
            .await
            .map_err(store_err)?;
        Ok(removed.len() as u32)
    }

    /// Removes the history of old executions; returns how many executions were removed.
    #[napi]
    pub async fn prune_executions(
        &self,
        instance_id: String,
        keep_last: Option<u32>,
        completed_before: Option<f64>,
    ) -> Result<u32> {
        let n = self
            .provider
            .prune_executions(&instance_id, keep_last, completed_before.map(|t| t as i64))
            .await
            .map_err(store_err)?;
        Ok(n as u32)
    }

    #[napi]
    pub async fn get_status(&self, instance_id: String) -> Result<String> {
        let info = self
            .provider
            .instance(&instance_id)
            .await
            .map_err(store_err)?;
        Ok(status_json(info.as_ref()))
    }

    /// Resolves once the instance is Completed or Failed.
    #[napi]
    pub async fn wait_for_orchestration(
        &self,
        instance_id: String,
        timeout_ms: f64,
    ) -> Result<String> {
        self.wait_until(&instance_id, timeout_ms, "did not finish", |i| {
            i.status == "Completed" || i.status == "Failed"
        })
        .await
    }

    /// Resolves once the custom status version passes `last_version` or the instance ends.
    #[napi]
    pub async fn wait_for_status_change(
        &self,
        instance_id: String,
        last_version: f64,
        timeout_ms: f64,
    ) -> Result<String> {
        self.wait_until(
            &instance_id,
            timeout_ms,
            "did not change its custom status",
            |i| {
                i.custom_status_version as f64 > last_version
                    || i.status == "Completed"
                    || i.status == "Failed"
            },
        )
        .await
    }

    /// Retries a Failed instance from its last good point; the ids retried, as a JSON array
    /// (the instance first, then failed sub-orchestrations it still waited for).
    #[napi]
    pub async fn retry_instance(&self, instance_id: String) -> Result<String> {
        match retry_instance(self.provider.as_ref(), &instance_id).await {
            Ok(ids) => Ok(serde_json::to_string(&ids).expect("strings serialize")),
            Err(RetryError::Store(e)) => Err(store_err(e)),
            Err(e @ RetryError::NotFound(_)) => Err(err(ErrorCode::NotFound, e)),
            Err(e) => Err(err(ErrorCode::InvalidState, e)),
        }
    }

    /// The next lifecycle events of an instance after `cursor` (JSON from the previous call,
    /// or `{"executionId":0,"eventId":0,"skipExisting":bool}` to begin), waiting up to
    /// `timeout_ms` for some: `{events, cursor, done, missing}`.
    #[napi]
    pub async fn watch_next(
        &self,
        instance_id: String,
        cursor: String,
        timeout_ms: f64,
    ) -> Result<String> {
        let mut cursor: WatchCursor =
            serde_json::from_str(&cursor).map_err(|e| err(ErrorCode::InvalidArgument, e))?;
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(timeout_ms.max(0.0) as u64);
        let wakers = self.provider.wakers().clone();
        let changed = wakers.follow(&instance_id);
        let result = async {
            loop {
                let notified = changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let step = watch_step(self.provider.as_ref(), &instance_id, &mut cursor)
                    .await
                    .map_err(store_err)?;
                let now = tokio::time::Instant::now();
                if !step.events.is_empty() || step.done || now >= deadline {
                    return Ok(format!(
                        "{{\"events\":[{}],\"cursor\":{},\"done\":{},\"missing\":{}}}",
                        step.events.join(","),
                        serde_json::to_string(&cursor).expect("a cursor serializes"),
                        step.done,
                        step.missing
                    ));
                }
                self.until_woken(notified, deadline).await;
            }
        }
        .await;
        wakers.unfollow(&instance_id, changed);
        result
    }

    /// `[{eventId, kind, taskId, timestamp, data}]` of one execution (the current one by default).
    #[napi]
    pub async fn read_execution_history(
        &self,
        instance_id: String,
        execution_id: Option<u32>,
    ) -> Result<String> {
        let rows = self
            .provider
            .history(&instance_id, execution_id.map(|e| e as u64))
            .await
            .map_err(store_err)?;
        let mut out = String::from("[");
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "{{\"eventId\":{},\"kind\":\"{}\",\"taskId\":{},\"timestamp\":{},\"data\":{}}}",
                row.event_id,
                row.event.kind(),
                row.event
                    .task()
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "null".into()),
                row.ts,
                crate::engine::event_data(&row.event)
            ));
        }
        out.push(']');
        Ok(out)
    }
}

impl NativeClient {
    /// Waits for `notified` (a commit in this process), the next look at other processes'
    /// commits (when the provider needs polling for them), or `deadline`.
    async fn until_woken(
        &self,
        notified: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
        deadline: tokio::time::Instant,
    ) {
        let wake_at = match self.provider.foreign_commit_poll() {
            Some(poll) => (tokio::time::Instant::now() + poll).min(deadline),
            None => deadline,
        };
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(wake_at) => {}
        }
    }

    /// Re-reads the instance until `done` holds, woken by commits in this process and
    /// polling only for other processes' commits; the status JSON, or ERR_TIMEOUT.
    async fn wait_until(
        &self,
        instance_id: &str,
        timeout_ms: f64,
        what: &str,
        done: impl Fn(&InstanceInfo) -> bool,
    ) -> Result<String> {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(timeout_ms.max(0.0) as u64);
        let wakers = self.provider.wakers().clone();
        let changed = wakers.watch(instance_id);
        let result = async {
            loop {
                let notified = changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let info = self
                    .provider
                    .instance(instance_id)
                    .await
                    .map_err(store_err)?;
                if info.as_ref().is_some_and(&done) {
                    return Ok(status_json(info.as_ref()));
                }
                self.until_woken(notified, deadline).await;
                if tokio::time::Instant::now() >= deadline {
                    return Err(err(
                        ErrorCode::Timeout,
                        format!("instance '{instance_id}' {what} within {timeout_ms} ms"),
                    ));
                }
            }
        }
        .await;
        wakers.unwatch(instance_id, changed);
        result
    }
}

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
    max_turn_ms: Option<u64>,
    activity_timeout_ms: Option<u64>,
    metrics_interval_ms: Option<u64>,
}

#[derive(serde::Deserialize)]
struct RegistryIn {
    orchestrations: std::collections::HashMap<String, Vec<String>>,
    activities: Vec<String>,
}

#[napi]
impl NativeRuntime {
    /// `options` is JSON, already validated by the JavaScript layer.
    #[napi(constructor)]
    pub fn new(provider: &NativeProvider, options: String) -> Result<Self> {
        let o: OptionsIn =
            serde_json::from_str(&options).map_err(|e| err(ErrorCode::InvalidArgument, e))?;
        let d = RuntimeOptions::default();
        Ok(NativeRuntime {
            provider: provider.inner.clone(),
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
                max_turn_ms: o.max_turn_ms.unwrap_or(d.max_turn_ms),
                activity_timeout_ms: o.activity_timeout_ms.unwrap_or(d.activity_timeout_ms),
                metrics_interval_ms: o.metrics_interval_ms.unwrap_or(d.metrics_interval_ms),
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
        let r: RegistryIn =
            serde_json::from_str(&registry).map_err(|e| err(ErrorCode::InvalidArgument, e))?;
        let tsfn = self.driver.lock().unwrap().take().ok_or_else(|| {
            err(
                ErrorCode::InvalidState,
                "setDriver must be called before start",
            )
        })?;
        let runtime = Runtime::attach(
            self.provider.clone(),
            Box::new(JsHost { tsfn }),
            self.options.clone(),
            Registry {
                orchestrations: r.orchestrations,
                activities: r.activities.into_iter().collect(),
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

    /// Lifecycle events on or off (`{"kind":"events"}` driver messages).
    #[napi]
    pub fn set_events(&self, enabled: bool) {
        if let Some(rt) = self.runtime.lock().unwrap().as_ref() {
            rt.set_events(enabled);
        }
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
