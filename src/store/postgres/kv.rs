//! Reading an instance's key-value store (written by turn commits) and its sizes.

use super::PostgresProvider;
use crate::store::rows::Columns;
use crate::store::{InstanceStats, KvEntry, Result};

pub(super) async fn values(
    p: &PostgresProvider,
    instance_id: &str,
    key: Option<&str>,
) -> Result<Vec<KvEntry>> {
    let rows = sqlx::query(
        "SELECT key, value, updated_at FROM kv
         WHERE instance_id = $1 AND ($2::text IS NULL OR key = $2) ORDER BY key COLLATE \"C\"",
    )
    .bind(instance_id)
    .bind(key)
    .fetch_all(&mut *p.pool.conn().await?)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(KvEntry {
                key: r.string("key")?,
                value: r.string("value")?,
                updated_at: r.int("updated_at")?,
            })
        })
        .collect()
}

pub(super) async fn instance_stats(
    p: &PostgresProvider,
    instance_id: &str,
) -> Result<Option<InstanceStats>> {
    let row = sqlx::query(
        "SELECT
            (SELECT COUNT(*) FROM history h WHERE h.instance_id = i.instance_id
                AND h.execution_id = i.execution_id) AS events,
            (SELECT COALESCE(SUM(OCTET_LENGTH(h.data)), 0) FROM history h
                WHERE h.instance_id = i.instance_id AND h.execution_id = i.execution_id)::bigint
                AS event_bytes,
            (SELECT COUNT(*) FROM orchestrator_queue q WHERE q.instance_id = i.instance_id)
                + (SELECT COUNT(*) FROM worker_queue w WHERE w.instance_id = i.instance_id)
                AS queued,
            (SELECT COUNT(*) FROM kv WHERE kv.instance_id = i.instance_id) AS keys,
            (SELECT COALESCE(SUM(OCTET_LENGTH(kv.value)), 0) FROM kv
                WHERE kv.instance_id = i.instance_id)::bigint AS value_bytes
         FROM instances i WHERE i.instance_id = $1",
    )
    .bind(instance_id)
    .fetch_optional(&mut *p.pool.conn().await?)
    .await?;
    row.map(|r| {
        Ok(InstanceStats {
            history_event_count: r.int("events")? as u64,
            history_size_bytes: r.int("event_bytes")? as u64,
            queue_pending_count: r.int("queued")? as u64,
            kv_key_count: r.int("keys")? as u64,
            kv_value_bytes: r.int("value_bytes")? as u64,
        })
    })
    .transpose()
}
