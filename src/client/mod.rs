//! What a client does on top of a store: cancelling, waiting, following an instance as it
//! runs, retrying a failed one, paging. Written against the `Provider` trait only, so it
//! works on every backend and from any process.

pub mod cursor;
pub mod jobs;
pub mod retry;
pub mod status;
pub mod wait;
pub mod watch;

pub use retry::{retry_instance, RetryError};

use crate::engine::Message;
use crate::store::{Provider, Result, StoredStatus};

/// Asks a running instance to cancel; `false` (and nothing queued) when it is not running.
pub async fn cancel_if_running(
    provider: &dyn Provider,
    instance_id: &str,
    reason: String,
) -> Result<bool> {
    match provider.instance(instance_id).await? {
        Some(info) if StoredStatus::is_active(&info.status) => {
            provider
                .enqueue(instance_id, &Message::Cancel { reason })
                .await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}
