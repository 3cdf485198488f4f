//! The registry of runtimes. One runtime runs on a file at a time (the file lock proves
//! it), so when one attaches every other row and every lease is a dead process's.

use sqlx::sqlite::SqliteConnection;
use sqlx::Row;

use super::SqliteProvider;
use crate::store::rows::runtime_info;
use crate::store::{Reaped, Result, RuntimeInfo, RuntimeRegistration};

async fn record(conn: &mut SqliteConnection, r: &RuntimeRegistration, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO runtimes (runtime_id, worker_node_id, host, pid, started_at, heartbeat_at,
            stale_after_ms, capabilities)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)
         ON CONFLICT (runtime_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
    )
    .bind(&r.runtime_id)
    .bind(&r.worker_node_id)
    .bind(&r.host)
    .bind(r.pid as i64)
    .bind(now)
    .bind(r.stale_after_ms)
    .bind(&r.capabilities)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Releases every lease, empties the registry and records `runtime`.
pub(super) async fn attach_runtime(
    p: &SqliteProvider,
    runtime: &RuntimeRegistration,
) -> Result<Reaped> {
    let runtime = runtime.clone();
    let clock = p.clock.clone();
    p.write(move |conn| {
        Box::pin(async move {
            let instances = sqlx::query(
                "UPDATE instances SET lock_owner = NULL, lock_until = 0 WHERE lock_until > 0",
            )
            .execute(&mut *conn)
            .await?
            .rows_affected();
            let activities = sqlx::query(
                "UPDATE worker_queue SET lock_owner = NULL, lock_until = 0 WHERE lock_until > 0",
            )
            .execute(&mut *conn)
            .await?
            .rows_affected();
            let runtimes = sqlx::query("DELETE FROM runtimes RETURNING runtime_id")
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|row| row.try_get::<String, _>("runtime_id"))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            record(conn, &runtime, clock.now_ms()).await?;
            Ok(Reaped {
                runtimes,
                instances,
                activities,
            })
        })
    })
    .await
}

pub(super) async fn detach_runtime(p: &SqliteProvider, runtime_id: &str) -> Result<()> {
    let id = runtime_id.to_owned();
    p.write(move |conn| {
        Box::pin(async move {
            sqlx::query("DELETE FROM runtimes WHERE runtime_id = ?1")
                .bind(&id)
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
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
    p.write(move |conn| {
        Box::pin(async move {
            record(conn, &runtime, clock.now_ms()).await?;
            Ok(Reaped::default())
        })
    })
    .await
}

pub(super) async fn list_runtimes(p: &SqliteProvider) -> Result<Vec<RuntimeInfo>> {
    let clock = p.clock.clone();
    p.read(move |conn| {
        Box::pin(async move {
            let now = clock.now_ms();
            sqlx::query("SELECT * FROM runtimes ORDER BY started_at, runtime_id")
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|row| runtime_info(row, now))
                .collect()
        })
    })
    .await
}
