//! Activities: claiming them, recording their outcomes (and, in the same transaction,
//! claiming the instances those outcomes wake), retrying and abandoning them.

use std::collections::HashSet;

use rusqlite::params;

use super::claim::claim_in;
use super::queue::{insert_messages, IDS_PER_STATEMENT};
use super::sql::{execute, query_rows, Sql};
use super::SqliteProvider;
use crate::store::rows::activity_item;
use crate::store::writes::QueueInsert;
use crate::store::{
    ActivityItem, ActivityResult, OrchestrationClaim, OrchestrationItem, Result, TagFilter,
};

pub(super) async fn claim_activities(
    p: &SqliteProvider,
    owner: &str,
    lease_ms: i64,
    max: usize,
    tags: &TagFilter,
) -> Result<Vec<ActivityItem>> {
    let owner = owner.to_owned();
    let clock = p.clock.clone();
    let (any_tag, untagged, listed) = tags.claim_params();
    let listed = serde_json::to_string(&listed).expect("strings serialize");
    p.write(move |db| {
        let now = clock.now_ms();
        let mut items = query_rows(
            db,
            "UPDATE worker_queue SET lock_owner = ?1, lock_until = ?2, generation = generation + 1,
                deliveries = deliveries + 1
             WHERE seq IN (
                SELECT seq FROM worker_queue WHERE visible_at <= ?3 AND lock_until <= ?3
                    AND (?5 OR (tag IS NULL AND ?6) OR tag IN (SELECT value FROM json_each(?7)))
                ORDER BY seq LIMIT ?4)
             RETURNING *",
            params![
                owner,
                now + lease_ms,
                now,
                max as i64,
                any_tag,
                untagged,
                listed
            ],
            |r| activity_item(r),
        )?;
        items.sort_by_key(|i| i.seq);
        Ok(items)
    })
    .await
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
                    claim_in(db, &c.owner, c.lease_ms, c.max, Some(&woken), &c.known, now)?
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
