//! What a client asks of the store about job runs: emitted events, concurrency keys, the
//! run's stored state and logs (see `store::jobs`).

use crate::store::{Result, SharedProvider};

/// A request (JSON from JavaScript, tagged by `op`).
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum JobQuery {
    /// `payload` is JSON text.
    Emit {
        event: String,
        payload: String,
    },
    ClearEvent {
        event: String,
    },
    #[serde(rename_all = "camelCase")]
    QueueKey {
        instance_id: String,
        key: String,
    },
    #[serde(rename_all = "camelCase")]
    Release {
        instance_id: String,
    },
    #[serde(rename_all = "camelCase")]
    Reset {
        instance_id: String,
    },
    #[serde(rename_all = "camelCase")]
    State {
        instance_id: String,
    },
    #[serde(rename_all = "camelCase")]
    Logs {
        instance_id: String,
        #[serde(default)]
        after_seq: i64,
        limit: u32,
    },
}

pub async fn job_query(provider: &SharedProvider, query: JobQuery) -> Result<serde_json::Value> {
    use serde_json::{json, to_value};
    let value = match query {
        JobQuery::Emit { event, payload } => json!(provider.job_emit(event, payload).await?),
        JobQuery::ClearEvent { event } => json!(provider.job_clear_event(event).await?),
        JobQuery::QueueKey { instance_id, key } => {
            provider.job_queue_key(instance_id, key).await?;
            serde_json::Value::Null
        }
        JobQuery::Release { instance_id } => {
            provider.job_release(instance_id).await?;
            serde_json::Value::Null
        }
        JobQuery::Reset { instance_id } => json!(provider.job_reset(instance_id).await?),
        JobQuery::State { instance_id } => {
            to_value(provider.job_state(instance_id).await?).unwrap_or(serde_json::Value::Null)
        }
        JobQuery::Logs {
            instance_id,
            after_seq,
            limit,
        } => to_value(provider.job_logs(instance_id, after_seq, limit).await?)
            .unwrap_or(serde_json::Value::Null),
    };
    Ok(value)
}
