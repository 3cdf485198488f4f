//! The registry of runtimes. Many runtimes share the database; each refreshes its row every
//! heartbeat, and any live one removes the rows whose heartbeat is stale, releasing those
//! runtimes' leases at once instead of waiting for them to expire.

use sqlx::postgres::PgRow;
use sqlx::Row;

use super::notify::Change;
use super::PostgresProvider;
use crate::store::rows::{runtime_info, unserved_name, Columns};
use crate::store::{Reaped, Result, RuntimeInfo, RuntimeRegistration, StoreError, UnservedWork};

/// Removes the stale runtimes (and `replace`), releasing their leases.
async fn reap(p: &PostgresProvider, except: &str, replace: Option<&str>) -> Result<Reaped> {
    let row: PgRow = sqlx::query(
        "WITH dead AS (
            DELETE FROM runtimes
            WHERE runtime_id <> $1
                AND (heartbeat_at < reprise_now_ms() - stale_after_ms OR runtime_id = $2)
            RETURNING runtime_id
        ), instances_released AS (
            UPDATE instances SET lock_owner = NULL, lock_until = 0
            WHERE lock_owner IN (SELECT runtime_id FROM dead) AND lock_until > 0
            RETURNING 1
        ), activities_released AS (
            UPDATE worker_queue SET lock_owner = NULL, lock_until = 0
            WHERE lock_owner IN (SELECT runtime_id FROM dead) AND lock_until > 0
            RETURNING 1
        )
        SELECT ARRAY(SELECT runtime_id FROM dead) AS runtimes,
            (SELECT COUNT(*) FROM instances_released) AS instances,
            (SELECT COUNT(*) FROM activities_released) AS activities",
    )
    .bind(except)
    .bind(replace)
    .fetch_one(&mut *p.pool.conn().await?)
    .await?;
    let reaped = Reaped {
        runtimes: row.try_get("runtimes")?,
        instances: row.int("instances")? as u64,
        activities: row.int("activities")? as u64,
    };
    if !reaped.runtimes.is_empty() {
        let change = Change {
            orchestrations: reaped.instances > 0,
            activities: reaped.activities > 0,
            ..Default::default()
        };
        p.signal(change, false).await;
    }
    Ok(reaped)
}

/// Records the runtime (or refreshes its heartbeat); `false` if another runtime holds its
/// `worker_node_id`.
async fn record(p: &PostgresProvider, r: &RuntimeRegistration) -> Result<bool> {
    let written = sqlx::query(
        "INSERT INTO runtimes (runtime_id, worker_node_id, host, pid, started_at, heartbeat_at,
            stale_after_ms, capabilities)
         VALUES ($1, $2, $3, $4, reprise_now_ms(), reprise_now_ms(), $5, $6)
         ON CONFLICT (runtime_id) DO UPDATE SET heartbeat_at = reprise_now_ms()",
    )
    .bind(&r.runtime_id)
    .bind(&r.worker_node_id)
    .bind(&r.host)
    .bind(r.pid as i64)
    .bind(r.stale_after_ms)
    .bind(&r.capabilities)
    .execute(&mut *p.pool.conn().await?)
    .await;
    match written {
        Ok(_) => {
            record_names(p, r).await?;
            Ok(true)
        }
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Refreshes when a live runtime last had each of its names (in key order, so runtimes
/// refreshing the same names never deadlock).
async fn record_names(p: &PostgresProvider, r: &RuntimeRegistration) -> Result<()> {
    if r.names.is_empty() {
        return Ok(());
    }
    let mut names = r.names.clone();
    names.sort();
    let (kinds, rest): (Vec<String>, Vec<(String, String)>) =
        names.into_iter().map(|(k, n, v)| (k, (n, v))).unzip();
    let (names, versions): (Vec<String>, Vec<String>) = rest.into_iter().unzip();
    sqlx::query(
        "INSERT INTO registered_names (kind, name, version, last_seen_at)
         SELECT k, n, v, reprise_now_ms()
         FROM UNNEST($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS t(k, n, v, o)
         ORDER BY o
         ON CONFLICT (kind, name, version) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at",
    )
    .bind(kinds)
    .bind(names)
    .bind(versions)
    .execute(&mut *p.pool.conn().await?)
    .await?;
    Ok(())
}

pub(super) async fn unserved_work(p: &PostgresProvider, live_ms: i64) -> Result<UnservedWork> {
    // The distinct names with queued work, each found by one index probe (a loose index
    // scan), then those no runtime had within `live_ms`.
    let rows = sqlx::query(
        "WITH RECURSIVE o(name) AS (
            (SELECT name FROM orchestrator_queue WHERE name IS NOT NULL ORDER BY name LIMIT 1)
            UNION ALL
            SELECT (SELECT q.name FROM orchestrator_queue q WHERE q.name > o.name
                ORDER BY q.name LIMIT 1)
            FROM o WHERE o.name IS NOT NULL
        ), a(name) AS (
            (SELECT name FROM worker_queue ORDER BY name LIMIT 1)
            UNION ALL
            SELECT (SELECT w.name FROM worker_queue w WHERE w.name > a.name
                ORDER BY w.name LIMIT 1)
            FROM a WHERE a.name IS NOT NULL
        ), queued(kind, name) AS (
            SELECT 'orchestration', name FROM o WHERE name IS NOT NULL
            UNION ALL SELECT 'activity', name FROM a WHERE name IS NOT NULL
        ), seen AS (
            SELECT q.kind, q.name, (SELECT MAX(r.last_seen_at) FROM registered_names r
                WHERE r.kind = q.kind AND r.name = q.name) AS last_seen_at
            FROM queued q
        )
        SELECT s.kind, s.name, s.last_seen_at, n.now,
            CASE s.kind
                WHEN 'orchestration' THEN (SELECT COUNT(*) FROM orchestrator_queue q
                    WHERE q.name = s.name AND q.visible_at <= n.now)
                ELSE (SELECT COUNT(*) FROM worker_queue w
                    WHERE w.name = s.name AND w.visible_at <= n.now)
            END AS waiting
        FROM (SELECT reprise_now_ms() AS now) n
        LEFT JOIN seen s ON s.last_seen_at IS NULL OR s.last_seen_at < n.now - $1",
    )
    .bind(live_ms)
    .fetch_all(&mut *p.pool.conn().await?)
    .await?;
    let mut work = UnservedWork::default();
    for row in &rows {
        work.now = row.int("now")?;
        work.names.extend(unserved_name(row)?);
    }
    Ok(work)
}

pub(super) async fn last_registered(
    p: &PostgresProvider,
    kind: &str,
    name: &str,
    version: Option<&str>,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT MAX(last_seen_at) FROM registered_names
         WHERE kind = $1 AND name = $2 AND ($3::text IS NULL OR version = $3)",
    )
    .bind(kind)
    .bind(name)
    .bind(version)
    .fetch_one(&mut *p.pool.conn().await?)
    .await?)
}

fn node_taken(r: &RuntimeRegistration) -> StoreError {
    StoreError::Locked(format!(
        "another runtime with workerNodeId '{}' is alive on this store (two live processes must never share a workerNodeId)",
        r.worker_node_id.as_deref().unwrap_or_default()
    ))
}

pub(super) async fn attach_runtime(
    p: &PostgresProvider,
    runtime: &RuntimeRegistration,
    replace: Option<&str>,
) -> Result<Reaped> {
    let reaped = reap(p, &runtime.runtime_id, replace).await?;
    if !record(p, runtime).await? {
        return Err(node_taken(runtime));
    }
    Ok(reaped)
}

pub(super) async fn detach_runtime(p: &PostgresProvider, runtime_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM runtimes WHERE runtime_id = $1")
        .bind(runtime_id)
        .execute(&mut *p.pool.conn().await?)
        .await?;
    Ok(())
}

pub(super) async fn heartbeat(
    p: &PostgresProvider,
    runtime: &RuntimeRegistration,
    reap_stale: bool,
) -> Result<Reaped> {
    if !record(p, runtime).await? {
        return Err(node_taken(runtime));
    }
    if !reap_stale {
        return Ok(Reaped::default());
    }
    reap(p, &runtime.runtime_id, None).await
}

pub(super) async fn list_runtimes(p: &PostgresProvider) -> Result<Vec<RuntimeInfo>> {
    let rows = sqlx::query(
        "SELECT *, reprise_now_ms() AS now FROM runtimes ORDER BY started_at, runtime_id",
    )
    .fetch_all(&mut *p.pool.conn().await?)
    .await?;
    rows.iter()
        .map(|row| runtime_info(row, row.int("now")?))
        .collect()
}
