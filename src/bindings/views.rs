//! The shapes JavaScript receives, as serde views of the store's and the client's types.
//! Stored JSON (inputs, outputs, custom status) is passed through as raw JSON.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::client::status::generator_status;
use crate::client::watch::{WatchCursor, WatchStep};
use crate::engine::HistoryRow;
use crate::store::{
    ExecutionInfo, InstanceInfo, InstanceStats, KvEntry, QueueDepths, Removed, RuntimeInfo,
    SystemMetrics,
};

/// Stored JSON text as a raw value (`None` for a missing or unreadable one).
fn raw(text: &Option<String>) -> Option<Box<RawValue>> {
    text.as_ref()
        .and_then(|t| RawValue::from_string(t.clone()).ok())
}

/// `client.getStatus()` and what the waits resolve to.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView<'a> {
    status: &'a str,
    output: Option<Box<RawValue>>,
    error: Option<&'a str>,
    error_code: Option<&'a str>,
    custom_status: Option<Box<RawValue>>,
    custom_status_version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_id: Option<u64>,
}

impl<'a> StatusView<'a> {
    pub fn of(info: Option<&'a InstanceInfo>) -> Self {
        match info {
            None => StatusView {
                status: "NotFound",
                output: None,
                error: None,
                error_code: None,
                custom_status: None,
                custom_status_version: 0,
                name: None,
                version: None,
                execution_id: None,
            },
            Some(i) => StatusView {
                status: generator_status(&i.status),
                output: raw(&i.output),
                error: i.error.as_deref(),
                error_code: i.error_code.as_deref(),
                custom_status: raw(&i.custom_status),
                custom_status_version: i.custom_status_version,
                name: Some(&i.name),
                version: Some(i.version.as_deref()),
                execution_id: Some(i.execution_id),
            },
        }
    }
}

/// `client.getInstanceInfo()` and the items of `listInstances()`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InfoView<'a> {
    instance_id: &'a str,
    name: &'a str,
    version: Option<&'a str>,
    /// As the generator API shows it.
    status: &'a str,
    /// As stored: `Pending` and `Canceled` too.
    stored_status: &'a str,
    execution_id: u64,
    input: Option<Box<RawValue>>,
    output: Option<Box<RawValue>>,
    error: Option<&'a str>,
    error_code: Option<&'a str>,
    custom_status: Option<Box<RawValue>>,
    custom_status_version: i64,
    created_at: i64,
    updated_at: i64,
    parent_id: Option<&'a str>,
}

impl<'a> From<&'a InstanceInfo> for InfoView<'a> {
    fn from(i: &'a InstanceInfo) -> Self {
        InfoView {
            instance_id: &i.instance_id,
            name: &i.name,
            version: i.version.as_deref(),
            status: generator_status(&i.status),
            stored_status: &i.status,
            execution_id: i.execution_id,
            input: raw(&i.input),
            output: raw(&i.output),
            error: i.error.as_deref(),
            error_code: i.error_code.as_deref(),
            custom_status: raw(&i.custom_status),
            custom_status_version: i.custom_status_version,
            created_at: i.created_at,
            updated_at: i.updated_at,
            parent_id: i.parent_instance_id.as_deref(),
        }
    }
}

/// A page of `listInstances()`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageView<'a> {
    pub instances: Vec<InfoView<'a>>,
    pub next_cursor: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionView {
    execution_id: u64,
    first_event_at: Option<i64>,
    last_event_at: Option<i64>,
    event_count: u64,
}

impl From<&ExecutionInfo> for ExecutionView {
    fn from(e: &ExecutionInfo) -> Self {
        ExecutionView {
            execution_id: e.execution_id,
            first_event_at: e.first_event_at,
            last_event_at: e.last_event_at,
            event_count: e.event_count,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemMetricsView {
    total: u64,
    running: u64,
    completed: u64,
    failed: u64,
    // duroxide-node's names.
    total_instances: u64,
    total_executions: u64,
    running_instances: u64,
    completed_instances: u64,
    failed_instances: u64,
    total_events: u64,
}

impl From<&SystemMetrics> for SystemMetricsView {
    fn from(m: &SystemMetrics) -> Self {
        SystemMetricsView {
            total: m.total,
            running: m.running,
            completed: m.completed,
            failed: m.failed,
            total_instances: m.total,
            total_executions: m.executions,
            running_instances: m.running,
            completed_instances: m.completed,
            failed_instances: m.failed,
            total_events: m.events,
        }
    }
}

#[derive(Serialize)]
pub struct QueueDepthsView {
    orchestrator: OrchestratorQueueView,
    worker: WorkerQueueView,
}

#[derive(Serialize)]
struct OrchestratorQueueView {
    visible: u64,
    delayed: u64,
}

#[derive(Serialize)]
struct WorkerQueueView {
    visible: u64,
    running: u64,
    delayed: u64,
}

impl From<&QueueDepths> for QueueDepthsView {
    fn from(q: &QueueDepths) -> Self {
        QueueDepthsView {
            orchestrator: OrchestratorQueueView {
                visible: q.orchestrator_visible,
                delayed: q.orchestrator_delayed,
            },
            worker: WorkerQueueView {
                visible: q.worker_visible,
                running: q.worker_running,
                delayed: q.worker_delayed,
            },
        }
    }
}

/// One event of `readExecutionHistory()`: its data is the variant's fields.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEventView {
    event_id: u64,
    kind: &'static str,
    task_id: Option<u32>,
    timestamp: i64,
    data: Box<RawValue>,
}

impl From<&HistoryRow> for HistoryEventView {
    fn from(row: &HistoryRow) -> Self {
        let data = crate::engine::event_data(&row.event);
        HistoryEventView {
            event_id: row.event_id,
            kind: row.event.kind(),
            task_id: row.event.task(),
            timestamp: row.ts,
            data: RawValue::from_string(data).expect("event data is JSON"),
        }
    }
}

/// A step of `watch()`: events since the cursor, the cursor to continue from.
#[derive(Serialize)]
pub struct WatchView<'a> {
    events: Vec<Box<RawValue>>,
    cursor: &'a WatchCursor,
    done: bool,
    missing: bool,
}

impl<'a> WatchView<'a> {
    pub fn of(step: WatchStep, cursor: &'a WatchCursor) -> Self {
        WatchView {
            events: step.events,
            cursor,
            done: step.done,
            missing: step.missing,
        }
    }
}

/// A row of the registry of runtimes, as `client.listRuntimes()` returns it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeView {
    runtime_id: String,
    worker_node_id: Option<String>,
    host: String,
    pid: i64,
    started_at: i64,
    heartbeat_at: i64,
    heartbeat_age_ms: i64,
    alive: bool,
    orchestrations: serde_json::Value,
    activities: serde_json::Value,
    /// The tag filter, as `{mode, tags?}` (`null` from a version that did not record it).
    tags: serde_json::Value,
}

impl From<&RuntimeInfo> for RuntimeView {
    fn from(r: &RuntimeInfo) -> Self {
        let capabilities: serde_json::Value =
            serde_json::from_str(&r.capabilities).unwrap_or_default();
        let list = |key: &str| match capabilities.get(key) {
            Some(v @ serde_json::Value::Array(_)) => v.clone(),
            _ => serde_json::Value::Array(vec![]),
        };
        RuntimeView {
            runtime_id: r.runtime_id.clone(),
            worker_node_id: r.worker_node_id.clone(),
            host: r.host.clone(),
            pid: r.pid,
            started_at: r.started_at,
            heartbeat_at: r.heartbeat_at,
            heartbeat_age_ms: r.now - r.heartbeat_at,
            alive: r.alive(),
            orchestrations: list("orchestrations"),
            activities: list("activities"),
            tags: capabilities
                .get("tags")
                .cloned()
                .unwrap_or(serde_json::Value::Null),
        }
    }
}

/// What a deletion removed, in duroxide-node's names.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedView {
    instances_deleted: u64,
    executions_deleted: u64,
    events_deleted: u64,
    queue_messages_deleted: u64,
}

impl From<&Removed> for RemovedView {
    fn from(r: &Removed) -> Self {
        RemovedView {
            instances_deleted: r.ids.len() as u64,
            executions_deleted: r.executions,
            events_deleted: r.events,
            queue_messages_deleted: r.queue_messages,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KvEntryView<'a> {
    key: &'a str,
    value: &'a str,
    updated_at: i64,
}

impl<'a> From<&'a KvEntry> for KvEntryView<'a> {
    fn from(e: &'a KvEntry) -> Self {
        KvEntryView {
            key: &e.key,
            value: &e.value,
            updated_at: e.updated_at,
        }
    }
}

/// `client.getOrchestrationStats()`, in duroxide-node's names.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrchestrationStatsView {
    history_event_count: u64,
    history_size_bytes: u64,
    queue_pending_count: u64,
    kv_user_key_count: u64,
    kv_total_value_bytes: u64,
}

impl From<&InstanceStats> for OrchestrationStatsView {
    fn from(s: &InstanceStats) -> Self {
        OrchestrationStatsView {
            history_event_count: s.history_event_count,
            history_size_bytes: s.history_size_bytes,
            queue_pending_count: s.queue_pending_count,
            kv_user_key_count: s.kv_key_count,
            kv_total_value_bytes: s.kv_value_bytes,
        }
    }
}
