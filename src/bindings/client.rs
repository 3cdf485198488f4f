//! `NativeClient`: the management API, forwarded to the store and the client layer.

use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::provider::NativeProvider;
use super::views::{
    ExecutionView, HistoryEventView, InfoView, KvEntryView, OrchestrationStatsView, PageView,
    QueueDepthsView, RemovedView, RuntimeView, StatusView, SystemMetricsView, WatchView,
};
use super::{err, json_arg, payload, store_err, to_json};
use crate::client::cursor::{decode_cursor, encode_cursor};
use crate::client::jobs::{job_query, JobQuery};
use crate::client::status::stored_statuses;
use crate::client::wait::{wait_for, wait_until, watch_next, WakeOn};
use crate::client::watch::WatchCursor;
use crate::client::{cancel_if_running, retry_instance, RetryError};
use crate::engine::{Message, StartRequest};
use crate::error_code::ErrorCode;
use crate::store::{
    DeleteFilter, Deletion, InstanceFilter, InstanceInfo, Removed, SharedProvider, StoredStatus,
};

#[napi]
pub struct NativeClient {
    provider: SharedProvider,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListIn {
    /// A generator-face or stored status (see `client::status`).
    status: Option<String>,
    /// Exactly this stored status (the CLI's filter).
    stored_status: Option<String>,
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

fn deadline(timeout_ms: f64) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_millis(timeout_ms.max(0.0) as u64)
}

fn finished(i: &InstanceInfo) -> bool {
    StoredStatus::is_finished(&i.status)
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

    /// `starts` is a JSON array of `{instanceId, name, input, version?}` (the input inline,
    /// not re-encoded), already validated by the JavaScript layer; resolves to one created
    /// flag per start.
    #[napi]
    pub async fn start_orchestrations(&self, starts: String) -> Result<Vec<bool>> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct StartIn {
            instance_id: String,
            name: String,
            input: crate::engine::Payload,
            version: Option<String>,
        }
        let items: Vec<StartIn> = json_arg(&starts)?;
        let starts: Vec<StartRequest> = items
            .into_iter()
            .map(|s| StartRequest {
                instance_id: s.instance_id,
                name: s.name,
                version: s.version,
                input: s.input,
                parent: None,
            })
            .collect();
        self.provider
            .create_instances(&starts)
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
        cancel_if_running(self.provider.as_ref(), &instance_id, reason)
            .await
            .map_err(store_err)
    }

    /// Removes an instance, its sub-orchestrations and everything queued for them; returns
    /// what was removed (`RemovedView`; nothing for an unknown id). Refuses a running one
    /// without `force`.
    #[napi]
    pub async fn delete_instance(&self, instance_id: String, force: bool) -> Result<String> {
        match self
            .provider
            .delete_instance(&instance_id, force)
            .await
            .map_err(store_err)?
        {
            Deletion::NotFound => Ok(to_json(&RemovedView::from(&Removed::default()))),
            Deletion::Deleted(removed) => Ok(to_json(&RemovedView::from(&removed))),
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
        let f: ListIn = json_arg(&filter)?;
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
                statuses: match (f.stored_status, f.status) {
                    (Some(stored), _) => vec![stored],
                    (None, Some(status)) => stored_statuses(&status),
                    (None, None) => Vec::new(),
                },
                name: f.name,
                created_after: f.created_after,
                created_before: f.created_before,
                parent_id: f.parent_id,
                limit: f.limit,
                cursor,
            })
            .await
            .map_err(store_err)?;
        Ok(to_json(&PageView {
            instances: page.instances.iter().map(InfoView::from).collect(),
            next_cursor: page.next_cursor.as_ref().map(encode_cursor),
        }))
    }

    /// The instance's info as JSON, or `null`.
    #[napi]
    pub async fn get_instance_info(&self, instance_id: String) -> Result<String> {
        let info = self
            .provider
            .instance(&instance_id)
            .await
            .map_err(store_err)?;
        Ok(to_json(&info.as_ref().map(InfoView::from)))
    }

    /// `[{executionId, firstEventAt, lastEventAt, eventCount}]`, oldest first.
    #[napi]
    pub async fn list_executions(&self, instance_id: String) -> Result<String> {
        let executions = self
            .provider
            .list_executions(&instance_id)
            .await
            .map_err(store_err)?;
        let views: Vec<ExecutionView> = executions.iter().map(ExecutionView::from).collect();
        Ok(to_json(&views))
    }

    #[napi]
    pub async fn get_system_metrics(&self) -> Result<String> {
        let m = self.provider.system_metrics().await.map_err(store_err)?;
        Ok(to_json(&SystemMetricsView::from(&m)))
    }

    /// The registry of runtimes, as JSON (oldest first).
    #[napi]
    pub async fn list_runtimes(&self) -> Result<String> {
        let runtimes = self.provider.list_runtimes().await.map_err(store_err)?;
        let views: Vec<RuntimeView> = runtimes.iter().map(RuntimeView::from).collect();
        Ok(to_json(&views))
    }

    #[napi]
    pub async fn get_queue_depths(&self) -> Result<String> {
        let q = self.provider.queue_depths().await.map_err(store_err)?;
        Ok(to_json(&QueueDepthsView::from(&q)))
    }

    /// Removes finished instances (with their sub-orchestrations); returns what was removed
    /// (`RemovedView`). `filter` is JSON, already validated by the JavaScript layer.
    #[napi]
    pub async fn delete_instances(&self, filter: String) -> Result<String> {
        let f: DeleteIn = json_arg(&filter)?;
        let removed = self
            .provider
            .delete_instances(&DeleteFilter {
                ids: f.ids,
                completed_before: f.completed_before,
                statuses: f.status.as_deref().map(stored_statuses).unwrap_or_default(),
                limit: f.limit,
            })
            .await
            .map_err(store_err)?;
        Ok(to_json(&RemovedView::from(&removed)))
    }

    /// `[{key, value, updatedAt}]`: the instance's key-value store (only `key` when given).
    #[napi]
    pub async fn get_values(&self, instance_id: String, key: Option<String>) -> Result<String> {
        let entries = self
            .provider
            .kv_values(&instance_id, key.as_deref())
            .await
            .map_err(store_err)?;
        Ok(to_json(
            &entries.iter().map(KvEntryView::from).collect::<Vec<_>>(),
        ))
    }

    /// A job request (`client::jobs::JobQuery` JSON); the answer as JSON text.
    #[napi]
    pub async fn job_query(&self, request: String) -> Result<String> {
        let query: JobQuery = json_arg(&request)?;
        let value = job_query(&self.provider, query).await.map_err(store_err)?;
        Ok(value.to_string())
    }

    /// The value of `key` once the instance has one (woken by commits), or ERR_TIMEOUT.
    #[napi]
    pub async fn wait_for_value(
        &self,
        instance_id: String,
        key: String,
        timeout_ms: f64,
    ) -> Result<String> {
        let provider = self.provider.as_ref();
        let (id, k) = (instance_id.as_str(), key.as_str());
        let found = wait_for(
            provider,
            id,
            deadline(timeout_ms),
            WakeOn::Change,
            move || async move {
                let entries = provider.kv_values(id, Some(k)).await?;
                Ok(entries.into_iter().next().map(|e| e.value))
            },
        )
        .await
        .map_err(store_err)?;
        found.ok_or_else(|| {
            err(
                ErrorCode::Timeout,
                format!("instance '{instance_id}' had no value for '{key}' within {timeout_ms} ms"),
            )
        })
    }

    /// Sizes of an instance (`OrchestrationStatsView`), or `null`.
    #[napi]
    pub async fn get_orchestration_stats(&self, instance_id: String) -> Result<String> {
        let stats = self
            .provider
            .instance_stats(&instance_id)
            .await
            .map_err(store_err)?;
        Ok(to_json(&stats.as_ref().map(OrchestrationStatsView::from)))
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
        Ok(to_json(&StatusView::of(info.as_ref())))
    }

    /// Resolves once the instance is Completed or Failed.
    #[napi]
    pub async fn wait_for_orchestration(
        &self,
        instance_id: String,
        timeout_ms: f64,
    ) -> Result<String> {
        self.wait(
            &instance_id,
            timeout_ms,
            "did not finish",
            WakeOn::End,
            finished,
        )
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
        self.wait(
            &instance_id,
            timeout_ms,
            "did not change its custom status",
            WakeOn::Change,
            |i| i.custom_status_version as f64 > last_version || finished(i),
        )
        .await
    }

    /// Retries a Failed instance from its last good point; the ids retried, as a JSON array
    /// (the instance first, then failed sub-orchestrations it still waited for).
    #[napi]
    pub async fn retry_instance(&self, instance_id: String) -> Result<String> {
        match retry_instance(self.provider.as_ref(), &instance_id).await {
            Ok(ids) => Ok(to_json(&ids)),
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
        let mut cursor: WatchCursor = json_arg(&cursor)?;
        let step = watch_next(
            self.provider.as_ref(),
            &instance_id,
            &mut cursor,
            deadline(timeout_ms),
        )
        .await
        .map_err(store_err)?;
        Ok(to_json(&WatchView::of(step, &cursor)))
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
        let views: Vec<HistoryEventView> = rows.iter().map(HistoryEventView::from).collect();
        Ok(to_json(&views))
    }
}

impl NativeClient {
    /// The status JSON once `done` holds, or ERR_TIMEOUT.
    async fn wait(
        &self,
        instance_id: &str,
        timeout_ms: f64,
        what: &str,
        wake_on: WakeOn,
        done: impl Fn(&InstanceInfo) -> bool,
    ) -> Result<String> {
        match wait_until(
            self.provider.as_ref(),
            instance_id,
            deadline(timeout_ms),
            wake_on,
            done,
        )
        .await
        .map_err(store_err)?
        {
            Some(info) => Ok(to_json(&StatusView::of(Some(&info)))),
            None => Err(err(
                ErrorCode::Timeout,
                format!("instance '{instance_id}' {what} within {timeout_ms} ms"),
            )),
        }
    }
}
