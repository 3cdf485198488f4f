//! Activities: claiming them, recording their outcomes (and, in the same transaction,
//! claiming the instances those outcomes wake), retrying and abandoning them.

use std::collections::HashSet;

use rusqlite::params;

use super::claim::{claim_in, json_list};
use super::queue::{insert_messages, IDS_PER_STATEMENT};
use super::sql::{execute, query_rows, Sql};
use super::writer::Db;
use super::SqliteProvider;
use crate::store::rows::activity_item;
use crate::store::writes::QueueInsert;
use crate::store::{
    ActivityItem, ActivityResult, OrchestrationClaim, OrchestrationItem, Result, Routing,
};

/// Whether session `s` is held at `?1` (now): its owner is alive in the registry of
/// runtimes and the session is in use (claimed within the owner's idle timeout, or
/// something of it runs).
const SESSION_HELD: &str = "(EXISTS (SELECT 1 FROM runtimes r
        WHERE COALESCE(r.worker_node_id, r.runtime_id) = s.owner
            AND r.heartbeat_at >= ?1 - r.stale_after_ms)
    AND (s.last_used_at + s.idle_ms > ?1
        OR EXISTS (SELECT 1 FROM worker_queue x
            WHERE x.instance_id = s.instance_id AND x.session_id = s.session_id
                AND x.lock_until > ?1)))";

/// The claim rule for activities (docs/protocol.md, "The claim rule"), as the PostgreSQL
/// statement applies it: by name, tag and session; sessions acquired within the limit.
pub(super) async fn claim_activities(
    p: &SqliteProvider,
    owner: &str,
    lease_ms: i64,
    max: usize,
    routing: &Routing,
) -> Result<Vec<ActivityItem>> {
    let owner = owner.to_owned();
    let clock = p.clock.clone();
    let routing = routing.clone();
    p.write(move |db| {
        let now = clock.now_ms();
        let (any_tag, untagged, listed) = routing.tags.claim_params();
        let sessions = &routing.sessions;
        let candidates = query_rows(
            db,
            &format!(
                "SELECT w.seq, w.instance_id, w.session_id FROM worker_queue w
                 WHERE (w.name IN (SELECT value FROM json_each(?2))
                        OR (w.name IN (SELECT value FROM json_each(?8)) AND w.created_at <= ?9))
                    AND w.visible_at <= ?1 AND w.lock_until <= ?1
                    AND (?3 OR (w.tag IS NULL AND ?4) OR w.tag IN (SELECT value FROM json_each(?5)))
                    AND (w.session_id IS NULL OR NOT EXISTS (SELECT 1 FROM sessions s
                        WHERE s.instance_id = w.instance_id AND s.session_id = w.session_id
                            AND s.owner <> ?6 AND {SESSION_HELD}))
                 ORDER BY w.seq LIMIT ?7"
            ),
            params![
                now,
                json_list(&routing.activities),
                any_tag,
                untagged,
                json_list(&listed),
                sessions.owner,
                max as i64,
                json_list(&routing.orphans.activities),
                now - routing.not_registered_grace_ms
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            },
        )?;
        let granted = acquire_sessions(db, &routing, &candidates, now)?;
        let taken: Vec<i64> = candidates
            .iter()
            .filter(|(_, instance, session)| {
                session
                    .as_ref()
                    .is_none_or(|s| granted.contains(&(instance.clone(), s.clone())))
            })
            .map(|(seq, ..)| *seq)
            .collect();
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new("UPDATE worker_queue SET lock_owner = ");
        sql.bind(owner)
            .push(", lock_until = ")
            .bind(now + lease_ms)
            .push(", generation = generation + 1, deliveries = deliveries + 1 WHERE seq IN ")
            .list(taken)
            .push(" RETURNING *");
        let mut items = sql.rows(db, |r| activity_item(r))?;
        items.sort_by_key(|i| i.seq);
        Ok(items)
    })
    .await
}

/// Acquires (or keeps) for `routing.sessions.owner` the sessions of `candidates` it may
/// take: those it holds, and new ones while it holds fewer than its limit.
fn acquire_sessions(
    db: &Db,
    routing: &Routing,
    candidates: &[(i64, String, Option<String>)],
    now: i64,
) -> Result<HashSet<(String, String)>> {
    let mut granted = HashSet::new();
    let rule = &routing.sessions;
    let mut wanted: Vec<(String, String)> = candidates
        .iter()
        .filter_map(|(_, instance, session)| Some((instance.clone(), session.clone()?)))
        .collect();
    if wanted.is_empty() {
        return Ok(granted);
    }
    wanted.sort();
    wanted.dedup();
    let held: i64 = query_rows(
        db,
        &format!("SELECT COUNT(*) FROM sessions s WHERE s.owner = ?2 AND {SESSION_HELD}"),
        params![now, rule.owner],
        |r| Ok(r.get::<_, i64>(0)?),
    )?[0];
    let mut room = rule.max as i64 - held;
    for (instance, session) in wanted {
        let mine = !query_rows(
            db,
            "SELECT 1 FROM sessions WHERE instance_id = ?1 AND session_id = ?2 AND owner = ?3",
            params![instance, session, rule.owner],
            |_| Ok(()),
        )?
        .is_empty();
        if !mine && room <= 0 {
            continue;
        }
        let acquired = execute(
            db,
            &format!(
                "INSERT INTO sessions AS s (instance_id, session_id, owner, last_used_at, idle_ms)
                 VALUES (?2, ?3, ?4, ?1, ?5)
                 ON CONFLICT (instance_id, session_id) DO UPDATE
                    SET owner = excluded.owner, last_used_at = excluded.last_used_at,
                        idle_ms = excluded.idle_ms
                    WHERE s.owner = excluded.owner OR NOT {SESSION_HELD}"
            ),
            params![now, instance, session, rule.owner, rule.idle_ms],
        )?;
        if acquired == 1 {
            if !mine {
                room -= 1;
            }
            granted.insert((instance, session));
        }
    }
    Ok(granted)
}

pub(super) async fn complete_activities(
    p: &SqliteProvider,
    outcomes: Vec<(ActivityItem, ActivityResult)>,
) -> Result<Vec<bool>> {
    Ok(settle_and_claim(p, outcomes, None).await?.0)
}

pub(super) async fn complete_activities_and_claim(
    p: &SqliteProvider,
    outcomes: Vec<(ActivityItem, ActivityResult)>,
    claim: &OrchestrationClaim,
) -> Result<(Vec<bool>, Vec<OrchestrationItem>)> {
    settle_and_claim(p, outcomes, Some(claim.clone())).await
}

/// Records activity outcomes (each fenced by its row's generation) and, with `claim`,
/// claims the instances they woke in the same transaction.
async fn settle_and_claim(
    p: &SqliteProvider,
    outcomes: Vec<(ActivityItem, ActivityResult)>,
    claim: Option<OrchestrationClaim>,
) -> Result<(Vec<bool>, Vec<OrchestrationItem>)> {
    if outcomes.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let rows: Vec<(i64, i64, QueueInsert)> = outcomes
        .into_iter()
        .map(|(item, result)| {
            let message = result.message(&item);
            let row = QueueInsert {
                instance_id: item.instance_id,
                message,
                visible_at: 0,
            };
            (item.seq, item.generation, row)
        })
        .collect();
    let clock = p.clock.clone();
    let (recorded, claimed) = p
        .write(move |db| {
            // Fenced by each row's generation: a lost lease or a cancelled activity records
            // nothing.
            let mut deleted: HashSet<i64> = HashSet::new();
            for chunk in rows.chunks(IDS_PER_STATEMENT / 2) {
                let mut sql =
                    Sql::new("DELETE FROM worker_queue WHERE (seq, generation) IN (VALUES ");
                sql.tuples(chunk, |(seq, generation, _)| {
                    vec![(*seq).into(), (*generation).into()]
                })
                .push(") RETURNING seq");
                deleted.extend(sql.rows(db, |r| Ok(r.get::<_, i64>(0)?))?);
            }
            let now = clock.now_ms();
            let mut recorded = Vec::with_capacity(rows.len());
            let mut queue = Vec::new();
            for (seq, _, mut row) in rows {
                let done = deleted.contains(&seq);
                if done {
                    row.visible_at = now;
                    queue.push(row);
                }
                recorded.push(done);
            }
            insert_messages(db, &queue)?;
            let claimed = match claim {
                Some(c) => {
                    let mut woken: Vec<String> = queue.into_iter().map(|r| r.instance_id).collect();
                    woken.sort();
                    woken.dedup();
                    claim_in(db, &c, Some(&woken), now)?
                }
                None => Vec::new(),
            };
            Ok((recorded, claimed))
        })
        .await?;
    // Woken instances this call did not claim are for the dispatcher.
    if recorded.iter().filter(|r| **r).count() > claimed.len() {
        p.wakers.orchestrations.notify_one();
    }
    Ok((recorded, claimed))
}

pub(super) async fn retry_activity(
    p: &SqliteProvider,
    item: &ActivityItem,
    visible_at: i64,
    next_attempt: u32,
) -> Result<bool> {
    let (seq, generation) = (item.seq, item.generation);
    let updated = p
        .write(move |db| {
            Ok(execute(
                db,
                "UPDATE worker_queue SET visible_at = ?1, attempt = ?2, lock_owner = NULL, lock_until = 0,
                    deliveries = 0
                 WHERE seq = ?3 AND generation = ?4",
                params![visible_at, next_attempt as i64, seq, generation],
            )? == 1)
        })
        .await?;
    p.wakers.activities.notify_one();
    Ok(updated)
}

pub(super) async fn abandon_activity(
    p: &SqliteProvider,
    item: &ActivityItem,
    delay_ms: i64,
) -> Result<()> {
    let (seq, generation) = (item.seq, item.generation);
    let clock = p.clock.clone();
    p.write(move |db| {
        execute(
            db,
            "UPDATE worker_queue SET lock_owner = NULL, lock_until = 0, visible_at = ?1
             WHERE seq = ?2 AND generation = ?3",
            params![clock.now_ms() + delay_ms, seq, generation],
        )?;
        Ok(())
    })
    .await?;
    p.wakers.activities.notify_one();
    Ok(())
}
