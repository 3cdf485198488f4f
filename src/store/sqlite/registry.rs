//! The registry of runtimes. One runtime runs on a file at a time (the file lock proves
//! it), so when one attaches every other row and every lease is a dead process's.

use rusqlite::params;

use super::sql::{execute, query_rows};
use super::writer::Db;
use super::SqliteProvider;
use crate::store::rows::{runtime_info, unserved_name};
use crate::store::{Reaped, Result, RuntimeInfo, RuntimeRegistration, UnservedWork};

fn record(db: &Db, r: &RuntimeRegistration, now: i64) -> Result<()> {
    execute(
        db,
        "INSERT INTO runtimes (runtime_id, worker_node_id, host, pid, started_at, heartbeat_at,
            stale_after_ms, capabilities)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)
         ON CONFLICT (runtime_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        params![
            r.runtime_id,
            r.worker_node_id,
            r.host,
            r.pid as i64,
            now,
            r.stale_after_ms,
            r.capabilities,
        ],
    )?;
    for (kind, name, version) in &r.names {
        execute(
            db,
            "INSERT INTO registered_names (kind, name, version, last_seen_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (kind, name, version) DO UPDATE SET last_seen_at = excluded.last_seen_at",
            params![kind, name, version, now],
        )?;
    }
    Ok(())
}

/// The distinct names with queued work (one index probe each), and those no runtime had
/// within `live_ms`.
pub(super) async fn unserved_work(p: &SqliteProvider, live_ms: i64) -> Result<UnservedWork> {
    let clock = p.clock.clone();
    p.read(move |db| {
        let now = clock.now_ms();
        let rows = query_rows(
            db,
            "WITH RECURSIVE o(name) AS (
                SELECT (SELECT name FROM orchestrator_queue WHERE name IS NOT NULL
                    ORDER BY name LIMIT 1)
                UNION ALL
                SELECT (SELECT q.name FROM orchestrator_queue q WHERE q.name > o.name
                    ORDER BY q.name LIMIT 1)
                FROM o WHERE o.name IS NOT NULL
            ), a(name) AS (
                SELECT (SELECT name FROM worker_queue ORDER BY name LIMIT 1)
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
            SELECT s.kind, s.name, s.last_seen_at, ?1 AS now,
                CASE s.kind
                    WHEN 'orchestration' THEN (SELECT COUNT(*) FROM orchestrator_queue q
                        WHERE q.name = s.name AND q.visible_at <= ?1)
                    ELSE (SELECT COUNT(*) FROM worker_queue w
                        WHERE w.name = s.name AND w.visible_at <= ?1)
                END AS waiting
            FROM seen s WHERE s.last_seen_at IS NULL OR s.last_seen_at < ?1 - ?2",
            params![now, live_ms],
            |r| unserved_name(r),
        )?;
        Ok(UnservedWork {
            names: rows.into_iter().flatten().collect(),
            now,
        })
    })
    .await
}

pub(super) async fn last_registered(
    p: &SqliteProvider,
    kind: &str,
    name: &str,
    version: Option<&str>,
) -> Result<Option<i64>> {
    let (kind, name, version) = (kind.to_owned(), name.to_owned(), version.map(str::to_owned));
    p.read(move |db| {
        Ok(query_rows(
            db,
            "SELECT MAX(last_seen_at) FROM registered_names
             WHERE kind = ?1 AND name = ?2 AND (?3 IS NULL OR version = ?3)",
            params![kind, name, version],
            |r| Ok(r.get::<_, Option<i64>>(0)?),
        )?[0])
    })
    .await
}

/// Releases every lease, empties the registry and records `runtime`.
pub(super) async fn attach_runtime(
    p: &SqliteProvider,
    runtime: &RuntimeRegistration,
) -> Result<Reaped> {
    let runtime = runtime.clone();
    let clock = p.clock.clone();
    p.write(move |db| {
        let instances = execute(
            db,
            "UPDATE instances SET lock_owner = NULL, lock_until = 0 WHERE lock_until > 0",
            [],
        )? as u64;
        let activities = execute(
            db,
            "UPDATE worker_queue SET lock_owner = NULL, lock_until = 0 WHERE lock_until > 0",
            [],
        )? as u64;
        let runtimes = query_rows(db, "DELETE FROM runtimes RETURNING runtime_id", [], |r| {
            Ok(r.get::<_, String>(0)?)
        })?;
        record(db, &runtime, clock.now_ms())?;
        Ok(Reaped {
            runtimes,
            instances,
            activities,
        })
    })
    .await
}

pub(super) async fn detach_runtime(p: &SqliteProvider, runtime_id: &str) -> Result<()> {
    let id = runtime_id.to_owned();
    p.write(move |db| {
        execute(
            db,
            "DELETE FROM runtimes WHERE runtime_id = ?1",
            params![id],
        )?;
        Ok(())
    })
    .await
}

/// No other runtime can be on the file: nothing to remove.
pub(super) async fn heartbeat(
    p: &SqliteProvider,
    runtime: &RuntimeRegistration,
    _reap: bool,
) -> Result<Reaped> {
    let runtime = runtime.clone();
    let clock = p.clock.clone();
    p.write(move |db| {
        record(db, &runtime, clock.now_ms())?;
        Ok(Reaped::default())
    })
    .await
}

pub(super) async fn list_runtimes(p: &SqliteProvider) -> Result<Vec<RuntimeInfo>> {
    let clock = p.clock.clone();
    p.read(move |db| {
        let now = clock.now_ms();
        query_rows(
            db,
            "SELECT * FROM runtimes ORDER BY started_at, runtime_id",
            [],
            |r| runtime_info(r, now),
        )
    })
    .await
}
