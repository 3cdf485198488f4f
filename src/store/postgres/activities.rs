//! Activities: claiming them, recording their outcomes (and, in the same statement,
//! claiming the instances those outcomes wake), retrying and abandoning them.

use std::collections::HashSet;

use super::claim;
use super::notify::Change;
use super::PostgresProvider;
use crate::engine::message_data;
use crate::store::rows::activity_item;
use crate::store::{
    ActivityItem, ActivityResult, OrchestrationClaim, OrchestrationItem, Result, Routing,
};

/// Whether session `s` is held: its owner is alive in the registry of runtimes and the
/// session is in use (claimed within the owner's idle timeout, or something of it runs).
const SESSION_HELD: &str = "(EXISTS (SELECT 1 FROM runtimes r
        WHERE COALESCE(r.worker_node_id, r.runtime_id) = s.owner
            AND r.heartbeat_at >= reprise_now_ms() - r.stale_after_ms)
    AND (s.last_used_at + s.idle_ms > reprise_now_ms()
        OR EXISTS (SELECT 1 FROM worker_queue x
            WHERE x.instance_id = s.instance_id AND x.session_id = s.session_id
                AND x.lock_until > reprise_now_ms())))";

/// The claim rule for activities (docs/protocol.md, "The claim rule"): `$4`–`$6` the tag
/// filter, `$7` the session owner, `$8` the most sessions it may hold, `$9` its idle
/// timeout. The names (the claimer's, and the orphans', taken once older than the
/// not-registered grace period) are constants, as for instances
/// ([`claim::claimable_instance`]): each is read from the (name, visible_at) index. A
/// session held by another live worker keeps its rows out; the claimer acquires (or keeps)
/// the sessions of the rest within its limit, and takes the rows of those it got.
fn claim_sql(r: &Routing) -> String {
    // One ordered index range per name (a constant: planned with its own statistics), read
    // only as far as needed: rows of other names are never read, and running activities do
    // not hide waiting ones.
    let due = r
        .activities
        .iter()
        .chain(&r.orphans.activities)
        .map(|name| {
            format!(
                "(SELECT w.seq FROM worker_queue w
                WHERE w.name = {} AND w.visible_at <= reprise_now_ms()
                    AND w.lock_until <= reprise_now_ms()
                ORDER BY w.visible_at LIMIT 1024)",
                claim::literal(name)
            )
        })
        .chain(std::iter::once(
            "(SELECT NULL::bigint AS seq WHERE false)".to_owned(),
        ))
        .collect::<Vec<_>>()
        .join("\n            UNION ALL ");
    format!(
        "WITH due AS (
            {due}
        ), candidates AS (
            SELECT w.seq, w.instance_id, w.session_id, w.lock_owner AS previous_owner
            FROM worker_queue w
            WHERE w.seq IN (SELECT seq FROM due)
                AND (w.name = ANY({own})
                    OR (w.name = ANY({orphans}) AND w.created_at <= reprise_now_ms() - {age}))
                AND w.visible_at <= reprise_now_ms()
                AND w.lock_until <= reprise_now_ms()
                AND ($4 OR (w.tag IS NULL AND $5) OR w.tag = ANY($6))
                AND (w.session_id IS NULL OR NOT EXISTS (
                    SELECT 1 FROM sessions s
                    WHERE s.instance_id = w.instance_id AND s.session_id = w.session_id
                        AND s.owner <> $7 AND {held}))
            ORDER BY w.seq LIMIT $3
            FOR UPDATE OF w SKIP LOCKED
        ), wanted AS (
            SELECT c.instance_id, c.session_id, EXISTS (SELECT 1 FROM sessions s
                WHERE s.instance_id = c.instance_id AND s.session_id = c.session_id
                    AND s.owner = $7) AS mine
            FROM (SELECT DISTINCT instance_id, session_id FROM candidates
                WHERE session_id IS NOT NULL) c
        ), granted AS (
            SELECT instance_id, session_id FROM (
                SELECT wanted.*, row_number() OVER (PARTITION BY mine
                    ORDER BY instance_id, session_id) AS k
                FROM wanted) ranked
            WHERE mine OR k <= $8 - (SELECT COUNT(*) FROM sessions s
                WHERE s.owner = $7 AND {held})
        ), acquired AS (
            INSERT INTO sessions AS s (instance_id, session_id, owner, last_used_at, idle_ms)
            SELECT instance_id, session_id, $7, reprise_now_ms(), $9 FROM granted
            ORDER BY instance_id, session_id
            ON CONFLICT (instance_id, session_id) DO UPDATE
                SET owner = EXCLUDED.owner, last_used_at = EXCLUDED.last_used_at,
                    idle_ms = EXCLUDED.idle_ms
                WHERE s.owner = EXCLUDED.owner OR NOT {held}
            RETURNING s.instance_id, s.session_id
        ), taken AS (
            SELECT c.seq, c.previous_owner FROM candidates c
            WHERE c.session_id IS NULL OR EXISTS (SELECT 1 FROM acquired a
                WHERE a.instance_id = c.instance_id AND a.session_id = c.session_id)
        )
        UPDATE worker_queue w SET lock_owner = $1, lock_until = reprise_now_ms() + $2,
            generation = w.generation + 1, deliveries = w.deliveries + 1
        FROM taken c WHERE w.seq = c.seq
        RETURNING w.seq, w.generation, w.instance_id, w.execution_id, w.task, w.name,
            w.input, w.attempt, w.retry, w.deliveries, w.created_at, w.orchestration_name,
            w.orchestration_version, w.session_id, w.tag, c.previous_owner",
        held = SESSION_HELD,
        own = claim::text_array(&r.activities),
        orphans = claim::text_array(&r.orphans.activities),
        age = r.not_registered_grace_ms,
    )
}

pub(super) async fn claim_activities(
    p: &PostgresProvider,
    owner: &str,
    lease_ms: i64,
    max: usize,
    routing: &Routing,
) -> Result<Vec<ActivityItem>> {
    let (any_tag, untagged, listed) = routing.tags.claim_params();
    let sql = claim_sql(routing);
    let rows = sqlx::query(&sql)
        .bind(owner)
        .bind(lease_ms)
        .bind(max as i64)
        .bind(any_tag)
        .bind(untagged)
        .bind(listed)
        .bind(&routing.sessions.owner)
        .bind(routing.sessions.max as i64)
        .bind(routing.sessions.idle_ms)
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

/// The statement that records activity outcomes and claims the instances they woke.
///
/// `$1`–`$4`: the outcomes (seq, generation, message kind, data); `$5`: how many woken
/// instances to claim (0: none); `$6`, `$7`: the claimer and its lease. Each outcome is
/// fenced by its row's generation; rows are locked in seq order, as renewals lock them, so
/// a renewal racing a batch that holds some of its rows waits instead of deadlocking. The
/// messages are queued in the batch's order, already delivered (`deliveries` 1) to the
/// instances the statement claims, which also get their other visible messages. Every row
/// carries the recorded seqs; the claim's columns are those of the claim statement
/// (`claim::claimed_items`), NULL on the one row there is when nothing was claimed.
fn complete_sql(routing: &Routing) -> String {
    format!(
        "WITH d AS (
        SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[])
            WITH ORDINALITY AS d(seq, generation, kind, data, n)
    ), locked AS (
        SELECT w.seq FROM worker_queue w JOIN d ON w.seq = d.seq AND w.generation = d.generation
        ORDER BY w.seq FOR UPDATE OF w
    ), done AS (
        DELETE FROM worker_queue w USING locked
        WHERE w.seq = locked.seq
        RETURNING w.seq, w.instance_id, w.execution_id, w.task, w.orchestration_name
    ), candidates AS (
        SELECT i.instance_id, i.lock_owner AS previous_owner FROM instances i
        WHERE i.instance_id IN (SELECT instance_id FROM done)
            AND i.lock_until <= reprise_now_ms()
            AND {claimable}
        ORDER BY i.instance_id
        LIMIT $5
        FOR UPDATE OF i SKIP LOCKED
    ), claimed AS (
        UPDATE instances i SET lock_owner = $6, lock_until = reprise_now_ms() + $7,
            generation = i.generation + 1
        FROM candidates c WHERE i.instance_id = c.instance_id
        RETURNING i.instance_id, i.execution_id, i.generation, i.name, i.created_at,
            c.previous_owner
    ), queued AS (
        INSERT INTO orchestrator_queue (instance_id, kind, execution_id, task, visible_at, data,
            deliveries, name)
        SELECT done.instance_id, d.kind, done.execution_id, done.task, reprise_now_ms(), d.data,
            CASE WHEN EXISTS (SELECT 1 FROM claimed c WHERE c.instance_id = done.instance_id)
                THEN 1 ELSE 0 END,
            COALESCE(NULLIF(done.orchestration_name, ''), (SELECT i.name FROM instances i
                WHERE i.instance_id = done.instance_id))
        FROM done JOIN d ON d.seq = done.seq
        ORDER BY d.n
        RETURNING instance_id, seq, kind, data, deliveries
    ), delivered AS (
        UPDATE orchestrator_queue q SET deliveries = q.deliveries + 1
        FROM claimed c
        WHERE q.instance_id = c.instance_id AND q.visible_at <= reprise_now_ms()
        RETURNING q.instance_id, q.seq, q.kind, q.data, q.deliveries
    ), messages AS (
        SELECT * FROM delivered
        UNION ALL SELECT * FROM queued WHERE deliveries = 1
    )
    SELECT (SELECT array_agg(seq) FROM done) AS recorded, r.*
    FROM (SELECT 1) AS one LEFT JOIN (
        SELECT c.instance_id, c.execution_id, c.generation, c.name, c.created_at,
            c.previous_owner, reprise_now_ms() AS now, m.seq, m.kind, m.data, m.deliveries,
            l.event_id AS last_event_id, l.ts AS last_ts, l.kind AS last_kind,
            l.data AS last_data
        FROM claimed c LEFT JOIN messages m ON m.instance_id = c.instance_id
        LEFT JOIN LATERAL (
            SELECT h.event_id, h.ts, h.kind, h.data FROM history h
            WHERE h.instance_id = c.instance_id AND h.execution_id = c.execution_id
            ORDER BY h.event_id DESC LIMIT 1
        ) l ON true
    ) r ON true
    ORDER BY r.instance_id, r.seq",
        claimable = claim::claimable_instance(routing)
    )
}

/// Records activity outcomes and, with `claim`, claims (up to `claim.max`) the instances
/// they woke, in one statement.
pub(super) async fn complete_activities(
    p: &PostgresProvider,
    outcomes: Vec<(ActivityItem, ActivityResult)>,
    claim: Option<&OrchestrationClaim>,
) -> Result<(Vec<bool>, Vec<OrchestrationItem>)> {
    if outcomes.is_empty() {
        return Ok((Vec::new(), Vec::new()));
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
    let default = Routing::default();
    let sql = complete_sql(claim.map_or(&default, |c| &*c.routing));
    let rows = sqlx::query(&sql)
        .bind(&seqs)
        .bind(&generations)
        .bind(&kinds)
        .bind(&data)
        .bind(claim.map_or(0, |c| c.max as i64))
        .bind(claim.map(|c| c.owner.as_str()))
        .bind(claim.map_or(0, |c| c.lease_ms))
        .fetch_all(&mut *p.pool.conn().await?)
        .await?;
    let deleted: HashSet<i64> = match rows.first() {
        Some(row) => sqlx::Row::try_get::<Option<Vec<i64>>, _>(row, "recorded")?
            .unwrap_or_default()
            .into_iter()
            .collect(),
        None => HashSet::new(),
    };
    let recorded: Vec<bool> = seqs.iter().map(|s| deleted.contains(s)).collect();
    let claimed = match claim {
        Some(c) => claim::claimed_items(p, &c.owner, &rows, &c.known).await?,
        None => Vec::new(),
    };
    // Instances woken and not claimed here are for a dispatcher, here or elsewhere.
    if deleted.len() > claimed.len() {
        let change = Change {
            orchestrations: true,
            ..Default::default()
        };
        p.signal(change, false).await;
    }
    Ok((recorded, claimed))
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
