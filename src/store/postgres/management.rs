//! Management: listing and counting instances, executions, activity attempts and queue
//! depths; selecting finished instances for bulk deletion; pruning old executions.

use sqlx::{Postgres, QueryBuilder};

use super::PostgresProvider;
use crate::store::rows::{
    activity_attempt, executions_of, instance_info, metrics_of, page_of, queue_depths_of,
};
use crate::store::{
    executions_to_prune, ActivityAttempt, DeleteFilter, ExecutionInfo, InstanceFilter,
    InstancePage, QueueDepths, Result, SystemMetrics,
};

pub(super) async fn list_instances(
    p: &PostgresProvider,
    f: &InstanceFilter,
) -> Result<InstancePage> {
    let limit = f.limit.max(1) as usize;
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("SELECT * FROM instances WHERE true");
    if !f.statuses.is_empty() {
        qb.push(" AND status = ANY(")
            .push_bind(&f.statuses)
            .push(")");
    }
    if let Some(name) = &f.name {
        qb.push(" AND name = ").push_bind(name);
    }
    if let Some(after) = f.created_after {
        qb.push(" AND created_at > ").push_bind(after);
    }
    if let Some(before) = f.created_before {
        qb.push(" AND created_at < ").push_bind(before);
    }
    if let Some(parent) = &f.parent_id {
        qb.push(" AND parent_instance_id = ").push_bind(parent);
    }
    // Ids compare bytewise (COLLATE "C", as the index), like SQLite's.
    if let Some(c) = &f.cursor {
        qb.push(" AND (created_at, instance_id COLLATE \"C\") > (")
            .push_bind(c.created_at)
            .push(", ")
            .push_bind(&c.instance_id)
            .push(")");
    }
    qb.push(" ORDER BY created_at, instance_id COLLATE \"C\" LIMIT ")
        .push_bind(limit as i64 + 1);
    let rows = qb.build().fetch_all(&mut *p.pool.conn().await?).await?;
    let instances = rows.iter().map(instance_info).collect::<Result<Vec<_>>>()?;
    Ok(page_of(instances, limit))
}

pub(super) async fn list_executions(
    p: &PostgresProvider,
    instance_id: &str,
) -> Result<Vec<ExecutionInfo>> {
    let mut tx = p.pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let current: Option<i64> =
        sqlx::query_scalar("SELECT execution_id FROM instances WHERE instance_id = $1")
            .bind(instance_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(current) = current else {
        return Ok(vec![]);
    };
    let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT execution_id, MIN(ts), MAX(ts), COUNT(*) FROM history
         WHERE instance_id = $1 GROUP BY execution_id ORDER BY execution_id",
    )
    .bind(instance_id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(executions_of(rows, current))
}

pub(super) async fn system_metrics(p: &PostgresProvider) -> Result<SystemMetrics> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, COUNT(*) FROM instances GROUP BY status
             UNION ALL SELECT '#executions', COALESCE(SUM(execution_id), 0)::bigint FROM instances
             UNION ALL SELECT '#events', COUNT(*) FROM history",
    )
    .fetch_all(&mut *p.pool.conn().await?)
    .await?;
    Ok(metrics_of(rows))
}

pub(super) async fn activity_attempts(
    p: &PostgresProvider,
    instance_id: &str,
) -> Result<Vec<ActivityAttempt>> {
    sqlx::query(
        "SELECT execution_id, task, name, attempt, lock_until > reprise_now_ms() AS running, visible_at
         FROM worker_queue WHERE instance_id = $1 ORDER BY execution_id, task",
    )
    .bind(instance_id)
    .fetch_all(&mut *p.pool.conn().await?)
    .await?
    .iter()
    .map(activity_attempt)
    .collect()
}

pub(super) async fn expire_unknown_events(p: &PostgresProvider) -> Result<u64> {
    let deleted = sqlx::query(
        "DELETE FROM orchestrator_queue q WHERE q.kind = 'Event'
            AND q.visible_at < reprise_now_ms() - $1
            AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = q.instance_id)",
    )
    .bind(p.unknown_event_ttl_ms)
    .execute(&mut *p.pool.conn().await?)
    .await?
    .rows_affected();
    Ok(deleted)
}

pub(super) async fn queue_depths(p: &PostgresProvider) -> Result<QueueDepths> {
    let counts = sqlx::query_as(
        "WITH t AS (SELECT reprise_now_ms() AS now)
         SELECT
            (SELECT COUNT(*) FROM orchestrator_queue q, t WHERE visible_at <= t.now
                AND EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = q.instance_id)),
            (SELECT COUNT(*) FROM orchestrator_queue q, t WHERE visible_at > t.now
                AND EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = q.instance_id)),
            (SELECT COUNT(*) FROM worker_queue, t WHERE lock_until <= t.now AND visible_at <= t.now),
            (SELECT COUNT(*) FROM worker_queue, t WHERE lock_until > t.now),
            (SELECT COUNT(*) FROM worker_queue, t WHERE lock_until <= t.now AND visible_at > t.now)",
    )
    .fetch_one(&mut *p.pool.conn().await?)
    .await?;
    Ok(queue_depths_of(counts))
}

pub(super) async fn finished_instances(
    p: &PostgresProvider,
    f: &DeleteFilter,
) -> Result<Vec<String>> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT instance_id FROM instances WHERE status IN ('Completed', 'Failed', 'Canceled')",
    );
    if let Some(ids) = &f.ids {
        qb.push(" AND instance_id = ANY(").push_bind(ids).push(")");
    }
    if !f.statuses.is_empty() {
        qb.push(" AND status = ANY(")
            .push_bind(&f.statuses)
            .push(")");
    }
    if let Some(before) = f.completed_before {
        qb.push(" AND updated_at < ").push_bind(before);
    }
    qb.push(" ORDER BY updated_at, instance_id");
    if let Some(limit) = f.limit {
        qb.push(" LIMIT ").push_bind(limit as i64);
    }
    Ok(qb
        .build_query_scalar()
        .fetch_all(&mut *p.pool.conn().await?)
        .await?)
}

pub(super) async fn prune_executions(
    p: &PostgresProvider,
    instance_id: &str,
    keep_last: Option<u32>,
    completed_before: Option<i64>,
) -> Result<u64> {
    let mut tx = p.pool.begin().await?;
    let current: Option<i64> =
        sqlx::query_scalar("SELECT execution_id FROM instances WHERE instance_id = $1 FOR SHARE")
            .bind(instance_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(current) = current else {
        return Ok(0);
    };
    let old: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT execution_id, MAX(ts) FROM history
         WHERE instance_id = $1 AND execution_id < $2 GROUP BY execution_id",
    )
    .bind(instance_id)
    .bind(current)
    .fetch_all(&mut *tx)
    .await?;
    let old: Vec<(u64, i64)> = old.into_iter().map(|(e, t)| (e as u64, t)).collect();
    let doomed: Vec<i64> = executions_to_prune(current as u64, &old, keep_last, completed_before)
        .into_iter()
        .map(|e| e as i64)
        .collect();
    if !doomed.is_empty() {
        sqlx::query("DELETE FROM history WHERE instance_id = $1 AND execution_id = ANY($2)")
            .bind(instance_id)
            .bind(&doomed)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(doomed.len() as u64)
}
