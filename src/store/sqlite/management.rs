//! Management: listing and counting instances, executions, activity attempts and queue
//! depths; selecting finished instances for bulk deletion; pruning old executions.

use sqlx::{QueryBuilder, Sqlite};

use super::SqliteProvider;
use crate::store::rows::{
    activity_attempt, executions_of, instance_info, metrics_of, page_of, queue_depths_of,
};
use crate::store::{
    executions_to_prune, ActivityAttempt, DeleteFilter, ExecutionInfo, InstanceFilter,
    InstancePage, QueueDepths, Result, SystemMetrics,
};

pub(super) async fn list_instances(
    p: &SqliteProvider,
    filter: &InstanceFilter,
) -> Result<InstancePage> {
    let f = filter.clone();
    p.read(move |conn| {
        Box::pin(async move {
            let limit = f.limit.max(1) as usize;
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("SELECT * FROM instances WHERE 1 = 1");
            if !f.statuses.is_empty() {
                qb.push(" AND status IN (");
                let mut sep = qb.separated(", ");
                for status in &f.statuses {
                    sep.push_bind(status.clone());
                }
                sep.push_unseparated(")");
            }
            if let Some(name) = &f.name {
                qb.push(" AND name = ").push_bind(name.clone());
            }
            if let Some(after) = f.created_after {
                qb.push(" AND created_at > ").push_bind(after);
            }
            if let Some(before) = f.created_before {
                qb.push(" AND created_at < ").push_bind(before);
            }
            if let Some(parent) = &f.parent_id {
                qb.push(" AND parent_instance_id = ")
                    .push_bind(parent.clone());
            }
            if let Some(c) = &f.cursor {
                qb.push(" AND (created_at, instance_id) > (")
                    .push_bind(c.created_at)
                    .push(", ")
                    .push_bind(c.instance_id.clone())
                    .push(")");
            }
            qb.push(" ORDER BY created_at, instance_id LIMIT ")
                .push_bind(limit as i64 + 1);
            let rows = qb.build().fetch_all(&mut *conn).await?;
            let instances = rows.iter().map(instance_info).collect::<Result<Vec<_>>>()?;
            Ok(page_of(instances, limit))
        })
    })
    .await
}

pub(super) async fn list_executions(
    p: &SqliteProvider,
    instance_id: &str,
) -> Result<Vec<ExecutionInfo>> {
    let id = instance_id.to_owned();
    p.read(move |conn| {
        Box::pin(async move {
            let current: Option<i64> =
                sqlx::query_scalar("SELECT execution_id FROM instances WHERE instance_id = ?1")
                    .bind(&id)
                    .fetch_optional(&mut *conn)
                    .await?;
            let Some(current) = current else {
                return Ok(vec![]);
            };
            let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
                "SELECT execution_id, MIN(ts) AS first_ts, MAX(ts) AS last_ts, COUNT(*) AS n
                 FROM history WHERE instance_id = ?1 GROUP BY execution_id ORDER BY execution_id",
            )
            .bind(&id)
            .fetch_all(&mut *conn)
            .await?;
            Ok(executions_of(rows, current))
        })
    })
    .await
}

pub(super) async fn system_metrics(p: &SqliteProvider) -> Result<SystemMetrics> {
    p.read(|conn| {
        Box::pin(async move {
            let rows: Vec<(String, i64)> =
                sqlx::query_as("SELECT status, COUNT(*) AS n FROM instances GROUP BY status")
                    .fetch_all(&mut *conn)
                    .await?;
            Ok(metrics_of(rows))
        })
    })
    .await
}

pub(super) async fn activity_attempts(
    p: &SqliteProvider,
    instance_id: &str,
) -> Result<Vec<ActivityAttempt>> {
    let id = instance_id.to_owned();
    let now = p.clock.now_ms();
    p.read(move |conn| {
        Box::pin(async move {
            sqlx::query(
                "SELECT execution_id, task, name, attempt, lock_until > ?2 AS running, visible_at
                 FROM worker_queue WHERE instance_id = ?1 ORDER BY execution_id, task",
            )
            .bind(id)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(activity_attempt)
            .collect()
        })
    })
    .await
}

pub(super) async fn expire_unknown_events(p: &SqliteProvider) -> Result<u64> {
    let clock = p.clock.clone();
    let ttl = p.unknown_event_ttl_ms;
    p.write(move |conn| {
        Box::pin(async move {
            let deleted = sqlx::query(
                "DELETE FROM orchestrator_queue WHERE kind = 'Event' AND visible_at < ?1
                    AND NOT EXISTS (SELECT 1 FROM instances i
                        WHERE i.instance_id = orchestrator_queue.instance_id)",
            )
            .bind(clock.now_ms().saturating_sub(ttl))
            .execute(&mut *conn)
            .await?
            .rows_affected();
            Ok(deleted)
        })
    })
    .await
}

pub(super) async fn queue_depths(p: &SqliteProvider) -> Result<QueueDepths> {
    let clock = p.clock.clone();
    p.read(move |conn| {
        Box::pin(async move {
            let now = clock.now_ms();
            let counts = sqlx::query_as(
                "SELECT
                    (SELECT COUNT(*) FROM orchestrator_queue q WHERE visible_at <= ?1
                        AND EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = q.instance_id)) AS ov,
                    (SELECT COUNT(*) FROM orchestrator_queue q WHERE visible_at > ?1
                        AND EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = q.instance_id)) AS od,
                    (SELECT COUNT(*) FROM worker_queue WHERE lock_until <= ?1 AND visible_at <= ?1) AS wv,
                    (SELECT COUNT(*) FROM worker_queue WHERE lock_until > ?1) AS wr,
                    (SELECT COUNT(*) FROM worker_queue WHERE lock_until <= ?1 AND visible_at > ?1) AS wd",
            )
            .bind(now)
            .fetch_one(&mut *conn)
            .await?;
            Ok(queue_depths_of(counts))
        })
    })
    .await
}

pub(super) async fn finished_instances(
    p: &SqliteProvider,
    filter: &DeleteFilter,
) -> Result<Vec<String>> {
    let f = filter.clone();
    p.read(move |conn| {
        Box::pin(async move {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "SELECT instance_id FROM instances WHERE status IN ('Completed', 'Failed', 'Canceled')",
            );
            if let Some(ids) = &f.ids {
                if ids.is_empty() {
                    return Ok(vec![]);
                }
                qb.push(" AND instance_id IN (");
                let mut sep = qb.separated(", ");
                for id in ids {
                    sep.push_bind(id.clone());
                }
                sep.push_unseparated(")");
            }
            if !f.statuses.is_empty() {
                qb.push(" AND status IN (");
                let mut sep = qb.separated(", ");
                for status in &f.statuses {
                    sep.push_bind(status.clone());
                }
                sep.push_unseparated(")");
            }
            if let Some(before) = f.completed_before {
                qb.push(" AND updated_at < ").push_bind(before);
            }
            qb.push(" ORDER BY updated_at, instance_id");
            if let Some(limit) = f.limit {
                qb.push(" LIMIT ").push_bind(limit as i64);
            }
            Ok(qb.build_query_scalar().fetch_all(&mut *conn).await?)
        })
    })
    .await
}

pub(super) async fn prune_executions(
    p: &SqliteProvider,
    instance_id: &str,
    keep_last: Option<u32>,
    completed_before: Option<i64>,
) -> Result<u64> {
    let id = instance_id.to_owned();
    p.write(move |conn| {
        Box::pin(async move {
            let current: Option<i64> =
                sqlx::query_scalar("SELECT execution_id FROM instances WHERE instance_id = ?1")
                    .bind(&id)
                    .fetch_optional(&mut *conn)
                    .await?;
            let Some(current) = current else {
                return Ok(0);
            };
            let old: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT execution_id, MAX(ts) FROM history
                 WHERE instance_id = ?1 AND execution_id < ?2 GROUP BY execution_id",
            )
            .bind(&id)
            .bind(current)
            .fetch_all(&mut *conn)
            .await?;
            let old: Vec<(u64, i64)> = old.into_iter().map(|(e, t)| (e as u64, t)).collect();
            let doomed = executions_to_prune(current as u64, &old, keep_last, completed_before);
            if doomed.is_empty() {
                return Ok(0);
            }
            let mut qb = QueryBuilder::new("DELETE FROM history WHERE instance_id = ");
            qb.push_bind(id.clone()).push(" AND execution_id IN (");
            let mut sep = qb.separated(", ");
            for execution in &doomed {
                sep.push_bind(*execution as i64);
            }
            sep.push_unseparated(")");
            qb.build().execute(&mut *conn).await?;
            Ok(doomed.len() as u64)
        })
    })
    .await
}
