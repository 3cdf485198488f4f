//! Claims and leases: claiming instances with visible messages, giving a claim back,
//! renewing leases, and when queued work next becomes due.

use std::collections::HashMap;

use rusqlite::params;

use super::sql::{execute, query_rows, Sql};
use super::writer::Db;
use super::SqliteProvider;
use crate::engine::{HistoryRow, QueuedMessage};
use crate::store::rows::{
    history_row, queued_message, sort_claimed, Claimed, Columns, UNREADABLE_RETRY_MS,
};
use crate::store::{Lease, OrchestrationClaim, OrchestrationItem, Result};

/// Claims up to `claim.max` instances with visible messages and no live lease that
/// `claim.routing` lets the claimer take (only among `only` when given): their messages
/// (deliveries + 1) and current histories, from where `claim.known` says the claimer's
/// copy ends.
pub(super) fn claim_in(
    db: &Db,
    claim: &OrchestrationClaim,
    only: Option<&[String]>,
    now: i64,
) -> Result<Vec<OrchestrationItem>> {
    let OrchestrationClaim {
        owner,
        lease_ms,
        max,
        known,
        routing,
    } = claim;
    if *max == 0 || only.is_some_and(|ids| ids.is_empty()) {
        return Ok(Vec::new());
    }
    let own: Vec<String> = routing
        .orchestrations
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    let orphans = &routing.orphans.orchestrations;
    // Every name the claim may take, in one list: an empty `IN ()` beside it would keep
    // SQLite from reading the (name, visible_at) index and make it scan the queue.
    let names: Vec<String> = own.iter().chain(orphans).cloned().collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let (names_of, versions) = routing.orchestration_versions();
    let mut sql = Sql::new("UPDATE instances SET lock_owner = ");
    sql.bind(owner.to_owned())
        .push(", lock_until = ")
        .bind(now + lease_ms)
        .push(
            ", generation = generation + 1 WHERE instance_id IN (
                    SELECT DISTINCT q.instance_id FROM orchestrator_queue q
                    JOIN instances i ON i.instance_id = q.instance_id
                    WHERE q.visible_at <= ",
        )
        .bind(now)
        .push(" AND i.lock_until <= ")
        .bind(now)
        // The claim rule (docs/protocol.md): the queue's (name, visible_at) index finds the
        // claimer's names; the version, once fixed, is the claimer's or one no runtime
        // has had for the unserved grace period.
        .push(" AND (q.name IN ")
        .list(names)
        .push(" OR q.name IS NULL) AND (i.name IN ")
        .list(own.iter().cloned())
        .push(" OR (i.name IN ")
        .list(orphans.iter().cloned())
        .push(" AND i.created_at <= ")
        .bind(now - routing.not_registered_grace_ms)
        .push(")) AND (i.version IS NULL");
    if !names_of.is_empty() {
        sql.push(" OR (i.name, i.version) IN (VALUES ")
            .tuples(names_of.iter().zip(&versions), |(n, v)| {
                vec![n.clone().into(), v.clone().into()]
            })
            .push(")");
    }
    sql.push(
        " OR NOT EXISTS (SELECT 1 FROM registered_names r
                    WHERE r.kind = 'orchestration' AND r.name = i.name
                        AND r.version = i.version AND r.last_seen_at > ",
    )
    .bind(now - routing.unserved_grace_ms)
    .push("))");
    if let Some(ids) = only {
        sql.push(" AND q.instance_id IN ").list(ids.iter().cloned());
    }
    sql.push(" LIMIT ")
        .bind(*max as i64)
        .push(") RETURNING instance_id, execution_id, generation, name, created_at");
    // (instance_id, execution_id, generation, name, created_at)
    let claimed = sql.rows(db, |r| {
        Ok((
            r.string("instance_id")?,
            r.int("execution_id")?,
            r.int("generation")?,
            r.string("name")?,
            r.int("created_at")?,
        ))
    })?;
    if claimed.is_empty() {
        return Ok(vec![]);
    }
    let read_from: Vec<u64> = claimed
        .iter()
        .map(|(id, execution_id, ..)| known.read_from(id, *execution_id as u64))
        .collect();
    // One statement for every claimed instance's messages, one for histories.
    let mut sql =
        Sql::new("UPDATE orchestrator_queue SET deliveries = deliveries + 1 WHERE visible_at <= ");
    sql.bind(now)
        .push(" AND instance_id IN ")
        .list(claimed.iter().map(|c| c.0.clone()))
        .push(" RETURNING instance_id, seq, kind, data, deliveries");
    let mut messages: HashMap<String, Vec<Result<QueuedMessage>>> = HashMap::new();
    for (id, message) in sql.rows(db, |r| Ok((r.string("instance_id")?, queued_message(r))))? {
        messages.entry(id).or_default().push(message);
    }
    let mut sql = Sql::new("WITH c(instance_id, execution_id, from_id) AS (VALUES ");
    sql.tuples(
        claimed.iter().zip(&read_from),
        |((id, execution_id, ..), from)| {
            vec![
                id.clone().into(),
                (*execution_id).into(),
                (*from as i64).into(),
            ]
        },
    )
    .push(
        ") SELECT h.instance_id, h.event_id, h.ts, h.kind, h.data FROM c
        JOIN history h ON h.instance_id = c.instance_id AND h.execution_id = c.execution_id
            AND h.event_id >= c.from_id
        ORDER BY h.instance_id, h.event_id",
    );
    let mut histories: HashMap<String, Vec<Result<HistoryRow>>> = HashMap::new();
    for (id, row) in sql.rows(db, |r| Ok((r.string("instance_id")?, history_row(r))))? {
        histories.entry(id).or_default().push(row);
    }
    let mut parsed = Vec::with_capacity(claimed.len());
    for ((instance_id, execution_id, generation, name, created_at), history_from) in
        claimed.into_iter().zip(read_from)
    {
        let queued = messages
            .remove(&instance_id)
            .unwrap_or_default()
            .into_iter()
            .collect::<Result<Vec<_>>>()
            .map(|mut queued| {
                queued.sort_by_key(|m| m.seq);
                queued
            });
        let history = histories
            .remove(&instance_id)
            .unwrap_or_default()
            .into_iter()
            .collect::<Result<Vec<_>>>();
        parsed.push(Claimed {
            instance_id,
            execution_id,
            generation,
            name,
            created_at,
            now,
            messages: queued,
            history,
            history_from,
        });
    }
    let (items, unreadable) = sort_claimed(parsed);
    if !unreadable.is_empty() {
        let mut sql = Sql::new("UPDATE instances SET lock_until = ");
        sql.bind(now + UNREADABLE_RETRY_MS)
            .push(" WHERE instance_id IN ")
            .list(unreadable);
        sql.execute(db)?;
    }
    Ok(items)
}

pub(super) async fn claim_orchestrations(
    p: &SqliteProvider,
    claim: &OrchestrationClaim,
) -> Result<Vec<OrchestrationItem>> {
    let claim = claim.clone();
    let clock = p.clock.clone();
    p.write(move |db| claim_in(db, &claim, None, clock.now_ms()))
        .await
}

/// A JSON array of strings, for `json_each`.
pub(super) fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).expect("strings serialize")
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
    p.write(move |db| {
        let now = clock.now_ms();
        let released = execute(
            db,
            "UPDATE instances SET lock_owner = NULL, lock_until = 0 WHERE instance_id = ?1 AND generation = ?2",
            params![id, generation],
        )?;
        if released == 1 {
            // Messages that arrived after the claim were not delivered by it: the count
            // never goes below zero.
            execute(
                db,
                "UPDATE orchestrator_queue SET visible_at = MAX(visible_at, ?1),
                    deliveries = MAX(deliveries - ?2, 0)
                 WHERE instance_id = ?3 AND visible_at <= ?4",
                params![now + delay_ms, if count_delivery { 0 } else { 1 }, id, now],
            )?;
        }
        Ok(())
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
    p.write(move |db| {
        let until = clock.now_ms() + lease_ms;
        let mut lost = Vec::new();
        // A lease released by a commit, abandon or retry (lock_until = 0) is not held any
        // more: renewing it must not lock the row again.
        for lease in leases {
            let n = match &lease {
                Lease::Instance(id, generation) => execute(
                    db,
                    "UPDATE instances SET lock_until = ?1
                     WHERE instance_id = ?2 AND generation = ?3 AND lock_until > 0",
                    params![until, id, generation],
                )?,
                Lease::Activity(seq, generation) => execute(
                    db,
                    "UPDATE worker_queue SET lock_until = ?1
                     WHERE seq = ?2 AND generation = ?3 AND lock_until > 0",
                    params![until, seq, generation],
                )?,
            };
            if n == 0 {
                lost.push(lease);
            }
        }
        Ok(lost)
    })
    .await
}

pub(super) async fn next_due(p: &SqliteProvider) -> Result<Option<i64>> {
    let clock = p.clock.clone();
    p.write(move |db| {
        let now = clock.now_ms();
        let due = query_rows(
            db,
            "SELECT MIN(t) FROM (
                SELECT MIN(visible_at) AS t FROM orchestrator_queue WHERE visible_at > ?1
                UNION ALL SELECT MIN(visible_at) FROM worker_queue WHERE visible_at > ?1)",
            params![now],
            |r| Ok(r.get::<_, Option<i64>>(0)?),
        )?;
        Ok(due.into_iter().next().flatten())
    })
    .await
}
