//! Jobs: step rows, progress and logs written by a running attempt (fenced by its activity's
//! generation), events kept by name, and the queues of concurrency keys. An event's emit
//! and awaits, and a key's takers, serialize on a transaction-scoped advisory lock of the
//! name, so an await never misses an emit that committed beside it. Every transaction
//! here ends in a commit or an explicit rollback: one left to a deferred rollback would sit
//! idle with its locks (the advisory lock among them) until its connection is used again.

use sqlx::postgres::PgConnection;

use super::notify::Change;
use super::queue::QueueRows;
use super::PostgresProvider;
use crate::engine::{null_payload, Message};
use crate::store::jobs::await_step;
use crate::store::rows::{job_log, job_step, Columns};
use crate::store::{
    JobAwait, JobBegin, JobFence, JobLog, JobState, JobStep, JobWrite, Result, JOB_WAKE_EVENT,
};

async fn fenced(conn: &mut PgConnection, fence: &JobFence) -> Result<bool> {
    Ok(
        sqlx::query("SELECT 1 FROM worker_queue WHERE seq = $1 AND generation = $2")
            .bind(fence.seq)
            .bind(fence.generation)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

async fn lock(conn: &mut PgConnection, space: &str, name: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || $2, 0))")
        .bind(space)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn now(conn: &mut PgConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT reprise_now_ms()")
        .fetch_one(&mut *conn)
        .await?)
}

async fn steps(conn: &mut PgConnection, instance_id: &str) -> Result<Vec<JobStep>> {
    sqlx::query("SELECT * FROM job_steps WHERE instance_id = $1 ORDER BY seq")
        .bind(instance_id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(job_step)
        .collect()
}

async fn put_step(conn: &mut PgConnection, instance_id: &str, s: &JobStep, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO job_steps (instance_id, name, state, value, attempts, until_ms, event,
            updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (instance_id, name) DO UPDATE SET state = excluded.state,
            value = excluded.value, attempts = excluded.attempts, until_ms = excluded.until_ms,
            event = excluded.event, updated_at = excluded.updated_at",
    )
    .bind(instance_id)
    .bind(&s.name)
    .bind(&s.state)
    .bind(&s.value)
    .bind(s.attempts as i64)
    .bind(s.until_ms)
    .bind(&s.event)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Queues a wake message for each run and notifies every process on commit.
async fn wake(
    p: &PostgresProvider,
    conn: &mut PgConnection,
    ids: &[String],
    now: i64,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut rows = QueueRows::default();
    for id in ids {
        let message = Message::Event {
            name: JOB_WAKE_EVENT.to_owned(),
            data: null_payload(),
        };
        rows.push(id, &message, now);
    }
    rows.insert(&mut *conn).await?;
    let (channel, payload) = p.inline_notify(&woken());
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn woken() -> Change {
    Change {
        orchestrations: true,
        ..Default::default()
    }
}

async fn key_holder(conn: &mut PgConnection, key: &str) -> Result<Option<String>> {
    sqlx::query(
        "DELETE FROM job_keys WHERE key = $1 AND instance_id NOT IN (
            SELECT instance_id FROM instances WHERE status IN ('Pending', 'Running'))",
    )
    .bind(key)
    .execute(&mut *conn)
    .await?;
    Ok(
        sqlx::query_scalar("SELECT instance_id FROM job_keys WHERE key = $1 ORDER BY seq LIMIT 1")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

pub(super) async fn begin(
    p: &PostgresProvider,
    fence: JobFence,
    key: Option<String>,
) -> Result<JobBegin> {
    let mut tx = p.pool.begin().await?;
    if !fenced(&mut tx, &fence).await? {
        tx.rollback().await?;
        return Ok(JobBegin::LeaseLost);
    }
    let id = &fence.instance_id;
    if let Some(key) = key {
        lock(&mut tx, "reprise.key:", &key).await?;
        sqlx::query(
            "INSERT INTO job_keys (key, instance_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(&key)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if key_holder(&mut tx, &key).await?.as_deref() != Some(id) {
            tx.commit().await?;
            return Ok(JobBegin::Blocked);
        }
    }
    let now = now(&mut tx).await?;
    let started_at: i64 = sqlx::query_scalar(
        "INSERT INTO job_runs (instance_id, started_at, updated_at) VALUES ($1, $2, $2)
         ON CONFLICT (instance_id) DO UPDATE SET
             started_at = COALESCE(job_runs.started_at, excluded.started_at)
         RETURNING started_at",
    )
    .bind(id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let steps = steps(&mut tx, id).await?;
    tx.commit().await?;
    Ok(JobBegin::Started {
        now,
        started_at,
        steps,
    })
}

pub(super) async fn write(
    p: &PostgresProvider,
    fence: JobFence,
    writes: Vec<JobWrite>,
) -> Result<bool> {
    if let [JobWrite::Step(s)] = writes.as_slice() {
        return write_step(p, &fence, s).await;
    }
    let mut tx = p.pool.begin().await?;
    if !fenced(&mut tx, &fence).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    let id = &fence.instance_id;
    let now = now(&mut tx).await?;
    for w in &writes {
        match w {
            JobWrite::Step(s) => put_step(&mut tx, id, s, now).await?,
            JobWrite::Progress { value } => {
                sqlx::query(
                    "INSERT INTO job_runs (instance_id, progress, updated_at) VALUES ($1, $2, $3)
                     ON CONFLICT (instance_id) DO UPDATE SET progress = excluded.progress,
                         updated_at = excluded.updated_at",
                )
                .bind(id)
                .bind(value)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            JobWrite::Log {
                level,
                message,
                data,
                step,
            } => {
                sqlx::query(
                    "INSERT INTO job_logs (instance_id, level, message, data, step, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id)
                .bind(level)
                .bind(message)
                .bind(data)
                .bind(step)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// One step, the common write: one statement, fenced in its `WHERE`.
async fn write_step(p: &PostgresProvider, fence: &JobFence, s: &JobStep) -> Result<bool> {
    let written = sqlx::query(
        "INSERT INTO job_steps (instance_id, name, state, value, attempts, until_ms, event,
            updated_at)
         SELECT $1, $2, $3, $4, $5, $6, $7, reprise_now_ms()
         WHERE EXISTS (SELECT 1 FROM worker_queue WHERE seq = $8 AND generation = $9)
         ON CONFLICT (instance_id, name) DO UPDATE SET state = excluded.state,
            value = excluded.value, attempts = excluded.attempts, until_ms = excluded.until_ms,
            event = excluded.event, updated_at = excluded.updated_at",
    )
    .bind(&fence.instance_id)
    .bind(&s.name)
    .bind(&s.state)
    .bind(&s.value)
    .bind(s.attempts as i64)
    .bind(s.until_ms)
    .bind(&s.event)
    .bind(fence.seq)
    .bind(fence.generation)
    .execute(&mut *p.pool.conn().await?)
    .await?;
    Ok(written.rows_affected() > 0)
}

pub(super) async fn await_event(
    p: &PostgresProvider,
    fence: JobFence,
    name: String,
    event: String,
    deadline: Option<i64>,
    give_up: bool,
) -> Result<JobAwait> {
    let mut tx = p.pool.begin().await?;
    if !fenced(&mut tx, &fence).await? {
        tx.rollback().await?;
        return Ok(JobAwait::LeaseLost);
    }
    lock(&mut tx, "reprise.event:", &event).await?;
    let id = &fence.instance_id;
    let now = now(&mut tx).await?;
    let existing = sqlx::query("SELECT * FROM job_steps WHERE instance_id = $1 AND name = $2")
        .bind(id)
        .bind(&name)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| job_step(&r))
        .transpose()?;
    let kept: Option<String> = sqlx::query_scalar("SELECT payload FROM job_events WHERE name = $1")
        .bind(&event)
        .fetch_optional(&mut *tx)
        .await?;
    let (outcome, row) = await_step(name, event, deadline, give_up, existing.as_ref(), kept, now);
    if let Some(row) = row {
        put_step(&mut tx, id, &row, now).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

pub(super) async fn emit(p: &PostgresProvider, event: String, payload: String) -> Result<u64> {
    let mut tx = p.pool.begin().await?;
    lock(&mut tx, "reprise.event:", &event).await?;
    let now = now(&mut tx).await?;
    sqlx::query(
        "INSERT INTO job_events (name, payload, emitted_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET payload = excluded.payload,
             emitted_at = excluded.emitted_at",
    )
    .bind(&event)
    .bind(&payload)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let ids: Vec<String> = sqlx::query_scalar(
        "UPDATE job_steps SET state = 'done', value = $2, until_ms = NULL, updated_at = $3
         WHERE event = $1 AND state = 'waiting' RETURNING instance_id",
    )
    .bind(&event)
    .bind(&payload)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    wake(p, &mut tx, &ids, now).await?;
    tx.commit().await?;
    if !ids.is_empty() {
        p.signal_here(&woken());
    }
    Ok(ids.len() as u64)
}

pub(super) async fn clear_event(p: &PostgresProvider, event: String) -> Result<bool> {
    let done = sqlx::query("DELETE FROM job_events WHERE name = $1")
        .bind(event)
        .execute(&mut *p.pool.conn().await?)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn queue_key(
    p: &PostgresProvider,
    instance_id: String,
    key: String,
) -> Result<()> {
    sqlx::query("INSERT INTO job_keys (key, instance_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(key)
        .bind(instance_id)
        .execute(&mut *p.pool.conn().await?)
        .await?;
    Ok(())
}

pub(super) async fn release(p: &PostgresProvider, instance_id: String) -> Result<()> {
    let mut tx = p.pool.begin().await?;
    let mut keys: Vec<String> =
        sqlx::query_scalar("SELECT key FROM job_keys WHERE instance_id = $1")
            .bind(&instance_id)
            .fetch_all(&mut *tx)
            .await?;
    keys.sort();
    let mut next = Vec::new();
    for key in &keys {
        lock(&mut tx, "reprise.key:", key).await?;
        sqlx::query("DELETE FROM job_keys WHERE key = $1 AND instance_id = $2")
            .bind(key)
            .bind(&instance_id)
            .execute(&mut *tx)
            .await?;
        next.extend(key_holder(&mut tx, key).await?);
    }
    let now = now(&mut tx).await?;
    wake(p, &mut tx, &next, now).await?;
    tx.commit().await?;
    if !next.is_empty() {
        p.signal_here(&woken());
    }
    Ok(())
}

pub(super) async fn reset(p: &PostgresProvider, instance_id: String) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM job_steps WHERE instance_id = $1 AND state IN ('failed', 'retrying')",
    )
    .bind(instance_id)
    .execute(&mut *p.pool.conn().await?)
    .await?;
    Ok(done.rows_affected())
}

pub(super) async fn state(p: &PostgresProvider, instance_id: String) -> Result<JobState> {
    let mut conn = p.pool.conn().await?;
    let run =
        sqlx::query("SELECT started_at, progress, updated_at FROM job_runs WHERE instance_id = $1")
            .bind(&instance_id)
            .fetch_optional(&mut *conn)
            .await?;
    let (started_at, progress, updated_at) = match run {
        Some(r) => (
            r.opt_int("started_at")?,
            r.opt_string("progress")?,
            Some(r.int("updated_at")?),
        ),
        None => (None, None, None),
    };
    Ok(JobState {
        started_at,
        progress,
        updated_at,
        steps: steps(&mut conn, &instance_id).await?,
    })
}

pub(super) async fn logs(
    p: &PostgresProvider,
    instance_id: String,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<JobLog>> {
    sqlx::query("SELECT * FROM job_logs WHERE instance_id = $1 AND seq > $2 ORDER BY seq LIMIT $3")
        .bind(instance_id)
        .bind(after_seq)
        .bind(limit as i64)
        .fetch_all(&mut *p.pool.conn().await?)
        .await?
        .iter()
        .map(job_log)
        .collect()
}
