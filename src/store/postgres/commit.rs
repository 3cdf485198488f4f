//! Committing a turn. Everything but the creation of child instances is one statement (one
//! round trip, atomic on its own): every write in it is gated on the fencing update, so
//! nothing is written unless this generation still holds the instance. Such turns are
//! committed together with the others finishing at the same moment (`group_commit`). A
//! turn that starts instances runs inside a transaction with a second statement for them.

use std::collections::HashSet;

use sqlx::postgres::{PgArguments, PgConnection};
use sqlx::query::Query;
use sqlx::Postgres;

use tokio::sync::oneshot;

use super::group_commit::{commit_one, PendingTurn};
use super::notify::Change;
use super::queue::{ActivityRows, QueueRows};
use super::PostgresProvider;
use crate::engine::{event_data, message_data, KvWrite, StartRequest};
use crate::store::rows::Columns;
use crate::store::writes::{child_id_taken, start_message, turn_messages, TurnWakes};
use crate::store::{
    directly_claimed, ActivityItem, InstanceUpdate, Result, StoreError, TurnCommit,
};

pub(super) async fn commit_turn(
    p: &PostgresProvider,
    commit: TurnCommit,
) -> Result<Vec<ActivityItem>> {
    let wakes = TurnWakes::of(&commit);
    let mut instances = wakes.started;
    if wakes.instance_changed {
        instances.push(commit.instance_id.clone());
    }
    let change = Change {
        orchestrations: wakes.orchestrations,
        activities: wakes.activities,
        instances,
        // Waiters for the end are woken only by an instance that ended (the children it
        // started are new: nobody waits on them yet).
        exact: true,
        finished: if wakes.instance_finished {
            vec![commit.instance_id.clone()]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    let instance_id = commit.instance_id.clone();
    // Turns that start instances or write values need a second statement, in a transaction.
    let claimed = if commit.outcome.starts.is_empty() && commit.outcome.kv.is_empty() {
        if let Ok(_permit) = p.commit_permits.clone().try_acquire_owned() {
            // Nothing waits to be committed: no hop to the committer.
            p.commits.count(1);
            commit_one(&p.pool, &commit).await?
        } else {
            // One statement, shared with the turns committed at the same moment.
            let (reply, answer) = oneshot::channel();
            p.committer
                .send(PendingTurn { commit, reply })
                .map_err(|_| StoreError::Closed)?;
            answer.await.map_err(|_| StoreError::Closed)??
        }
    } else {
        let mut tx = p.pool.begin().await?;
        match commit_turn_in(&mut tx, &commit, p.unknown_event_ttl_ms).await {
            Ok(claimed) => {
                tx.commit().await?;
                claimed
            }
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(e);
            }
        }
    };
    p.signal(change, false).await;
    // Followers in this process hear of every commit (other processes' followers poll;
    // the notification only names status changes).
    p.wakers.instance_progressed(&instance_id);
    Ok(claimed)
}

/// The turn statement. Its parameters are the fields of [`CommitParams`], whose
/// documentation gives each one's `$n`.
const TURN_SQL: &str = "WITH fenced AS (
        UPDATE instances SET lock_owner = NULL, lock_until = 0,
            updated_at = CASE WHEN $33 THEN $1 ELSE updated_at END,
            name = COALESCE($2, name), version = COALESCE($3, version),
            status = COALESCE($4, CASE status WHEN 'Pending' THEN 'Running' ELSE status END),
            output = COALESCE($5, output),
            error = COALESCE($6, error), error_code = COALESCE($7, error_code),
            custom_status = COALESCE($8, custom_status),
            custom_status_version = custom_status_version
                + CASE WHEN $8::text IS NULL THEN 0 ELSE 1 END,
            execution_id = execution_id + $9
        WHERE instance_id = $10 AND generation = $11 AND execution_id = $12
        RETURNING 1
    ), appended AS (
        INSERT INTO history (instance_id, execution_id, event_id, kind, task, ts, data)
        SELECT $10, $12, e.event_id, e.kind, e.task, $1, e.data
        FROM UNNEST($13::bigint[], $14::text[], $15::int[], $16::text[])
            AS e(event_id, kind, task, data)
        WHERE EXISTS (SELECT 1 FROM fenced)
    ), consumed AS (
        DELETE FROM orchestrator_queue
        WHERE seq = ANY($17) AND EXISTS (SELECT 1 FROM fenced)
    ), dropped_activities AS (
        DELETE FROM worker_queue
        WHERE instance_id = $10 AND execution_id = $12 AND task = ANY($18)
          AND EXISTS (SELECT 1 FROM fenced)
    ), dropped_timers AS (
        DELETE FROM orchestrator_queue
        WHERE kind = 'TimerFired' AND instance_id = $10 AND execution_id = $12
          AND task = ANY($19) AND EXISTS (SELECT 1 FROM fenced)
    ), activities AS (
        INSERT INTO worker_queue (instance_id, execution_id, task, name, input, retry,
            visible_at, created_at, lock_owner, lock_until, generation, deliveries,
            orchestration_name, orchestration_version, session_id, tag)
        SELECT $10, $12, a.task, a.name, a.input, a.retry, $1, $1,
            CASE WHEN a.n <= $30 THEN $31 END,
            CASE WHEN a.n <= $30 THEN reprise_now_ms() + $32 ELSE 0 END,
            CASE WHEN a.n <= $30 THEN 1 ELSE 0 END,
            CASE WHEN a.n <= $30 THEN 1 ELSE 0 END,
            a.orchestration_name, a.orchestration_version, a.session_id, a.tag
        FROM UNNEST($20::int[], $21::text[], $22::text[], $23::text[], $34::text[],
            $35::text[], $36::text[], $37::text[])
            WITH ORDINALITY AS a(task, name, input, retry, orchestration_name,
                orchestration_version, session_id, tag, n)
        WHERE EXISTS (SELECT 1 FROM fenced)
        ORDER BY a.n
        RETURNING task, seq, lock_owner IS NOT NULL AS leased
    ), queued AS (
        INSERT INTO orchestrator_queue (instance_id, kind, execution_id, task, visible_at, data,
            name)
        SELECT m.instance_id, m.kind, m.execution_id, m.task, m.visible_at, m.data,
            (SELECT i.name FROM instances i WHERE i.instance_id = m.instance_id)
        FROM UNNEST($24::text[], $25::text[], $26::bigint[], $27::int[], $28::bigint[], $29::text[])
            WITH ORDINALITY AS m(instance_id, kind, execution_id, task, visible_at, data, n)
        WHERE EXISTS (SELECT 1 FROM fenced)
        ORDER BY m.n
    )
    SELECT (SELECT COUNT(*) FROM fenced) AS fenced, a.task, a.seq
    FROM (SELECT 1) AS one
    LEFT JOIN activities a ON a.leased";

/// The parameters of [`TURN_SQL`], bound in `$n` order by [`CommitParams::bind`].
pub(super) struct CommitParams {
    /// `$1`: the turn's time (`updated_at`, the events' `ts`, the activities' `visible_at`
    /// and `created_at`).
    pub(super) now: i64,
    /// `$2`, `$3`: set when the execution started this turn.
    pub(super) name: Option<String>,
    pub(super) version: Option<String>,
    /// `$4` to `$7`: set when the execution ended this turn.
    pub(super) status: Option<&'static str>,
    pub(super) output: Option<String>,
    pub(super) error: Option<String>,
    pub(super) error_code: Option<String>,
    /// `$8`: the new custom status (`NULL`: unchanged).
    pub(super) custom_status: Option<String>,
    /// `$9`: 1 on continue-as-new (the execution id moves to the next one), else 0.
    pub(super) continued: i64,
    /// `$10` to `$12`: the fence: the instance, the claim's generation, the execution.
    pub(super) instance_id: String,
    pub(super) generation: i64,
    pub(super) execution_id: i64,
    /// `$13` to `$16`: the events appended to the history, as columns.
    pub(super) event_ids: Vec<i64>,
    pub(super) event_kinds: Vec<&'static str>,
    pub(super) event_tasks: Vec<Option<i32>>,
    pub(super) event_data: Vec<String>,
    /// `$17`: the orchestrator-queue rows the turn consumed.
    pub(super) consumed: Vec<i64>,
    /// `$18`: tasks whose queued activities are dropped (race losers, the execution ended).
    pub(super) canceled_activities: Vec<i32>,
    /// `$19`: tasks whose queued timers are dropped.
    pub(super) canceled_timers: Vec<i32>,
    /// `$20` to `$23` and `$34` to `$37`: the activities queued (task, name, input, retry;
    /// orchestration name and version, session, tag).
    pub(super) activities: ActivityRows,
    /// `$24` to `$29`: the messages queued: timers, then the messages sent.
    pub(super) messages: QueueRows,
    /// `$30`: how many of the activities (the first ones) the commit claims directly.
    pub(super) claim_count: i64,
    /// `$31`: the runtime they are leased to.
    pub(super) claim_owner: Option<String>,
    /// `$32`: their lease, from the database's clock at commit.
    pub(super) claim_lease_ms: i64,
    /// `$33`: whether `updated_at` moves to `$1` (see [`InstanceUpdate::touched`]).
    pub(super) touched: bool,
}

impl CommitParams {
    pub(super) fn of(c: &TurnCommit) -> Self {
        let out = &c.outcome;
        let InstanceUpdate {
            status,
            output,
            error,
            error_code,
            continued,
            name,
            version,
            touched,
        } = InstanceUpdate::of(out);
        let tasks = |t: &[u32]| t.iter().map(|t| *t as i32).collect::<Vec<_>>();
        CommitParams {
            now: c.now,
            name,
            version,
            status,
            output,
            error,
            error_code,
            custom_status: out.custom_status.as_ref().map(|v| v.get().to_owned()),
            continued: continued as i64,
            instance_id: c.instance_id.clone(),
            generation: c.generation,
            execution_id: c.execution_id as i64,
            event_ids: (0..out.events.len())
                .map(|i| (c.first_event_id + i as u64) as i64)
                .collect(),
            event_kinds: out.events.iter().map(|e| e.kind()).collect(),
            event_tasks: out
                .events
                .iter()
                .map(|e| e.task().map(|t| t as i32))
                .collect(),
            event_data: out.events.iter().map(event_data).collect(),
            consumed: out.consumed.clone(),
            canceled_activities: tasks(&out.canceled_activities),
            canceled_timers: tasks(&out.canceled_timers),
            activities: ActivityRows::of(&out.activities),
            messages: QueueRows::of(&turn_messages(c)),
            claim_count: c.claim.as_ref().map_or(0, |d| d.count as i64),
            claim_owner: c.claim.as_ref().map(|d| d.owner.clone()),
            claim_lease_ms: c.claim.as_ref().map_or(0, |d| d.lease_ms),
            touched,
        }
    }

    /// Binds every field to its `$n`, in order.
    fn bind(self, query: Query<'_, Postgres, PgArguments>) -> Query<'_, Postgres, PgArguments> {
        query
            .bind(self.now)
            .bind(self.name)
            .bind(self.version)
            .bind(self.status)
            .bind(self.output)
            .bind(self.error)
            .bind(self.error_code)
            .bind(self.custom_status)
            .bind(self.continued)
            .bind(self.instance_id)
            .bind(self.generation)
            .bind(self.execution_id)
            .bind(self.event_ids)
            .bind(self.event_kinds)
            .bind(self.event_tasks)
            .bind(self.event_data)
            .bind(self.consumed)
            .bind(self.canceled_activities)
            .bind(self.canceled_timers)
            .bind(self.activities.task)
            .bind(self.activities.name)
            .bind(self.activities.input)
            .bind(self.activities.retry)
            .bind(self.messages.instance_id)
            .bind(self.messages.kind)
            .bind(self.messages.execution_id)
            .bind(self.messages.task)
            .bind(self.messages.visible_at)
            .bind(self.messages.data)
            .bind(self.claim_count)
            .bind(self.claim_owner)
            .bind(self.claim_lease_ms)
            .bind(self.touched)
            .bind(self.activities.orchestration)
            .bind(self.activities.orchestration_version)
            .bind(self.activities.session_id)
            .bind(self.activities.tag)
    }
}

/// Commits a turn on `conn`: [`TURN_SQL`], then (inside the caller's transaction) the
/// creation of the child instances it starts.
pub(super) async fn commit_turn_in(
    conn: &mut PgConnection,
    c: &TurnCommit,
    event_ttl_ms: i64,
) -> Result<Vec<ActivityItem>> {
    let rows = CommitParams::of(c)
        .bind(sqlx::query(TURN_SQL))
        .fetch_all(&mut *conn)
        .await?;
    let fenced = match rows.first() {
        Some(r) => r.int("fenced")?,
        None => 0,
    };
    let mut claimed: Vec<(u32, i64)> = Vec::new();
    for r in &rows {
        let task: Option<i32> = sqlx::Row::try_get(r, "task")?;
        let seq: Option<i64> = sqlx::Row::try_get(r, "seq")?;
        if let (Some(task), Some(seq)) = (task, seq) {
            claimed.push((task as u32, seq));
        }
    }
    if fenced == 0 {
        return Err(StoreError::LeaseLost(format!(
            "instance '{}' (generation {})",
            c.instance_id, c.generation
        )));
    }
    let out = &c.outcome;
    for write in &out.kv {
        kv_write(conn, &c.instance_id, c.now, write).await?;
    }
    if !out.starts.is_empty() {
        let mut refused = QueueRows::default();
        create_instances(conn, &out.starts, c.now, event_ttl_ms, &mut refused).await?;
        refused.insert(conn).await?;
    }
    Ok(directly_claimed(c, &claimed))
}

/// One key-value write of a turn, inside its transaction.
async fn kv_write(
    conn: &mut PgConnection,
    instance_id: &str,
    now: i64,
    write: &KvWrite,
) -> Result<()> {
    let query = match write {
        KvWrite::Set { key, value } => sqlx::query(
            "INSERT INTO kv (instance_id, key, value, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (instance_id, key) DO UPDATE
             SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(instance_id)
        .bind(key)
        .bind(value)
        .bind(now),
        KvWrite::Clear { key } => sqlx::query("DELETE FROM kv WHERE instance_id = $1 AND key = $2")
            .bind(instance_id)
            .bind(key),
        KvWrite::ClearAll => sqlx::query("DELETE FROM kv WHERE instance_id = $1").bind(instance_id),
    };
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Creates a turn's new instances (each with its Start message) unless their ids exist;
/// a parent whose child id is taken hears of it (`ChildFailed`, queued into `failed`).
async fn create_instances(
    conn: &mut PgConnection,
    starts: &[StartRequest],
    now: i64,
    event_ttl_ms: i64,
    failed: &mut QueueRows,
) -> Result<()> {
    if starts.is_empty() {
        return Ok(());
    }
    // A second start of one id in the same turn finds the first one's instance.
    let mut seen = HashSet::new();
    let mut unique = Vec::with_capacity(starts.len());
    let mut duplicates = Vec::new();
    for start in starts {
        if seen.insert(start.instance_id.as_str()) {
            unique.push(start);
        } else {
            duplicates.push(start);
        }
    }
    let created = insert_instances(conn, &unique, Some(now), event_ttl_ms, None).await?;
    for start in starts {
        let refused = !created.contains(&start.instance_id)
            || duplicates.iter().any(|d| std::ptr::eq(*d, start));
        if let (true, Some(parent)) = (refused, &start.parent) {
            let taken = child_id_taken(parent, &start.instance_id, now);
            failed.push(&taken.instance_id, &taken.message, taken.visible_at);
        }
    }
    Ok(())
}

/// Inserts instances with their Start messages unless their ids exist (the ids must be
/// distinct), created at `now` (the store's clock when `None`); events older than
/// `event_ttl_ms` that waited for one of them are dropped. With `notify` (channel, payload),
/// the same statement sends that NOTIFY when it created any. Returns the ids created.
pub(super) async fn insert_instances(
    conn: &mut PgConnection,
    unique: &[&StartRequest],
    now: Option<i64>,
    event_ttl_ms: i64,
    notify: Option<(&str, String)>,
) -> Result<HashSet<String>> {
    let (channel, payload) = notify.unzip();
    let created: HashSet<String> = sqlx::query_scalar(
        "WITH s AS (
            SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                WITH ORDINALITY AS s(instance_id, name, version, input, parent_instance_id, data, n)
        ), created AS (
            INSERT INTO instances (instance_id, name, version, status, input, parent_instance_id,
                created_at, updated_at)
            SELECT instance_id, name, version, 'Pending', input, parent_instance_id,
                COALESCE($7, reprise_now_ms()), COALESCE($7, reprise_now_ms())
            FROM s ORDER BY instance_id
            ON CONFLICT (instance_id) DO NOTHING
            RETURNING instance_id, created_at
        ), expired AS (
            DELETE FROM orchestrator_queue q USING created c
            WHERE q.instance_id = c.instance_id AND q.kind = 'Event'
                AND q.visible_at < c.created_at - $8
        ), queued AS (
            INSERT INTO orchestrator_queue (instance_id, kind, visible_at, data, name)
            SELECT s.instance_id, 'Start', c.created_at, s.data, s.name
            FROM s JOIN created c USING (instance_id)
            ORDER BY s.n
        )
        -- One notification: PostgreSQL sends identical ones of a transaction once.
        SELECT c.instance_id FROM created c
        LEFT JOIN LATERAL (SELECT pg_notify($9, $10) WHERE $9::text IS NOT NULL) n ON true",
    )
    .bind(unique.iter().map(|s| s.instance_id.clone()).collect::<Vec<_>>())
    .bind(unique.iter().map(|s| s.name.clone()).collect::<Vec<_>>())
    .bind(unique.iter().map(|s| s.version.clone()).collect::<Vec<_>>())
    .bind(
        unique
            .iter()
            .map(|s| s.input.get().to_owned())
            .collect::<Vec<_>>(),
    )
    .bind(
        unique
            .iter()
            .map(|s| s.parent.as_ref().map(|p| p.instance_id.clone()))
            .collect::<Vec<_>>(),
    )
    .bind(
        unique
            .iter()
            .map(|s| message_data(&start_message(s)))
            .collect::<Vec<_>>(),
    )
    .bind(now)
    .bind(event_ttl_ms)
    .bind(channel)
    .bind(payload)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    Ok(created)
}
