//! Activities: claiming them, recording their outcomes, retrying and abandoning them.

use std::collections::HashSet;

use super::notify::Change;
use super::PostgresProvider;
use crate::engine::message_data;
use crate::store::rows::activity_item;
use crate::store::{ActivityItem, ActivityResult, Result};

pub(super) async fn claim_activities(
    p: &PostgresProvider,
    owner: &str,
    lease_ms: i64,
    max: usize,
) -> Result<Vec<ActivityItem>> {
    let rows = sqlx::query(
        "WITH candidates AS (
            SELECT seq, lock_owner AS previous_owner FROM worker_queue
            WHERE visible_at <= reprise_now_ms() AND lock_until <= reprise_now_ms()
            ORDER BY seq LIMIT $3
            FOR UPDATE SKIP LOCKED
        )
        UPDATE worker_queue w SET lock_owner = $1, lock_until = reprise_now_ms() + $2,
            generation = w.generation + 1, deliveries = w.deliveries + 1
        FROM candidates c WHERE w.seq = c.seq
        RETURNING w.seq, w.generation, w.instance_id, w.execution_id, w.task, w.name,
            w.input, w.attempt, w.retry, w.deliveries, w.created_at, c.previous_owner",
    )
    .bind(owner)
    .bind(lease_ms)
    .bind(max as i64)
    .fetch_all(&mut *p.pool.conn().await?)
    .await?;
    let mut items = rows.iter().map(activity_item).collect::<Result<Vec<_>>>()?;
    for (row, item) in rows.iter().zip(&items) {
        let id = format!("'{}' of instance '{}'", item.name, item.instance_id);
        super::claim::log_takeover("activity", &id, owner, row)?;
    }
    items.sort_by_key(|i| i.seq);
    Ok(items)
}

pub(super) async fn complete_activities(
    p: &PostgresProvider,
    outcomes: Vec<(ActivityItem, ActivityResult)>,
) -> Result<Vec<bool>> {
    if outcomes.is_empty() {
        return Ok(Vec::new());
    }
    let mut seqs = Vec::with_capacity(outcomes.len());
    let mut generations = Vec::with_capacity(outcomes.len());
    let mut kinds = Vec::with_capacity(outcomes.len());
    let mut data = Vec::with_capacity(outcomes.len());
    for (item, result) in outcomes {
        let message = result.message(&item);
        seqs.push(item.seq);
        generations.push(item.generation);
        kinds.push(message.kind());
        data.push(message_data(&message));
    }
    // One statement for the batch, fenced row by row by generation; messages are queued
    // in the batch's order. Rows are locked in seq order, as renewals lock them, so a
    // renewal racing a batch that holds some of its rows waits instead of deadlocking.
    let deleted: HashSet<i64> = sqlx::query_scalar(
        "WITH d AS (
            SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[])
                WITH ORDINALITY AS d(seq, generation, kind, data, n)
        ),
        locked AS (
            SELECT w.seq FROM worker_queue w JOIN d
                ON w.seq = d.seq AND w.generation = d.generation
            ORDER BY w.seq FOR UPDATE OF w
        ),
        done AS (
            DELETE FROM worker_queue w USING locked
            WHERE w.seq = locked.seq
            RETURNING w.seq, w.instance_id, w.execution_id, w.task
        ),
        queued AS (
            INSERT INTO orchestrator_queue (instance_id, kind, execution_id, task, visible_at, data)
            SELECT done.instance_id, d.kind, done.execution_id, done.task, reprise_now_ms(), d.data
            FROM done JOIN d ON d.seq = done.seq
            ORDER BY d.n
        )
        SELECT seq FROM done",
    )
    .bind(&seqs)
    .bind(&generations)
    .bind(&kinds)
    .bind(&data)
    .fetch_all(&mut *p.pool.conn().await?)
    .await?
    .into_iter()
    .collect();
    let recorded: Vec<bool> = seqs.iter().map(|s| deleted.contains(s)).collect();
    if !deleted.is_empty() {
        let change = Change {
            orchestrations: true,
            ..Default::default()
        };
        p.signal(change, false).await;
    }
    Ok(recorded)
}

pub(super) async fn retry_activity(
    p: &PostgresProvider,
    item: &ActivityItem,
    visible_at: i64,
    next_attempt: u32,
) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE worker_queue SET visible_at = $1, attempt = $2, lock_owner = NULL,
            lock_until = 0, deliveries = 0
         WHERE seq = $3 AND generation = $4",
    )
    .bind(visible_at)
    .bind(next_attempt as i32)
    .bind(item.seq)
    .bind(item.generation)
    .execute(&mut *p.pool.conn().await?)
    .await?
    .rows_affected()
        == 1;
    let change = Change {
        activities: true,
        ..Default::default()
    };
    p.signal(change, false).await;
    Ok(updated)
}

pub(super) async fn abandon_activity(
    p: &PostgresProvider,
    item: &ActivityItem,
    delay_ms: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE worker_queue SET lock_owner = NULL, lock_until = 0,
            visible_at = reprise_now_ms() + $1
         WHERE seq = $2 AND generation = $3",
    )
    .bind(delay_ms)
    .bind(item.seq)
    .bind(item.generation)
    .execute(&mut *p.pool.conn().await?)
    .await?;
    let change = Change {
        activities: true,
        ..Default::default()
    };
    p.signal(change, false).await;
    Ok(())
}
