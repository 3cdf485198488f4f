//! One instance from a client: create it, queue messages for it, read it and its history,
//! delete it.

use sqlx::QueryBuilder;

use rusqlite::params;

use super::queue::insert_messages;
use super::sql::execute;
use super::writer::Db;
use super::SqliteProvider;
use crate::engine::{HistoryRow, Message, StartRequest};
use crate::store::rows::{history_row, instance_info};
use crate::store::writes::{start_message, QueueInsert};
use crate::store::{Deletion, InstanceInfo, Result, StoredStatus};

/// Inserts an instance and its start message unless the id exists. Events raised for the
/// id before it existed are kept for it unless older than `event_ttl_ms`.
pub(super) fn create_instance_in(
    db: &Db,
    start: &StartRequest,
    now: i64,
    event_ttl_ms: i64,
) -> Result<bool> {
    let inserted = execute(
        db,
        "INSERT INTO instances (instance_id, name, version, status, input, parent_instance_id, created_at, updated_at)
         VALUES (?1, ?2, ?3, 'Pending', ?4, ?5, ?6, ?6) ON CONFLICT (instance_id) DO NOTHING",
        params![
            start.instance_id,
            start.name,
            start.version,
            start.input.get(),
            start.parent.as_ref().map(|p| p.instance_id.as_str()),
            now,
        ],
    )? == 1;
    if inserted {
        execute(
            db,
            "DELETE FROM orchestrator_queue WHERE instance_id = ?1 AND kind = 'Event' AND visible_at < ?2",
            params![start.instance_id, now.saturating_sub(event_ttl_ms)],
        )?;
        insert_messages(
            db,
            &[QueueInsert {
                instance_id: start.instance_id.clone(),
                message: start_message(start),
                visible_at: now,
            }],
        )?;
    }
    Ok(inserted)
}

pub(super) async fn create_instances(
    p: &SqliteProvider,
    starts: &[StartRequest],
) -> Result<Vec<bool>> {
    let starts = starts.to_vec();
    let clock = p.clock.clone();
    let ttl = p.unknown_event_ttl_ms;
    let (created, ids) = p
        .write_sync(move |db| {
            let now = clock.now_ms();
            let created = starts
                .iter()
                .map(|start| create_instance_in(db, start, now, ttl))
                .collect::<Result<Vec<bool>>>()?;
            let ids: Vec<String> = starts.into_iter().map(|s| s.instance_id).collect();
            Ok((created, ids))
        })
        .await?;
    if created.iter().any(|c| *c) {
        p.wakers.orchestrations.notify_one();
        for (id, _) in ids.iter().zip(&created).filter(|(_, c)| **c) {
            p.wakers.instance_changed(id);
        }
    }
    Ok(created)
}

pub(super) async fn create_instance(p: &SqliteProvider, start: &StartRequest) -> Result<bool> {
    let start = start.clone();
    let id = start.instance_id.clone();
    let clock = p.clock.clone();
    let ttl = p.unknown_event_ttl_ms;
    let created = p
        .write_sync(move |db| create_instance_in(db, &start, clock.now_ms(), ttl))
        .await?;
    if created {
        p.wakers.orchestrations.notify_one();
        p.wakers.instance_changed(&id);
    }
    Ok(created)
}

pub(super) async fn enqueue(
    p: &SqliteProvider,
    instance_id: &str,
    message: &Message,
) -> Result<()> {
    let row = QueueInsert {
        instance_id: instance_id.to_owned(),
        message: message.clone(),
        visible_at: p.clock.now_ms(),
    };
    p.write_sync(move |db| insert_messages(db, &[row])).await?;
    p.wakers.orchestrations.notify_one();
    Ok(())
}

pub(super) async fn instance(
    p: &SqliteProvider,
    instance_id: &str,
) -> Result<Option<InstanceInfo>> {
    let id = instance_id.to_owned();
    p.read(move |conn| {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM instances WHERE instance_id = ?1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            row.as_ref().map(instance_info).transpose()
        })
    })
    .await
}

pub(super) async fn history(
    p: &SqliteProvider,
    instance_id: &str,
    execution_id: Option<u64>,
) -> Result<Vec<HistoryRow>> {
    let id = instance_id.to_owned();
    p.read(move |conn| {
        Box::pin(async move {
            let exec = match execution_id {
                Some(e) => e as i64,
                None => {
                    match sqlx::query_scalar::<_, i64>(
                        "SELECT execution_id FROM instances WHERE instance_id = ?1",
                    )
                    .bind(&id)
                    .fetch_optional(&mut *conn)
                    .await?
                    {
                        Some(e) => e,
                        None => return Ok(vec![]),
                    }
                }
            };
            sqlx::query(
                "SELECT event_id, ts, kind, data FROM history
                 WHERE instance_id = ?1 AND execution_id = ?2 ORDER BY event_id",
            )
            .bind(&id)
            .bind(exec)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(history_row)
            .collect()
        })
    })
    .await
}

pub(super) async fn history_after(
    p: &SqliteProvider,
    instance_id: &str,
    execution_id: u64,
    after_event_id: u64,
) -> Result<Vec<HistoryRow>> {
    let id = instance_id.to_owned();
    p.read(move |conn| {
        Box::pin(async move {
            sqlx::query(
                "SELECT event_id, ts, kind, data FROM history
                 WHERE instance_id = ?1 AND execution_id = ?2 AND event_id > ?3
                 ORDER BY event_id",
            )
            .bind(id)
            .bind(execution_id as i64)
            .bind(after_event_id as i64)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(history_row)
            .collect()
        })
    })
    .await
}

pub(super) async fn delete_instance(
    p: &SqliteProvider,
    instance_id: &str,
    force: bool,
) -> Result<Deletion> {
    let id = instance_id.to_owned();
    let deletion = p
        .write(move |conn| {
            Box::pin(async move {
                let tree: Vec<String> = sqlx::query_scalar(
                    "WITH RECURSIVE tree(id) AS (
                        SELECT instance_id FROM instances WHERE instance_id = ?1
                        UNION SELECT i.instance_id FROM instances i JOIN tree t ON i.parent_instance_id = t.id)
                     SELECT id FROM tree",
                )
                .bind(&id)
                .fetch_all(&mut *conn)
                .await?;
                if tree.is_empty() {
                    sqlx::query("DELETE FROM orchestrator_queue WHERE instance_id = ?1")
                        .bind(&id)
                        .execute(&mut *conn)
                        .await?;
                    return Ok(Deletion::NotFound);
                }
                let status: String =
                    sqlx::query_scalar("SELECT status FROM instances WHERE instance_id = ?1")
                        .bind(&id)
                        .fetch_one(&mut *conn)
                        .await?;
                if StoredStatus::is_active(&status) && !force {
                    return Ok(Deletion::Running);
                }
                for table in ["history", "orchestrator_queue", "worker_queue", "instances"] {
                    let mut qb =
                        QueryBuilder::new(format!("DELETE FROM {table} WHERE instance_id IN ("));
                    let mut sep = qb.separated(", ");
                    for t in &tree {
                        sep.push_bind(t);
                    }
                    sep.push_unseparated(")");
                    qb.build().execute(&mut *conn).await?;
                }
                Ok(Deletion::Deleted(tree))
            })
        })
        .await?;
    if let Deletion::Deleted(ids) = &deletion {
        for id in ids {
            p.wakers.instance_changed(id);
        }
    }
    Ok(deletion)
}
