//! Claims and leases: claiming instances with visible messages, giving a claim back,
//! renewing leases, and when queued work next becomes due.

use std::collections::{HashMap, HashSet};

use sqlx::postgres::PgRow;

use super::notify::Change;
use super::PostgresProvider;
use crate::engine::HistoryRow;
use crate::store::rows::{
    history_row, last_history_row, queued_message, sort_claimed, Claimed, Columns,
    UNREADABLE_RETRY_MS,
};
use crate::store::{KnownHistories, Lease, OrchestrationClaim, OrchestrationItem, Result, Routing};

/// A string constant for a statement, quoted so that nothing in it is special.
pub(super) fn literal(value: &str) -> String {
    format!("E'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// `ARRAY[…]::text[]` of these values, as constants.
pub(super) fn text_array(values: &[String]) -> String {
    let items: Vec<String> = values.iter().map(|v| literal(v)).collect();
    format!("ARRAY[{}]::text[]", items.join(", "))
}

/// The claim rule for an instance `i` (docs/protocol.md, "The claim rule"): its name is
/// one of the claimer's, or an orphan's once the instance is older than the not-registered
/// grace period; its version, once fixed, is one of the claimer's or one no runtime has had
/// within the unserved grace period (then the claimer fails it as not registered).
///
/// The claimer's names are written into the statement as constants: its plan, made once
/// per connection and kept, is then made for those names, with their statistics (a
/// parameter would be planned as any name, and a name with 100,000 waiting rows would make
/// every claim scan them).
pub(super) fn claimable_instance(r: &Routing) -> String {
    let own: Vec<String> = r.orchestrations.iter().map(|(n, _)| n.clone()).collect();
    let (names_of, versions) = r.orchestration_versions();
    format!(
        "(i.name = ANY({own})
            OR (i.name = ANY({orphans}) AND i.created_at <= reprise_now_ms() - {age}))
        AND (i.version IS NULL
            OR (i.name, i.version) IN (SELECT * FROM UNNEST({names_of}, {versions}))
            OR NOT EXISTS (SELECT 1 FROM registered_names r
                WHERE r.kind = 'orchestration' AND r.name = i.name AND r.version = i.version
                    AND r.last_seen_at > reprise_now_ms() - {unserved}))",
        own = text_array(&own),
        orphans = text_array(&r.orphans.orchestrations),
        age = r.not_registered_grace_ms,
        names_of = text_array(&names_of),
        versions = text_array(&versions),
        unserved = r.unserved_grace_ms,
    )
}

/// The unleased instances with visible messages of the claimer's names (or of no name
/// yet), oldest message first: one ordered index range per name (each name a constant, so
/// it is planned with its own statistics), read only as far as needed, so that the rows
/// of other names are never read and the backlog of instances being worked on does not
/// hide the others.
fn due_messages(r: &Routing) -> String {
    let names = r
        .orchestrations
        .iter()
        .map(|(n, _)| n)
        .chain(&r.orphans.orchestrations);
    let mut ranges: Vec<String> = names
        .map(|name| format!("q.name = {}", literal(name)))
        .collect();
    ranges.push("q.name IS NULL".to_owned());
    ranges
        .iter()
        .map(|name| {
            format!(
                "(SELECT q.instance_id FROM orchestrator_queue q
                JOIN instances l ON l.instance_id = q.instance_id
                WHERE {name} AND q.visible_at <= reprise_now_ms()
                    AND l.lock_until <= reprise_now_ms()
                ORDER BY q.visible_at LIMIT 1024)"
            )
        })
        .collect::<Vec<_>>()
        .join("\n            UNION ALL ")
}

/// The claim statement for `r`: `$1` owner, `$2` lease, `$3` most instances.
fn claim_sql(r: &Routing) -> String {
    format!(
        "WITH due AS (
            {due}
        ), candidates AS (
            SELECT i.instance_id, i.lock_owner AS previous_owner FROM instances i
            WHERE i.instance_id IN (SELECT instance_id FROM due)
                AND i.lock_until <= reprise_now_ms()
                AND {claimable}
            LIMIT $3
            FOR UPDATE OF i SKIP LOCKED
        ), claimed AS (
            UPDATE instances i SET lock_owner = $1, lock_until = reprise_now_ms() + $2,
                generation = i.generation + 1
            FROM candidates c WHERE i.instance_id = c.instance_id
            RETURNING i.instance_id, i.execution_id, i.generation, i.name, i.created_at,
                c.previous_owner
        ), delivered AS (
            UPDATE orchestrator_queue q SET deliveries = q.deliveries + 1
            FROM claimed c
            WHERE q.instance_id = c.instance_id AND q.visible_at <= reprise_now_ms()
            RETURNING q.instance_id, q.seq, q.kind, q.data, q.deliveries
        )
        SELECT c.instance_id, c.execution_id, c.generation, c.name, c.created_at,
            c.previous_owner, reprise_now_ms() AS now, m.seq, m.kind, m.data, m.deliveries,
            l.event_id AS last_event_id, l.ts AS last_ts, l.kind AS last_kind,
            l.data AS last_data
        FROM claimed c LEFT JOIN delivered m ON m.instance_id = c.instance_id
        LEFT JOIN LATERAL (
            SELECT h.event_id, h.ts, h.kind, h.data FROM history h
            WHERE h.instance_id = c.instance_id AND h.execution_id = c.execution_id
            ORDER BY h.event_id DESC LIMIT 1
        ) l ON true
        ORDER BY c.instance_id, m.seq",
        due = due_messages(r),
        claimable = claimable_instance(r),
    )
}

pub(super) async fn claim_orchestrations(
    p: &PostgresProvider,
    claim: &OrchestrationClaim,
) -> Result<Vec<OrchestrationItem>> {
    // One statement claims the instances (lease + generation), delivers their visible
    // messages and reads each one's last event; a second reads the histories the claimer
    // does not hold yet (none when it holds them all, or they are empty). The candidates
    // come from the queue's (name, visible_at) index, so rows of names the claimer lacks
    // cost nothing; rows without a name (queued before their instance existed) are
    // checked against the instance's.
    let sql = claim_sql(&claim.routing);
    let rows = sqlx::query(&sql)
        .bind(&claim.owner)
        .bind(claim.lease_ms)
        .bind(claim.max as i64)
        .fetch_all(&mut *p.pool.conn().await?)
        .await?;
    claimed_items(p, &claim.owner, &rows, &claim.known).await
}

/// The claimed instances of a claim statement's rows: one row per claimed instance and
/// delivered message (`instance_id` … `now`, `seq` … `deliveries`, `last_*`; rows without
/// an `instance_id` are skipped), with the histories the claimer does not hold read in
/// a second statement.
pub(super) async fn claimed_items(
    p: &PostgresProvider,
    owner: &str,
    rows: &[PgRow],
    known: &KnownHistories,
) -> Result<Vec<OrchestrationItem>> {
    let mut claimed: Vec<Claimed> = Vec::new();
    // Per claimed instance: its last event, when there is one.
    let mut last_events: HashMap<String, HistoryRow> = HashMap::new();
    for row in rows {
        let Some(instance_id) = row.opt_string("instance_id")? else {
            continue;
        };
        if claimed.last().map(|c| &c.instance_id) != Some(&instance_id) {
            log_takeover("instance", &instance_id, owner, row)?;
            // An unreadable last event sets the instance aside like any unreadable row.
            let history = last_history_row(row).map(|last| {
                if let Some(last) = last {
                    last_events.insert(instance_id.clone(), last);
                }
                vec![]
            });
            claimed.push(Claimed {
                instance_id,
                execution_id: row.int("execution_id")?,
                generation: row.int("generation")?,
                name: row.string("name")?,
                created_at: row.int("created_at")?,
                now: row.int("now")?,
                messages: Ok(vec![]),
                history,
                history_from: 1,
            });
        }
        let entry = claimed.last_mut().expect("just pushed");
        // An instance whose messages were all consumed meanwhile joins no message row.
        if sqlx::Row::try_get::<Option<i64>, _>(row, "seq")?.is_none() {
            continue;
        }
        let parsed = queued_message(row);
        if let Ok(messages) = &mut entry.messages {
            match parsed {
                Ok(message) => messages.push(message),
                Err(e) => entry.messages = Err(e),
            }
        }
    }
    // A concurrent commit may have consumed an instance's messages between the
    // candidate scan and the lock: nothing to deliver, release it.
    let (empty, mut claimed): (Vec<Claimed>, Vec<Claimed>) = claimed
        .into_iter()
        .partition(|c| matches!(&c.messages, Ok(m) if m.is_empty()));
    if !empty.is_empty() {
        let claims: Vec<(String, i64)> = empty
            .into_iter()
            .map(|c| (c.instance_id, c.generation))
            .collect();
        release_claims(p, &claims).await?;
    }
    if claimed.is_empty() {
        return Ok(vec![]);
    }

    // What needs reading: not an empty history, nor a known one whose last event is the
    // known one (that event is the whole tail).
    let mut to_read = Vec::new();
    for c in &mut claimed {
        c.history_from = known.read_from(&c.instance_id, c.execution_id as u64);
        if c.history.is_err() {
            continue;
        }
        match last_events.remove(&c.instance_id) {
            None => c.history = Ok(vec![]),
            Some(last) if last.event_id == c.history_from && c.history_from > 1 => {
                c.history = Ok(vec![last])
            }
            Some(_) => to_read.push((c.instance_id.clone(), c.execution_id, c.history_from)),
        }
    }
    if !to_read.is_empty() {
        let histories = sqlx::query(
            "SELECT h.instance_id, h.event_id, h.ts, h.kind, h.data
             FROM history h
             JOIN UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS c(instance_id, execution_id, from_id)
                 ON h.instance_id = c.instance_id AND h.execution_id = c.execution_id
                    AND h.event_id >= c.from_id
             ORDER BY h.instance_id, h.event_id",
        )
        .bind(to_read.iter().map(|r| r.0.clone()).collect::<Vec<_>>())
        .bind(to_read.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(to_read.iter().map(|r| r.2 as i64).collect::<Vec<_>>())
        .fetch_all(&mut *p.pool.conn().await?)
        .await;
        let histories = match histories {
            Ok(rows) => rows,
            Err(e) => {
                // Give the claims back rather than leave them locked for a whole lease.
                let claims: Vec<(String, i64)> = claimed
                    .iter()
                    .map(|c| (c.instance_id.clone(), c.generation))
                    .collect();
                if let Err(release) = release_claims(p, &claims).await {
                    tracing::warn!(error = %release, "could not release claims after a failed history read");
                }
                return Err(e.into());
            }
        };
        let mut by_instance: HashMap<String, Vec<PgRow>> = HashMap::new();
        for row in histories {
            by_instance
                .entry(row.string("instance_id")?)
                .or_default()
                .push(row);
        }
        for c in &mut claimed {
            if let Some(rows) = by_instance.remove(&c.instance_id) {
                c.history = rows.iter().map(history_row).collect::<Result<Vec<_>>>();
            } else if to_read.iter().any(|r| r.0 == c.instance_id) {
                // Shortened under the claimer (a rewind): nothing from the known position on.
                c.history = Ok(vec![]);
            }
        }
    }
    let (items, unreadable) = sort_claimed(claimed);
    if !unreadable.is_empty() {
        sqlx::query(
            "UPDATE instances SET lock_until = reprise_now_ms() + $2 WHERE instance_id = ANY($1)",
        )
        .bind(&unreadable)
        .bind(UNREADABLE_RETRY_MS)
        .execute(&mut *p.pool.conn().await?)
        .await?;
    }
    Ok(items)
}

/// Releases claimed instances (each under its claim's generation), giving back the claim's
/// delivery of their visible messages.
async fn release_claims(p: &PostgresProvider, claims: &[(String, i64)]) -> Result<()> {
    if claims.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH released AS (
            UPDATE instances i SET lock_owner = NULL, lock_until = 0
            FROM UNNEST($1::text[], $2::bigint[]) AS r(instance_id, generation)
            WHERE i.instance_id = r.instance_id AND i.generation = r.generation
            RETURNING i.instance_id
        )
        UPDATE orchestrator_queue q SET deliveries = GREATEST(q.deliveries - 1, 0)
        FROM released WHERE q.instance_id = released.instance_id
            AND q.visible_at <= reprise_now_ms()",
    )
    .bind(claims.iter().map(|c| c.0.clone()).collect::<Vec<_>>())
    .bind(claims.iter().map(|c| c.1).collect::<Vec<_>>())
    .execute(&mut *p.pool.conn().await?)
    .await?;
    Ok(())
}

pub(super) async fn abandon_orchestration(
    p: &PostgresProvider,
    instance_id: &str,
    generation: i64,
    delay_ms: i64,
    count_delivery: bool,
) -> Result<()> {
    // Messages that arrived after the claim were not delivered by it: the count never
    // goes below zero.
    sqlx::query(
        "WITH released AS (
            UPDATE instances SET lock_owner = NULL, lock_until = 0
            WHERE instance_id = $1 AND generation = $2
            RETURNING instance_id
        )
        UPDATE orchestrator_queue q
        SET visible_at = GREATEST(q.visible_at, reprise_now_ms() + $3),
            deliveries = GREATEST(q.deliveries - $4, 0)
        FROM released
        WHERE q.instance_id = released.instance_id AND q.visible_at <= reprise_now_ms()",
    )
    .bind(instance_id)
    .bind(generation)
    .bind(delay_ms)
    .bind(if count_delivery { 0i32 } else { 1i32 })
    .execute(&mut *p.pool.conn().await?)
    .await?;
    let change = Change {
        orchestrations: true,
        ..Default::default()
    };
    p.signal(change, false).await;
    Ok(())
}

pub(super) async fn renew_leases(
    p: &PostgresProvider,
    leases: &[Lease],
    lease_ms: i64,
) -> Result<Vec<Lease>> {
    if leases.is_empty() {
        return Ok(vec![]);
    }
    let (mut ids, mut id_gens, mut seqs, mut seq_gens) = (vec![], vec![], vec![], vec![]);
    for lease in leases {
        match lease {
            Lease::Instance(id, generation) => {
                ids.push(id.clone());
                id_gens.push(*generation);
            }
            Lease::Activity(seq, generation) => {
                seqs.push(*seq);
                seq_gens.push(*generation);
            }
        }
    }
    // A lease released by a commit, abandon or retry (lock_until = 0) is not held any
    // more: renewing it must not lock the row again. Rows are locked in key order (as
    // recording activity results locks them) so the two never deadlock.
    let rows = sqlx::query(
        "WITH instance_rows AS (
            SELECT i.instance_id FROM instances i
            JOIN UNNEST($2::text[], $3::bigint[]) AS l(instance_id, generation)
                ON i.instance_id = l.instance_id AND i.generation = l.generation
            WHERE i.lock_until > 0
            ORDER BY i.instance_id FOR UPDATE OF i
        ), held_instances AS (
            UPDATE instances i SET lock_until = reprise_now_ms() + $1
            FROM instance_rows l WHERE i.instance_id = l.instance_id
            RETURNING i.instance_id, i.generation
        ), activity_rows AS (
            SELECT w.seq FROM worker_queue w
            JOIN UNNEST($4::bigint[], $5::bigint[]) AS l(seq, generation)
                ON w.seq = l.seq AND w.generation = l.generation
            WHERE w.lock_until > 0
            ORDER BY w.seq FOR UPDATE OF w
        ), held_activities AS (
            UPDATE worker_queue w SET lock_until = reprise_now_ms() + $1
            FROM activity_rows l WHERE w.seq = l.seq
            RETURNING w.seq, w.generation
        )
        SELECT instance_id, NULL::bigint AS seq, generation FROM held_instances
        UNION ALL
        SELECT NULL::text, seq, generation FROM held_activities",
    )
    .bind(lease_ms)
    .bind(ids)
    .bind(id_gens)
    .bind(seqs)
    .bind(seq_gens)
    .fetch_all(&mut *p.pool.conn().await?)
    .await?;
    let mut held = HashSet::new();
    for row in rows {
        let generation = row.int("generation")?;
        match row.opt_string("instance_id")? {
            Some(id) => held.insert(Lease::Instance(id, generation)),
            None => held.insert(Lease::Activity(row.int("seq")?, generation)),
        };
    }
    Ok(leases
        .iter()
        .filter(|l| !held.contains(*l))
        .cloned()
        .collect())
}

pub(super) async fn next_due(p: &PostgresProvider) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT LEAST(
            (SELECT MIN(visible_at) FROM orchestrator_queue WHERE visible_at > reprise_now_ms()),
            (SELECT MIN(visible_at) FROM worker_queue WHERE visible_at > reprise_now_ms()))",
    )
    .fetch_one(&mut *p.pool.conn().await?)
    .await?)
}

/// A claim that finds another runtime's name on the row took over a lease that ran out:
/// its holder died, stalled or was cut off from the database.
pub(super) fn log_takeover(what: &str, id: &str, owner: &str, row: &PgRow) -> Result<()> {
    let previous: Option<String> = sqlx::Row::try_get(row, "previous_owner")?;
    if let Some(previous) = previous.filter(|p| p != owner) {
        tracing::info!(
            %id,
            previous_owner = %previous,
            "lease takeover: claimed {what} {id} whose lease held by {previous} ran out"
        );
    }
    Ok(())
}
