//! Claims and leases: claiming instances with visible messages, giving a claim back,
//! renewing leases, and when queued work next becomes due.

use std::collections::HashMap;

use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteProvider;
use crate::store::rows::{
    history_row, queued_message, sort_claimed, Claimed, Columns, UNREADABLE_RETRY_MS,
};
use crate::store::{KnownHistories, Lease, OrchestrationItem, Result};

/// Claims up to `max` instances with visible messages and no live lease (only among `only`
/// when given): their messages (deliveries + 1) and current histories, from where `known`
/// says the claimer's copy ends.
pub(super) async fn claim_in(
    conn: &mut SqliteConnection,
    owner: &str,
    lease_ms: i64,
    max: usize,
    only: Option<&[String]>,
    known: &KnownHistories,
    now: i64,
) -> Result<Vec<OrchestrationItem>> {
    if max == 0 || only.is_some_and(|ids| ids.is_empty()) {
        return Ok(Vec::new());
    }
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("UPDATE instances SET lock_owner = ");
    qb.push_bind(owner.to_owned())
        .push(", lock_until = ")
        .push_bind(now + lease_ms)
        .push(
            ", generation = generation + 1 WHERE instance_id IN (
                    SELECT DISTINCT q.instance_id FROM orchestrator_queue q
                    JOIN instances i ON i.instance_id = q.instance_id
                    WHERE q.visible_at <= ",
        )
        .push_bind(now)
        .push(" AND i.lock_until <= ")
        .push_bind(now);
    if let Some(ids) = only {
        qb.push(" AND q.instance_id IN (");
        let mut sep = qb.separated(", ");
        for id in ids {
            sep.push_bind(id.clone());
        }
        sep.push_unseparated(")");
    }
    qb.push(" LIMIT ")
        .push_bind(max as i64)
        .push(") RETURNING instance_id, execution_id, generation, name, created_at");
    let claimed = qb.build().fetch_all(&mut *conn).await?;
    if claimed.is_empty() {
        return Ok(vec![]);
    }
    let claimed_ids = claimed
        .iter()
        .map(|row| Ok((row.string("instance_id")?, row.int("execution_id")?)))
        .collect::<Result<Vec<(String, i64)>>>()?;
    let read_from: Vec<u64> = claimed_ids
        .iter()
        .map(|(id, execution_id)| known.read_from(id, *execution_id as u64))
        .collect();
    // One statement for every claimed instance's messages, one for histories.
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "UPDATE orchestrator_queue SET deliveries = deliveries + 1 WHERE visible_at <= ",
    );
    qb.push_bind(now).push(" AND instance_id IN (");
    let mut sep = qb.separated(", ");
    for (id, _) in &claimed_ids {
        sep.push_bind(id.clone());
    }
    qb.push(") RETURNING instance_id, seq, kind, data, deliveries");
    let mut messages: HashMap<String, Vec<SqliteRow>> = HashMap::new();
    for r in qb.build().fetch_all(&mut *conn).await? {
        messages
            .entry(r.string("instance_id")?)
            .or_default()
            .push(r);
    }
    let mut qb: QueryBuilder<Sqlite> =
        QueryBuilder::new("WITH c(instance_id, execution_id, from_id) AS (VALUES ");
    let mut sep = qb.separated(", ");
    for ((id, execution_id), from) in claimed_ids.iter().zip(&read_from) {
        sep.push("(")
            .push_bind_unseparated(id.clone())
            .push_unseparated(", ")
            .push_bind_unseparated(*execution_id)
            .push_unseparated(", ")
            .push_bind_unseparated(*from as i64)
            .push_unseparated(")");
    }
    qb.push(
        ") SELECT h.instance_id, h.event_id, h.ts, h.kind, h.data FROM c
        JOIN history h ON h.instance_id = c.instance_id AND h.execution_id = c.execution_id
            AND h.event_id >= c.from_id
        ORDER BY h.instance_id, h.event_id",
    );
    let mut histories: HashMap<String, Vec<SqliteRow>> = HashMap::new();
    for r in qb.build().fetch_all(&mut *conn).await? {
        histories
            .entry(r.string("instance_id")?)
            .or_default()
            .push(r);
    }
    let mut parsed = Vec::with_capacity(claimed.len());
    for ((row, (instance_id, execution_id)), history_from) in
        claimed.iter().zip(claimed_ids).zip(read_from)
    {
        let queued = messages
            .remove(&instance_id)
            .unwrap_or_default()
            .iter()
            .map(queued_message)
            .collect::<Result<Vec<_>>>()
            .map(|mut queued| {
                queued.sort_by_key(|m| m.seq);
                queued
            });
        let history = histories
            .remove(&instance_id)
            .unwrap_or_default()
            .iter()
            .map(history_row)
            .collect::<Result<Vec<_>>>();
        parsed.push(Claimed {
            instance_id,
            execution_id,
            generation: row.int("generation")?,
            name: row.string("name")?,
            created_at: row.int("created_at")?,
            now,
            messages: queued,
            history,
            history_from,
        });
    }
    let (items, unreadable) = sort_claimed(parsed);
    if !unreadable.is_empty() {
        let mut qb = QueryBuilder::new("UPDATE instances SET lock_until = ");
        qb.push_bind(now + UNREADABLE_RETRY_MS)
            .push(" WHERE instance_id IN (");
        let mut sep = qb.separated(", ");
        for id in unreadable {
            sep.push_bind(id);
        }
        sep.push_unseparated(")");
        qb.build().execute(&mut *conn).await?;
    }
    Ok(items)
}

pub(super) async fn claim_orchestrations(
    p: &SqliteProvider,
    owner: &str,
    lease_ms: i64,
    max: usize,
    known: &KnownHistories,
) -> Result<Vec<OrchestrationItem>> {
    let owner = owner.to_owned();
    let clock = p.clock.clone();
    let known = known.clone();
    p.write(move |conn| {
        Box::pin(async move {
            claim_in(conn, &owner, lease_ms, max, None, &known, clock.now_ms()).await
        })
    })
    .await
}

pub(super) async fn abandon_orchestration(
    p: &SqliteProvider,
    instance_id: &str,
    generation: i64,
    delay_ms: i64,
    count_delivery: bool,
) -> Result<()> {
    let id = instance_id.to_owned();
    let clock = p.clock.clone();
    p.write(move |conn| {
        Box::pin(async move {
            let now = clock.now_ms();
            let released = sqlx::query(
                "UPDATE instances SET lock_owner = NULL, lock_until = 0 WHERE instance_id = ?1 AND generation = ?2",
            )
            .bind(&id)
            .bind(generation)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if released == 1 {
                // Messages that arrived after the claim were not delivered by it: the
                // count never goes below zero.
                sqlx::query(
                    "UPDATE orchestrator_queue SET visible_at = MAX(visible_at, ?1),
                        deliveries = MAX(deliveries - ?2, 0)
                     WHERE instance_id = ?3 AND visible_at <= ?4",
                )
                .bind(now + delay_ms)
                .bind(if count_delivery { 0 } else { 1 })
                .bind(&id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        })
    })
    .await?;
    p.wakers.orchestrations.notify_one();
    Ok(())
}

pub(super) async fn renew_leases(
    p: &SqliteProvider,
    leases: &[Lease],
    lease_ms: i64,
) -> Result<Vec<Lease>> {
    let leases = leases.to_vec();
    let clock = p.clock.clone();
    p.write(move |conn| {
        Box::pin(async move {
            let until = clock.now_ms() + lease_ms;
            let mut lost = Vec::new();
            // A lease released by a commit, abandon or retry (lock_until = 0) is not
            // held any more: renewing it must not lock the row again.
            for lease in leases {
                let n = match &lease {
                    Lease::Instance(id, generation) => sqlx::query(
                        "UPDATE instances SET lock_until = ?1
                         WHERE instance_id = ?2 AND generation = ?3 AND lock_until > 0",
                    )
                    .bind(until)
                    .bind(id)
                    .bind(generation)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected(),
                    Lease::Activity(seq, generation) => sqlx::query(
                        "UPDATE worker_queue SET lock_until = ?1
                         WHERE seq = ?2 AND generation = ?3 AND lock_until > 0",
                    )
                    .bind(until)
                    .bind(seq)
                    .bind(generation)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected(),
                };
                if n == 0 {
                    lost.push(lease);
                }
            }
            Ok(lost)
        })
    })
    .await
}

pub(super) async fn next_due(p: &SqliteProvider) -> Result<Option<i64>> {
    let clock = p.clock.clone();
    p.read(move |conn| {
        Box::pin(async move {
            let now = clock.now_ms();
            let due: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(t) FROM (
                    SELECT MIN(visible_at) AS t FROM orchestrator_queue WHERE visible_at > ?1
                    UNION ALL SELECT MIN(visible_at) FROM worker_queue WHERE visible_at > ?1)",
            )
            .bind(now)
            .fetch_one(&mut *conn)
            .await?;
            Ok(due)
        })
    })
    .await
}
