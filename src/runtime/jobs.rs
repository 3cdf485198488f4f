//! What a job attempt (a running activity) asks of the store, through the runtime that runs
//! it: the runtime knows the activity's lease, so every write is fenced by it.

use super::*;
use crate::store::{JobFence, JobWrite, StoreError};

/// A request of a running attempt (JSON from JavaScript, tagged by `op`).
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum JobCall {
    Begin {
        #[serde(default)]
        key: Option<String>,
    },
    Write {
        writes: Vec<JobWrite>,
    },
    #[serde(rename_all = "camelCase")]
    Await {
        name: String,
        event: String,
        #[serde(default)]
        deadline: Option<i64>,
        #[serde(default)]
        give_up: bool,
    },
    /// The attempt is alive and needs `ms` more: its timeout moves to at least now + `ms`.
    Heartbeat {
        ms: u64,
    },
}

impl Runtime {
    /// Runs `call` for the attempt running as activity `id`; `ERR_LEASE_LOST`-style
    /// `StoreError::LeaseLost` when the activity no longer runs here.
    pub async fn job_call(&self, id: i64, call: JobCall) -> Result<serde_json::Value, StoreError> {
        let lost = || StoreError::LeaseLost(format!("activity {id} no longer runs here"));
        let fence = {
            let mut running = self.inner.running.lock().unwrap();
            let Some(r) = running.get_mut(&id) else {
                return Err(lost());
            };
            if let JobCall::Heartbeat { ms } = call {
                r.timeout = r
                    .timeout
                    .max(r.started.elapsed() + Duration::from_millis(ms));
            }
            JobFence {
                instance_id: r.item.instance_id.clone(),
                seq: r.item.seq,
                generation: r.item.generation,
            }
        };
        let provider = &self.inner.provider;
        Ok(match call {
            JobCall::Begin { key } => to_value(&provider.job_begin(fence, key).await?),
            JobCall::Write { writes } => {
                serde_json::Value::Bool(provider.job_write(fence, writes).await?)
            }
            JobCall::Await {
                name,
                event,
                deadline,
                give_up,
            } => to_value(
                &provider
                    .job_await(fence, name, event, deadline, give_up)
                    .await?,
            ),
            JobCall::Heartbeat { .. } => {
                serde_json::Value::Bool(provider.job_write(fence, Vec::new()).await?)
            }
        })
    }
}

fn to_value<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
