//! Retrying a Failed instance: reads it and its sub-orchestrations, plans the rewind with
//! [`crate::engine::plan_rewind`] and applies it through [`Provider::rewind_instance`].

use crate::engine::{payload_from_str, plan_rewind, Message, TaskError};
use crate::store::{InstanceInfo, Provider, Result, StoreError, StoredStatus};

/// Why [`retry_instance`] did nothing.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("no instance '{0}'")]
    NotFound(String),
    /// Only a Failed instance can be retried.
    #[error("instance '{0}' is {1}; only a Failed instance can be retried")]
    NotFailed(String, String),
    #[error("instance '{0}' cannot be retried: {1}")]
    Unretryable(String, String),
    /// It changed between reading and rewinding (retried or deleted meanwhile).
    #[error("instance '{0}' changed while it was being retried; look at it again")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The result a completed child reports to its parent's execution and task.
fn child_completed(child: &InstanceInfo, execution_id: u64, task: u32) -> Result<Message> {
    let output = payload_from_str(child.output.as_deref().unwrap_or("null"))
        .map_err(|e| StoreError::Corrupt(format!("output of '{}': {e}", child.instance_id)))?;
    Ok(Message::ChildCompleted {
        execution_id,
        task,
        output,
    })
}

/// Re-runs a Failed instance from its last good point (see [`crate::engine::plan_rewind`]):
/// activities that succeeded before the failure are not run again. Failed sub-orchestrations
/// the instance still waits for are retried too, after it. Returns the ids retried, the
/// instance's first.
pub async fn retry_instance(
    provider: &dyn Provider,
    instance_id: &str,
) -> std::result::Result<Vec<String>, RetryError> {
    let id = instance_id.to_owned();
    let info = provider
        .instance(&id)
        .await?
        .ok_or_else(|| RetryError::NotFound(id.clone()))?;
    if !StoredStatus::is_failure(&info.status) {
        let shown = super::status::generator_status(&info.status).to_owned();
        return Err(RetryError::NotFailed(id, shown));
    }
    let history = provider.history(&id, Some(info.execution_id)).await?;
    let mut plan = plan_rewind(info.execution_id, &history)
        .map_err(|why| RetryError::Unretryable(id.clone(), why))?;
    let mut failed_children = Vec::new();
    let mut running_children = Vec::new();
    for (task, child_id) in &plan.open_children {
        let child = provider.instance(child_id).await?.ok_or_else(|| {
            RetryError::Unretryable(
                id.clone(),
                format!("its sub-orchestration '{child_id}' was deleted"),
            )
        })?;
        if child.parent_instance_id.as_deref() != Some(id.as_str()) {
            // The id was taken by another instance (the child was never started).
            return Err(RetryError::Unretryable(
                id,
                format!("the instance '{child_id}' it waits for is not its sub-orchestration"),
            ));
        }
        match child.status.as_str() {
            // Its result was dropped while the parent was failed: deliver it again.
            "Completed" => {
                let message = child_completed(&child, info.execution_id, *task)?;
                plan.messages.push((message, None));
            }
            s if StoredStatus::is_failure(s) => {
                let child_history = provider.history(child_id, Some(child.execution_id)).await?;
                plan_rewind(child.execution_id, &child_history).map_err(|why| {
                    RetryError::Unretryable(
                        id.clone(),
                        format!("its sub-orchestration '{child_id}' cannot be retried: {why}"),
                    )
                })?;
                failed_children.push(child_id.clone());
            }
            // Running: it reports when it ends.
            _ => running_children.push((*task, child_id.clone())),
        }
    }
    if !provider
        .rewind_instance(&id, &plan, info.updated_at)
        .await?
    {
        return Err(RetryError::Conflict(id));
    }
    // A child that ended between the read above and the rewind reported to a failed parent
    // (its result was dropped): deliver it again. A second delivery is dropped by the engine.
    for (task, child_id) in running_children {
        let Some(child) = provider.instance(&child_id).await? else {
            continue;
        };
        let message = match child.status.as_str() {
            "Completed" => child_completed(&child, info.execution_id, task)?,
            s if StoredStatus::is_failure(s) => Message::ChildFailed {
                execution_id: info.execution_id,
                task,
                error: TaskError {
                    message: child.error.unwrap_or_default(),
                    code: child.error_code,
                    name: None,
                },
            },
            _ => continue,
        };
        provider.enqueue(&id, &message).await?;
    }
    let mut retried = vec![id];
    for child in failed_children {
        retried.extend(Box::pin(retry_instance(provider, &child)).await?);
    }
    Ok(retried)
}
