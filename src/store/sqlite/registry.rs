//! The registry of runtimes. One runtime runs on a file at a time (the file lock proves
//! it), so when one attaches every other row and every lease is a dead process's.

use rusqlite::params;

use super::sql::{execute, query_rows};
use super::writer::Db;
use super::SqliteProvider;
use crate::store::rows::runtime_info;
use crate::store::{Reaped, Result, RuntimeInfo, RuntimeRegistration};

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
    Ok(())
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
