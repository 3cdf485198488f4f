//! Management: listing and counting instances, executions, activity attempts and queue
//! depths; selecting finished instances for bulk deletion; pruning old executions.

use rusqlite::params;

use super::instances::current_execution;
use super::sql::{execute, query_rows, Sql};
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
    p.read(move |db| {
        let limit = f.limit.max(1) as usize;
        let mut sql = Sql::new("SELECT * FROM instances WHERE 1 = 1");
        if !f.statuses.is_empty() {
            sql.push(" AND status IN ").list(f.statuses.iter().cloned());
        }
        if let Some(name) = &f.name {
            sql.push(" AND name = ").bind(name.clone());
        }
        if let Some(after) = f.created_after {
            sql.push(" AND created_at > ").bind(after);
        }
        if let Some(before) = f.created_before {
            sql.push(" AND created_at < ").bind(before);
        }
        if let Some(parent) = &f.parent_id {
            sql.push(" AND parent_instance_id = ").bind(parent.clone());
        }
        if let Some(c) = &f.cursor {
            sql.push(" AND (created_at, instance_id) > ").list([
                c.created_at.into(),
                rusqlite::types::Value::from(c.instance_id.clone()),
            ]);
        }
        sql.push(" ORDER BY created_at, instance_id LIMIT ")
            .bind(limit as i64 + 1);
        let instances = sql.rows(db, |r| instance_info(r))?;
        Ok(page_of(instances, limit))
    })
    .await
}

pub(super) async fn list_executions(
    p: &SqliteProvider,
    instance_id: &str,
) -> Result<Vec<ExecutionInfo>> {
    let id = instance_id.to_owned();
    p.read(move |db| {
        let Some(current) = current_execution(db, &id)? else {
            return Ok(vec![]);
        };
        let rows = query_rows(
            db,
            "SELECT execution_id, MIN(ts) AS first_ts, MAX(ts) AS last_ts, COUNT(*) AS n
             FROM history WHERE instance_id = ?1 GROUP BY execution_id ORDER BY execution_id",
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        Ok(executions_of(rows, current))
    })
    .await
}

pub(super) async fn system_metrics(p: &SqliteProvider) -> Result<SystemMetrics> {
    p.read(|db| {
        let rows = query_rows(
            db,
            "SELECT status, COUNT(*) AS n FROM instances GROUP BY status
             UNION ALL SELECT '#executions', COALESCE(SUM(execution_id), 0) FROM instances
             UNION ALL SELECT '#events', COUNT(*) FROM history",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(metrics_of(rows))
    })
    .await
}

pub(super) async fn activity_attempts(
    p: &SqliteProvider,
    instance_id: &str,
) -> Result<Vec<ActivityAttempt>> {
    let id = instance_id.to_owned();
    let now = p.clock.now_ms();
    p.read(move |db| {
        query_rows(
            db,
            "SELECT execution_id, task, name, attempt, lock_until > ?2 AS running, visible_at
             FROM worker_queue WHERE instance_id = ?1 ORDER BY execution_id, task",
            params![id, now],
            |r| activity_attempt(r),
        )
    })
    .await
}

pub(super) async fn expire_unknown_events(p: &SqliteProvider) -> Result<u64> {
    let clock = p.clock.clone();
    let ttl = p.unknown_event_ttl_ms;
    p.write(move |db| {
        let deleted = execute(
            db,
            "DELETE FROM orchestrator_queue WHERE kind = 'Event' AND visible_at < ?1
                AND NOT EXISTS (SELECT 1 FROM instances i
                    WHERE i.instance_id = orchestrator_queue.instance_id)",
            params![clock.now_ms().saturating_sub(ttl)],
        )?;
        Ok(deleted as u64)
    })
    .await
}

pub(super) async fn queue_depths(p: &SqliteProvider) -> Result<QueueDepths> {
    let clock = p.clock.clone();
    p.read(move |db| {
        let now = clock.now_ms();
        let counts = query_rows(
            db,
            "SELECT
                (SELECT COUNT(*) FROM orchestrator_queue q WHERE visible_at <= ?1
                    AND EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = q.instance_id)) AS ov,
                (SELECT COUNT(*) FROM orchestrator_queue q WHERE visible_at > ?1
                    AND EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = q.instance_id)) AS od,
                (SELECT COUNT(*) FROM worker_queue WHERE lock_until <= ?1 AND visible_at <= ?1) AS wv,
                (SELECT COUNT(*) FROM worker_queue WHERE lock_until > ?1) AS wr,
                (SELECT COUNT(*) FROM worker_queue WHERE lock_until <= ?1 AND visible_at > ?1) AS wd",
            params![now],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        Ok(queue_depths_of(counts.into_iter().next().unwrap_or_default()))
    })
    .await
}

pub(super) async fn finished_instances(
    p: &SqliteProvider,
    filter: &DeleteFilter,
) -> Result<Vec<String>> {
    let f = filter.clone();
    p.read(move |db| {
        let mut sql = Sql::new(
            "SELECT instance_id FROM instances WHERE status IN ('Completed', 'Failed', 'Canceled')",
        );
        if let Some(ids) = &f.ids {
            if ids.is_empty() {
                return Ok(vec![]);
            }
            sql.push(" AND instance_id IN ").list(ids.iter().cloned());
        }
        if !f.statuses.is_empty() {
            sql.push(" AND status IN ").list(f.statuses.iter().cloned());
        }
        if let Some(before) = f.completed_before {
            sql.push(" AND updated_at < ").bind(before);
        }
        sql.push(" ORDER BY updated_at, instance_id");
        if let Some(limit) = f.limit {
            sql.push(" LIMIT ").bind(limit as i64);
        }
        sql.rows(db, |r| Ok(r.get::<_, String>(0)?))
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
    p.write(move |db| {
        let Some(current) = current_execution(db, &id)? else {
            return Ok(0);
        };
        let old = query_rows(
            db,
            "SELECT execution_id, MAX(ts) FROM history
             WHERE instance_id = ?1 AND execution_id < ?2 GROUP BY execution_id",
            params![id, current],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)?)),
        )?;
        let doomed = executions_to_prune(current as u64, &old, keep_last, completed_before);
        if doomed.is_empty() {
            return Ok(0);
        }
        let mut sql = Sql::new("DELETE FROM history WHERE instance_id = ");
        sql.bind(id.clone())
            .push(" AND execution_id IN ")
            .list(doomed.iter().map(|e| *e as i64))
            .execute(db)?;
        Ok(doomed.len() as u64)
    })
    .await
}
