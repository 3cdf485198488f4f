//! Group commit: turns that finish at the same moment go to the database together, as one
//! statement ([`GROUP_SQL`]) that fences each turn on its own, so a turn whose lease was
//! lost writes nothing and fails alone. A batch the database refuses is committed again
//! turn by turn: one bad turn never fails the others. Turns that start instances keep
//! their own transaction (`commit.rs`). Starts are gathered the same way ([`gather`],
//! `instances.rs`).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::commit::{commit_turn_in, CommitParams};
use super::pool::Pool;
use crate::store::rows::Columns;
use crate::store::{directly_claimed, ActivityItem, Result, StoreError, TurnCommit};

/// Most items (turns, starts) one statement carries.
const MAX_BATCH: usize = 128;
/// Statements in flight at once per gatherer.
const BATCHES_IN_FLIGHT: usize = 4;

/// Statements the committer ran and the turns they carried.
#[derive(Default)]
pub(super) struct GroupCounters {
    pub statements: AtomicU64,
    pub turns: AtomicU64,
}

impl GroupCounters {
    /// One statement carrying `turns` turns.
    pub(super) fn count(&self, turns: usize) {
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.turns.fetch_add(turns as u64, Ordering::Relaxed);
    }
}

pub(super) struct PendingTurn {
    pub commit: TurnCommit,
    pub reply: oneshot::Sender<Result<Vec<ActivityItem>>>,
}

/// Commits the turns sent on `rx` until every sender is gone.
pub(super) async fn committer(
    pool: Arc<Pool>,
    rx: mpsc::UnboundedReceiver<PendingTurn>,
    permits: Arc<Semaphore>,
    counters: Arc<GroupCounters>,
) {
    gather(rx, permits, Some(counters), move |batch| {
        let pool = pool.clone();
        async move { commit_batch(&pool, batch).await }
    })
    .await
}

/// Statements that may run at once for one gatherer: its batches, and the callers that
/// found a permit free and ran their own statement without queueing (no hop to the
/// gatherer when nothing is waiting).
pub(super) fn permits() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(BATCHES_IN_FLIGHT))
}

/// Gathers what is sent on `rx` into batches (at most [`MAX_BATCH`] items) and hands each
/// to `run`, each batch holding one of `permits`: while none is free, what arrives gathers
/// into the next batch, so a burst pays one round trip per batch. Ends once every sender
/// is gone.
pub(super) async fn gather<T, F, Fut>(
    mut rx: mpsc::UnboundedReceiver<T>,
    permits: Arc<Semaphore>,
    counters: Option<Arc<GroupCounters>>,
    run: F,
) where
    T: Send + 'static,
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let Some(first) = rx.recv().await else {
            return;
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        if let Some(counters) = &counters {
            counters.count(batch.len());
        }
        let work = run(batch);
        tokio::spawn(async move {
            work.await;
            drop(permit);
        });
    }
}

async fn commit_batch(pool: &Pool, batch: Vec<PendingTurn>) {
    if batch.len() == 1 {
        for turn in batch {
            let result = commit_one(pool, &turn.commit).await;
            let _ = turn.reply.send(result);
        }
        return;
    }
    match commit_group(pool, &batch).await {
        Ok(mut results) => {
            for (turn, result) in batch.into_iter().zip(results.drain(..)) {
                let _ = turn.reply.send(result);
            }
        }
        Err(e) if e.is_unavailable() => {
            let message = e.to_string();
            for turn in batch {
                let _ = turn
                    .reply
                    .send(Err(StoreError::Unavailable(message.clone())));
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, turns = batch.len(), "a group commit failed; committing its turns one by one");
            for turn in batch {
                let result = commit_one(pool, &turn.commit).await;
                let _ = turn.reply.send(result);
            }
        }
    }
}

/// One turn with the single-turn statement.
pub(super) async fn commit_one(pool: &Pool, commit: &TurnCommit) -> Result<Vec<ActivityItem>> {
    let mut conn = pool.conn().await?;
    // Turns that start instances do not come here: no event TTL is needed.
    commit_turn_in(&mut conn, commit, 0).await
}

/// The statement committing many turns: [`TURN_SQL`](super::commit) with every parameter
/// an array over the turns (`turn` is a turn's 1-based position in the batch), and each
/// row of the turns' events, consumed messages, dropped tasks, activities and messages
/// tagged with its turn. It returns a row per fenced turn (`task` NULL) and a row per
/// activity claimed directly.
const GROUP_SQL: &str = "WITH t AS (
        SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[],
            $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
            $11::text[], $12::bigint[], $13::bool[], $14::bigint[], $15::text[], $16::bigint[])
            WITH ORDINALITY AS t(instance_id, generation, execution_id, now, name, version,
                status, output, error, error_code, custom_status, continued, touched,
                claim_count, claim_owner, claim_lease_ms, turn)
    ), fenced AS (
        UPDATE instances i SET lock_owner = NULL, lock_until = 0,
            updated_at = CASE WHEN t.touched THEN t.now ELSE i.updated_at END,
            name = COALESCE(t.name, i.name), version = COALESCE(t.version, i.version),
            status = COALESCE(t.status,
                CASE i.status WHEN 'Pending' THEN 'Running' ELSE i.status END),
            output = COALESCE(t.output, i.output),
            error = COALESCE(t.error, i.error), error_code = COALESCE(t.error_code, i.error_code),
            custom_status = COALESCE(t.custom_status, i.custom_status),
            custom_status_version = i.custom_status_version
                + CASE WHEN t.custom_status IS NULL THEN 0 ELSE 1 END,
            execution_id = i.execution_id + t.continued
        FROM t
        WHERE i.instance_id = t.instance_id AND i.generation = t.generation
            AND i.execution_id = t.execution_id
        RETURNING t.turn, t.instance_id, t.execution_id, t.now, t.claim_count, t.claim_owner,
            t.claim_lease_ms
    ), appended AS (
        INSERT INTO history (instance_id, execution_id, event_id, kind, task, ts, data)
        SELECT f.instance_id, f.execution_id, e.event_id, e.kind, e.task, f.now, e.data
        FROM UNNEST($17::bigint[], $18::bigint[], $19::text[], $20::int[], $21::text[])
            AS e(turn, event_id, kind, task, data)
        JOIN fenced f ON f.turn = e.turn
    ), consumed AS (
        DELETE FROM orchestrator_queue q
        USING UNNEST($22::bigint[], $23::bigint[]) AS c(turn, seq), fenced f
        WHERE q.seq = c.seq AND f.turn = c.turn
    ), dropped_activities AS (
        DELETE FROM worker_queue w
        USING UNNEST($24::bigint[], $25::int[]) AS x(turn, task), fenced f
        WHERE f.turn = x.turn AND w.instance_id = f.instance_id
            AND w.execution_id = f.execution_id AND w.task = x.task
    ), dropped_timers AS (
        DELETE FROM orchestrator_queue q
        USING UNNEST($26::bigint[], $27::int[]) AS x(turn, task), fenced f
        WHERE f.turn = x.turn AND q.kind = 'TimerFired' AND q.instance_id = f.instance_id
            AND q.execution_id = f.execution_id AND q.task = x.task
    ), activities AS (
        INSERT INTO worker_queue (instance_id, execution_id, task, name, input, retry,
            visible_at, created_at, lock_owner, lock_until, generation, deliveries,
            orchestration_name, orchestration_version, session_id, tag)
        SELECT f.instance_id, f.execution_id, a.task, a.name, a.input, a.retry, f.now, f.now,
            CASE WHEN a.n <= f.claim_count THEN f.claim_owner END,
            CASE WHEN a.n <= f.claim_count THEN reprise_now_ms() + f.claim_lease_ms ELSE 0 END,
            CASE WHEN a.n <= f.claim_count THEN 1 ELSE 0 END,
            CASE WHEN a.n <= f.claim_count THEN 1 ELSE 0 END,
            a.orchestration_name, a.orchestration_version, a.session_id, a.tag
        FROM UNNEST($28::bigint[], $29::bigint[], $30::int[], $31::text[], $32::text[],
            $33::text[], $41::text[], $42::text[], $43::text[], $44::text[])
            AS a(turn, n, task, name, input, retry, orchestration_name, orchestration_version,
                session_id, tag)
        JOIN fenced f ON f.turn = a.turn
        ORDER BY a.turn, a.n
        RETURNING instance_id, task, seq, lock_owner IS NOT NULL AS leased
    ), queued AS (
        INSERT INTO orchestrator_queue (instance_id, kind, execution_id, task, visible_at, data,
            name)
        SELECT m.instance_id, m.kind, m.execution_id, m.task, m.visible_at, m.data,
            (SELECT i.name FROM instances i WHERE i.instance_id = m.instance_id)
        FROM UNNEST($34::bigint[], $35::text[], $36::text[], $37::bigint[], $38::int[],
            $39::bigint[], $40::text[])
            WITH ORDINALITY AS m(turn, instance_id, kind, execution_id, task, visible_at, data, n)
        JOIN fenced f ON f.turn = m.turn
        ORDER BY m.n
    )
    SELECT f.turn, NULL::bigint AS task, NULL::bigint AS seq FROM fenced f
    UNION ALL
    SELECT f.turn, a.task::bigint, a.seq FROM activities a JOIN fenced f ON f.instance_id = a.instance_id
    WHERE a.leased";

/// The columns of [`GROUP_SQL`]: the turns' [`CommitParams`], side by side.
#[derive(Default)]
struct GroupParams {
    instance_id: Vec<String>,
    generation: Vec<i64>,
    execution_id: Vec<i64>,
    now: Vec<i64>,
    name: Vec<Option<String>>,
    version: Vec<Option<String>>,
    status: Vec<Option<&'static str>>,
    output: Vec<Option<String>>,
    error: Vec<Option<String>>,
    error_code: Vec<Option<String>>,
    custom_status: Vec<Option<String>>,
    continued: Vec<i64>,
    touched: Vec<bool>,
    claim_count: Vec<i64>,
    claim_owner: Vec<Option<String>>,
    claim_lease_ms: Vec<i64>,
    event_turn: Vec<i64>,
    event_id: Vec<i64>,
    event_kind: Vec<&'static str>,
    event_task: Vec<Option<i32>>,
    event_data: Vec<String>,
    consumed_turn: Vec<i64>,
    consumed: Vec<i64>,
    dropped_activity_turn: Vec<i64>,
    dropped_activity: Vec<i32>,
    dropped_timer_turn: Vec<i64>,
    dropped_timer: Vec<i32>,
    activity_turn: Vec<i64>,
    activity_n: Vec<i64>,
    activity_task: Vec<i32>,
    activity_name: Vec<String>,
    activity_input: Vec<String>,
    activity_retry: Vec<Option<String>>,
    activity_orchestration: Vec<String>,
    activity_orchestration_version: Vec<Option<String>>,
    activity_session: Vec<Option<String>>,
    activity_tag: Vec<Option<String>>,
    message_turn: Vec<i64>,
    message_instance: Vec<String>,
    message_kind: Vec<&'static str>,
    message_execution: Vec<Option<i64>>,
    message_task: Vec<Option<i32>>,
    message_visible_at: Vec<i64>,
    message_data: Vec<String>,
}

impl GroupParams {
    fn push(&mut self, turn: i64, p: CommitParams) {
        self.instance_id.push(p.instance_id);
        self.generation.push(p.generation);
        self.execution_id.push(p.execution_id);
        self.now.push(p.now);
        self.name.push(p.name);
        self.version.push(p.version);
        self.status.push(p.status);
        self.output.push(p.output);
        self.error.push(p.error);
        self.error_code.push(p.error_code);
        self.custom_status.push(p.custom_status);
        self.continued.push(p.continued);
        self.touched.push(p.touched);
        self.claim_count.push(p.claim_count);
        self.claim_owner.push(p.claim_owner);
        self.claim_lease_ms.push(p.claim_lease_ms);
        let tag = |column: &mut Vec<i64>, n: usize| column.extend(std::iter::repeat_n(turn, n));
        tag(&mut self.event_turn, p.event_ids.len());
        self.event_id.extend(p.event_ids);
        self.event_kind.extend(p.event_kinds);
        self.event_task.extend(p.event_tasks);
        self.event_data.extend(p.event_data);
        tag(&mut self.consumed_turn, p.consumed.len());
        self.consumed.extend(p.consumed);
        tag(&mut self.dropped_activity_turn, p.canceled_activities.len());
        self.dropped_activity.extend(p.canceled_activities);
        tag(&mut self.dropped_timer_turn, p.canceled_timers.len());
        self.dropped_timer.extend(p.canceled_timers);
        tag(&mut self.activity_turn, p.activities.task.len());
        self.activity_n
            .extend((1..=p.activities.task.len()).map(|n| n as i64));
        self.activity_task.extend(p.activities.task);
        self.activity_name.extend(p.activities.name);
        self.activity_input.extend(p.activities.input);
        self.activity_retry.extend(p.activities.retry);
        self.activity_orchestration
            .extend(p.activities.orchestration);
        self.activity_orchestration_version
            .extend(p.activities.orchestration_version);
        self.activity_session.extend(p.activities.session_id);
        self.activity_tag.extend(p.activities.tag);
        tag(&mut self.message_turn, p.messages.instance_id.len());
        self.message_instance.extend(p.messages.instance_id);
        self.message_kind.extend(p.messages.kind);
        self.message_execution.extend(p.messages.execution_id);
        self.message_task.extend(p.messages.task);
        self.message_visible_at.extend(p.messages.visible_at);
        self.message_data.extend(p.messages.data);
    }
}

/// Commits `batch` with [`GROUP_SQL`]: each turn's result, in order.
async fn commit_group(
    pool: &Pool,
    batch: &[PendingTurn],
) -> Result<Vec<Result<Vec<ActivityItem>>>> {
    let mut g = GroupParams::default();
    for (i, turn) in batch.iter().enumerate() {
        g.push(i as i64 + 1, CommitParams::of(&turn.commit));
    }
    let rows = sqlx::query(GROUP_SQL)
        .bind(g.instance_id)
        .bind(g.generation)
        .bind(g.execution_id)
        .bind(g.now)
        .bind(g.name)
        .bind(g.version)
        .bind(g.status)
        .bind(g.output)
        .bind(g.error)
        .bind(g.error_code)
        .bind(g.custom_status)
        .bind(g.continued)
        .bind(g.touched)
        .bind(g.claim_count)
        .bind(g.claim_owner)
        .bind(g.claim_lease_ms)
        .bind(g.event_turn)
        .bind(g.event_id)
        .bind(g.event_kind)
        .bind(g.event_task)
        .bind(g.event_data)
        .bind(g.consumed_turn)
        .bind(g.consumed)
        .bind(g.dropped_activity_turn)
        .bind(g.dropped_activity)
        .bind(g.dropped_timer_turn)
        .bind(g.dropped_timer)
        .bind(g.activity_turn)
        .bind(g.activity_n)
        .bind(g.activity_task)
        .bind(g.activity_name)
        .bind(g.activity_input)
        .bind(g.activity_retry)
        .bind(g.message_turn)
        .bind(g.message_instance)
        .bind(g.message_kind)
        .bind(g.message_execution)
        .bind(g.message_task)
        .bind(g.message_visible_at)
        .bind(g.message_data)
        .bind(g.activity_orchestration)
        .bind(g.activity_orchestration_version)
        .bind(g.activity_session)
        .bind(g.activity_tag)
        .fetch_all(&mut *pool.conn().await?)
        .await?;
    let mut fenced: HashSet<i64> = HashSet::new();
    let mut claimed: HashMap<i64, Vec<(u32, i64)>> = HashMap::new();
    for row in &rows {
        let turn = row.int("turn")?;
        match (row.opt_int("task")?, row.opt_int("seq")?) {
            (Some(task), Some(seq)) => claimed.entry(turn).or_default().push((task as u32, seq)),
            _ => {
                fenced.insert(turn);
            }
        }
    }
    Ok(batch
        .iter()
        .enumerate()
        .map(|(i, turn)| {
            let n = i as i64 + 1;
            let c = &turn.commit;
            if !fenced.contains(&n) {
                return Err(StoreError::LeaseLost(format!(
                    "instance '{}' (generation {})",
                    c.instance_id, c.generation
                )));
            }
            Ok(directly_claimed(c, claimed.get(&n).map_or(&[], |v| v)))
        })
        .collect())
}
