//! One instance from a client: create it, queue messages for it, read it and its history,
//! delete it.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::commit::insert_instances;
use super::group_commit::gather;
use super::notify::Change;
use super::pool::Pool;
use super::PostgresProvider;
use crate::engine::{message_data, HistoryRow, Message, StartRequest};
use crate::store::rows::{history_row, instance_info};
use crate::store::writes::{message_columns, start_message};
use crate::store::{Deletion, InstanceInfo, Removed, Result, StoreError, StoredStatus, JOB_TABLES};

pub(super) async fn create_instances(
    p: &PostgresProvider,
    starts: &[StartRequest],
) -> Result<Vec<bool>> {
    // A second start of one id in the batch finds the first one's instance.
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<&StartRequest> = starts
        .iter()
        .filter(|s| seen.insert(s.instance_id.as_str()))
        .collect();
    let mut tx = p.pool.begin().await?;
    let now: i64 = sqlx::query_scalar("SELECT reprise_now_ms()")
        .fetch_one(&mut *tx)
        .await?;
    let mut created = HashSet::new();
    // Bounded statements: a huge batch is several statements in the one transaction.
    for chunk in unique.chunks(5_000) {
        created.extend(
            insert_instances(&mut tx, chunk, Some(now), p.unknown_event_ttl_ms, None).await?,
        );
    }
    tx.commit().await?;
    let mut taken = HashSet::new();
    let flags: Vec<bool> = starts
        .iter()
        .map(|s| created.contains(&s.instance_id) && taken.insert(s.instance_id.as_str()))
        .collect();
    if !created.is_empty() {
        let change = Change {
            orchestrations: true,
            instances: created.into_iter().collect(),
            ..Default::default()
        };
        p.signal(change, true).await;
    }
    Ok(flags)
}

pub(super) async fn create_instance(p: &PostgresProvider, start: &StartRequest) -> Result<bool> {
    let created = if let Ok(_permit) = p.start_permits.clone().try_acquire_owned() {
        // Nothing waits to be stored: no hop to the gatherer.
        insert_start(p, start).await?
    } else {
        let (reply, answer) = oneshot::channel();
        p.starter
            .send(PendingStart {
                start: start.clone(),
                reply,
            })
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)??
    };
    if created {
        p.signal_here(&start_change(vec![start.instance_id.clone()]));
    }
    Ok(created)
}

/// One start, with its NOTIFY, in one statement.
async fn insert_start(p: &PostgresProvider, start: &StartRequest) -> Result<bool> {
    let (channel, payload) = p.inline_notify(&start_change(vec![start.instance_id.clone()]));
    Ok(sqlx::query(
        "WITH created AS (
            INSERT INTO instances (instance_id, name, version, status, input, parent_instance_id,
                created_at, updated_at)
            VALUES ($1, $2, $3, 'Pending', $4, $5, reprise_now_ms(), reprise_now_ms())
            ON CONFLICT (instance_id) DO NOTHING
            RETURNING instance_id, created_at
        ), expired AS (
            DELETE FROM orchestrator_queue q USING created c
            WHERE q.instance_id = c.instance_id AND q.kind = 'Event'
                AND q.visible_at < c.created_at - $7
        )
        INSERT INTO orchestrator_queue (instance_id, kind, visible_at, data, name)
        SELECT c.instance_id, 'Start', c.created_at, $6, $2
        FROM created c, LATERAL (SELECT pg_notify($8, $9) WHERE c.instance_id IS NOT NULL) n",
    )
    .bind(&start.instance_id)
    .bind(&start.name)
    .bind(&start.version)
    .bind(start.input.get())
    .bind(start.parent.as_ref().map(|p| p.instance_id.as_str()))
    .bind(message_data(&start_message(start)))
    .bind(p.unknown_event_ttl_ms)
    .bind(channel)
    .bind(payload)
    .execute(&mut *p.pool.conn().await?)
    .await?
    .rows_affected()
        == 1)
}

fn start_change(instances: Vec<String>) -> Change {
    Change {
        orchestrations: true,
        instances,
        ..Default::default()
    }
}

/// A start waiting to be stored with the others made at the same moment.
pub(super) struct PendingStart {
    start: StartRequest,
    reply: oneshot::Sender<Result<bool>>,
}

/// What the start gatherer needs of the provider.
#[derive(Clone)]
pub(super) struct Starter {
    pub pool: Arc<Pool>,
    pub channel: String,
    pub sender: String,
    pub event_ttl_ms: i64,
}

/// Stores the starts sent on `rx`, those made at the same moment in one statement that
/// also sends their NOTIFY, until every sender is gone.
pub(super) async fn starter(
    s: Starter,
    rx: mpsc::UnboundedReceiver<PendingStart>,
    permits: Arc<Semaphore>,
) {
    gather(rx, permits, None, move |batch| {
        let s = s.clone();
        async move { store_starts(&s, batch).await }
    })
    .await
}

async fn store_starts(s: &Starter, batch: Vec<PendingStart>) {
    let starts: Vec<&StartRequest> = batch.iter().map(|p| &p.start).collect();
    let results = match insert_starts(s, &starts).await {
        Ok(created) => {
            // A second start of one id in the batch finds the first one's instance.
            let mut taken = HashSet::new();
            starts
                .iter()
                .map(|st| {
                    Ok(created.contains(&st.instance_id) && taken.insert(st.instance_id.clone()))
                })
                .collect()
        }
        Err(e) if e.is_unavailable() => {
            let message = e.to_string();
            (0..batch.len())
                .map(|_| Err(StoreError::Unavailable(message.clone())))
                .collect()
        }
        Err(e) if batch.len() == 1 => vec![Err(e)],
        Err(e) => {
            // One start the database refuses must not fail the others: one by one.
            tracing::debug!(error = %e, starts = batch.len(), "a grouped start failed; storing its starts one by one");
            let mut results = Vec::with_capacity(batch.len());
            for start in &starts {
                results.push(
                    insert_starts(s, &[start])
                        .await
                        .map(|created| created.contains(&start.instance_id)),
                );
            }
            results
        }
    };
    for (pending, result) in batch.into_iter().zip(results) {
        let _ = pending.reply.send(result);
    }
}

/// Inserts the instances of `starts` that do not exist yet (the first of an id given twice),
/// sending their NOTIFY with the same statement. Returns the ids created.
async fn insert_starts(s: &Starter, starts: &[&StartRequest]) -> Result<HashSet<String>> {
    let mut seen = HashSet::new();
    let unique: Vec<&StartRequest> = starts
        .iter()
        .copied()
        .filter(|st| seen.insert(st.instance_id.as_str()))
        .collect();
    let change = start_change(unique.iter().map(|st| st.instance_id.clone()).collect());
    let mut conn = s.pool.conn().await?;
    let notify = Some((s.channel.as_str(), change.payload(&s.sender)));
    insert_instances(&mut conn, &unique, None, s.event_ttl_ms, notify).await
}

pub(super) async fn enqueue(
    p: &PostgresProvider,
    instance_id: &str,
    message: &Message,
) -> Result<()> {
    let (exec, task) = message_columns(message);
    let change = Change {
        orchestrations: true,
        ..Default::default()
    };
    let (channel, payload) = p.inline_notify(&change);
    sqlx::query(
        "INSERT INTO orchestrator_queue (instance_id, kind, execution_id, task, visible_at, data,
            name)
         SELECT $1, $2, $3, $4, reprise_now_ms(), $5,
            (SELECT i.name FROM instances i WHERE i.instance_id = $1)
         FROM (SELECT pg_notify($6, $7)) AS n",
    )
    .bind(instance_id)
    .bind(message.kind())
    .bind(exec)
    .bind(task.map(|t| t as i32))
    .bind(message_data(message))
    .bind(channel)
    .bind(payload)
    .execute(&mut *p.pool.conn().await?)
    .await?;
    p.signal_here(&change);
    Ok(())
}

pub(super) async fn instance(
    p: &PostgresProvider,
    instance_id: &str,
) -> Result<Option<InstanceInfo>> {
    let row = sqlx::query("SELECT * FROM instances WHERE instance_id = $1")
        .bind(instance_id)
        .fetch_optional(&mut *p.pool.conn().await?)
        .await?;
    row.as_ref().map(instance_info).transpose()
}

pub(super) async fn history(
    p: &PostgresProvider,
    instance_id: &str,
    execution_id: Option<u64>,
) -> Result<Vec<HistoryRow>> {
    sqlx::query(
        "SELECT event_id, ts, kind, data FROM history
         WHERE instance_id = $1 AND execution_id = COALESCE($2,
             (SELECT execution_id FROM instances WHERE instance_id = $1))
         ORDER BY event_id",
    )
    .bind(instance_id)
    .bind(execution_id.map(|e| e as i64))
    .fetch_all(&mut *p.pool.conn().await?)
    .await?
    .iter()
    .map(history_row)
    .collect()
}

pub(super) async fn history_after(
    p: &PostgresProvider,
    instance_id: &str,
    execution_id: u64,
    after_event_id: u64,
) -> Result<Vec<HistoryRow>> {
    sqlx::query(
        "SELECT event_id, ts, kind, data FROM history
         WHERE instance_id = $1 AND execution_id = $2 AND event_id > $3
         ORDER BY event_id",
    )
    .bind(instance_id)
    .bind(execution_id as i64)
    .bind(after_event_id as i64)
    .fetch_all(&mut *p.pool.conn().await?)
    .await?
    .iter()
    .map(history_row)
    .collect()
}

pub(super) async fn delete_instance(
    p: &PostgresProvider,
    instance_id: &str,
    force: bool,
) -> Result<Deletion> {
    let mut tx = p.pool.begin().await?;
    let tree: Vec<String> = sqlx::query_scalar(
        "WITH RECURSIVE tree(id) AS (
            SELECT instance_id FROM instances WHERE instance_id = $1
            UNION SELECT i.instance_id FROM instances i JOIN tree t ON i.parent_instance_id = t.id)
         SELECT id FROM tree",
    )
    .bind(instance_id)
    .fetch_all(&mut *tx)
    .await?;
    if tree.is_empty() {
        sqlx::query("DELETE FROM orchestrator_queue WHERE instance_id = $1")
            .bind(instance_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(Deletion::NotFound);
    }
    // Every instance row of the tree first, in one order: claims and commits lock an
    // instance before its queue rows, so deleting queue rows first could deadlock with them.
    let locked: Vec<(String, String)> = sqlx::query_as(
        "SELECT instance_id, status FROM instances WHERE instance_id = ANY($1)
         ORDER BY instance_id FOR UPDATE",
    )
    .bind(&tree)
    .fetch_all(&mut *tx)
    .await?;
    let Some((_, status)) = locked.iter().find(|(id, _)| id == instance_id) else {
        tx.rollback().await?;
        return Ok(Deletion::NotFound);
    };
    if StoredStatus::is_active(status) && !force {
        tx.rollback().await?;
        return Ok(Deletion::Running);
    }
    let executions: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT DISTINCT instance_id, execution_id FROM history
         WHERE instance_id = ANY($1)) AS e",
    )
    .bind(&tree)
    .fetch_one(&mut *tx)
    .await?;
    let mut removed = [0u64; 5 + JOB_TABLES.len()];
    for (n, table) in [
        "history",
        "orchestrator_queue",
        "worker_queue",
        "kv",
        "instances",
    ]
    .into_iter()
    .chain(JOB_TABLES)
    .enumerate()
    {
        removed[n] = sqlx::query(&format!("DELETE FROM {table} WHERE instance_id = ANY($1)"))
            .bind(&tree)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    tx.commit().await?;
    let change = Change {
        instances: tree.clone(),
        ..Default::default()
    };
    p.signal(change, true).await;
    Ok(Deletion::Deleted(Removed {
        ids: tree,
        executions: executions as u64,
        events: removed[0],
        queue_messages: removed[1] + removed[2],
    }))
}
