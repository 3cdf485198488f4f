//! Reading an instance's key-value store (written by turn commits) and its sizes.

use rusqlite::params;

use super::sql::query_rows;
use super::SqliteProvider;
use crate::store::{InstanceStats, KvEntry, Result};

pub(super) async fn values(
    p: &SqliteProvider,
    instance_id: &str,
    key: Option<&str>,
) -> Result<Vec<KvEntry>> {
    let (id, key) = (instance_id.to_owned(), key.map(str::to_owned));
    p.read(move |db| {
        query_rows(
            db,
            "SELECT key, value, updated_at FROM kv
             WHERE instance_id = ?1 AND (?2 IS NULL OR key = ?2) ORDER BY key",
            params![id, key],
            |r| {
                Ok(KvEntry {
                    key: r.get(0)?,
                    value: r.get(1)?,
                    updated_at: r.get(2)?,
                })
            },
        )
    })
    .await
}

pub(super) async fn instance_stats(
    p: &SqliteProvider,
    instance_id: &str,
) -> Result<Option<InstanceStats>> {
    let id = instance_id.to_owned();
    p.read(move |db| {
        let rows = query_rows(
            db,
            "SELECT
                (SELECT COUNT(*) FROM history h WHERE h.instance_id = i.instance_id
                    AND h.execution_id = i.execution_id),
                (SELECT COALESCE(SUM(LENGTH(CAST(h.data AS BLOB))), 0) FROM history h
                    WHERE h.instance_id = i.instance_id AND h.execution_id = i.execution_id),
                (SELECT COUNT(*) FROM orchestrator_queue q WHERE q.instance_id = i.instance_id)
                    + (SELECT COUNT(*) FROM worker_queue w WHERE w.instance_id = i.instance_id),
                (SELECT COUNT(*) FROM kv WHERE kv.instance_id = i.instance_id),
                (SELECT COALESCE(SUM(LENGTH(CAST(kv.value AS BLOB))), 0) FROM kv
                    WHERE kv.instance_id = i.instance_id)
             FROM instances i WHERE i.instance_id = ?1",
            params![id],
            |r| {
                Ok(InstanceStats {
                    history_event_count: r.get::<_, i64>(0)? as u64,
                    history_size_bytes: r.get::<_, i64>(1)? as u64,
                    queue_pending_count: r.get::<_, i64>(2)? as u64,
                    kv_key_count: r.get::<_, i64>(3)? as u64,
                    kv_value_bytes: r.get::<_, i64>(4)? as u64,
                })
            },
        )?;
        Ok(rows.into_iter().next())
    })
    .await
}
