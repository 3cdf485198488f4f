//! One instance from a client: create it, queue messages for it, read it and its history,
//! delete it.

use rusqlite::params;

use super::queue::insert_messages;
use super::sql::{execute, query_rows, Sql};
use super::writer::Db;
use super::SqliteProvider;
use crate::engine::{HistoryRow, Message, StartRequest};
use crate::store::rows::{history_row, instance_info};
use crate::store::writes::{start_message, QueueInsert};
use crate::store::{Deletion, InstanceInfo, Removed, Result, StoredStatus, JOB_TABLES};

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
        .write(move |db| {
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
        .write(move |db| create_instance_in(db, &start, clock.now_ms(), ttl))
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
    p.write(move |db| insert_messages(db, &[row])).await?;
    p.wakers.orchestrations.notify_one();
    Ok(())
}

pub(super) async fn instance(
    p: &SqliteProvider,
    instance_id: &str,
) -> Result<Option<InstanceInfo>> {
    let id = instance_id.to_owned();
    p.read(move |db| {
        let rows = query_rows(
            db,
            "SELECT * FROM instances WHERE instance_id = ?1",
            params![id],
            |r| instance_info(r),
        )?;
        Ok(rows.into_iter().next())
    })
    .await
}

/// The execution an instance is on, if it exists.
pub(super) fn current_execution(db: &Db, instance_id: &str) -> Result<Option<i64>> {
    let rows = query_rows(
        db,
        "SELECT execution_id FROM instances WHERE instance_id = ?1",
        params![instance_id],
        |r| Ok(r.get::<_, i64>(0)?),
    )?;
    Ok(rows.into_iter().next())
}

pub(super) async fn history(
    p: &SqliteProvider,
    instance_id: &str,
    execution_id: Option<u64>,
) -> Result<Vec<HistoryRow>> {
    let id = instance_id.to_owned();
    p.read(move |db| {
        let exec = match execution_id {
            Some(e) => e as i64,
            None => match current_execution(db, &id)? {
                Some(e) => e,
                None => return Ok(vec![]),
            },
        };
        query_rows(
            db,
            "SELECT event_id, ts, kind, data FROM history
             WHERE instance_id = ?1 AND execution_id = ?2 ORDER BY event_id",
            params![id, exec],
            |r| history_row(r),
        )
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
    p.read(move |db| {
        query_rows(
            db,
            "SELECT event_id, ts, kind, data FROM history
             WHERE instance_id = ?1 AND execution_id = ?2 AND event_id > ?3
             ORDER BY event_id",
            params![id, execution_id as i64, after_event_id as i64],
            |r| history_row(r),
        )
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
        .write(move |db| {
            let tree = query_rows(
                db,
                "WITH RECURSIVE tree(id) AS (
                    SELECT instance_id FROM instances WHERE instance_id = ?1
                    UNION SELECT i.instance_id FROM instances i JOIN tree t ON i.parent_instance_id = t.id)
                 SELECT id FROM tree",
                params![id],
                |r| Ok(r.get::<_, String>(0)?),
            )?;
            if tree.is_empty() {
                execute(
                    db,
                    "DELETE FROM orchestrator_queue WHERE instance_id = ?1",
                    params![id],
                )?;
                return Ok(Deletion::NotFound);
            }
            let status = query_rows(
                db,
                "SELECT status FROM instances WHERE instance_id = ?1",
                params![id],
                |r| Ok(r.get::<_, String>(0)?),
            )?;
            if status.first().is_some_and(|s| StoredStatus::is_active(s)) && !force {
                return Ok(Deletion::Running);
            }
            let mut executions = Sql::new(
                "SELECT COUNT(*) AS n FROM (SELECT DISTINCT instance_id, execution_id FROM history
                 WHERE instance_id IN ",
            );
            executions.list(tree.iter().cloned()).push(")");
            let executions = executions.rows(db, |r| Ok(r.get::<_, i64>(0)?))?[0] as u64;
            let mut removed = [0u64; 5 + JOB_TABLES.len()];
            for (n, table) in ["history", "orchestrator_queue", "worker_queue", "kv", "instances"]
                .into_iter()
                .chain(JOB_TABLES)
                .enumerate()
            {
                let mut sql = Sql::new(&format!("DELETE FROM {table} WHERE instance_id IN "));
                removed[n] = sql.list(tree.iter().cloned()).execute(db)? as u64;
            }
            Ok(Deletion::Deleted(Removed {
                ids: tree,
                executions,
                events: removed[0],
                queue_messages: removed[1] + removed[2],
            }))
        })
        .await?;
    if let Deletion::Deleted(removed) = &deletion {
        for id in &removed.ids {
            p.wakers.instance_changed(id);
        }
    }
    Ok(deletion)
}
