//! Jobs: step rows, progress and logs written by a running attempt (fenced by its activity's
//! generation), events kept by name, and the queues of concurrency keys.

use rusqlite::{params, OptionalExtension};

use super::queue::insert_messages;
use super::sql::{execute, query_rows};
use super::writer::Db;
use super::SqliteProvider;
use crate::engine::{null_payload, Message};
use crate::store::jobs::await_step;
use crate::store::rows::{job_log, job_step, Columns};
use crate::store::writes::QueueInsert;
use crate::store::{
    JobAwait, JobBegin, JobFence, JobLog, JobState, JobStep, JobWrite, Result, JOB_WAKE_EVENT,
};

fn fenced(db: &Db, fence: &JobFence) -> Result<bool> {
    Ok(db
        .prepare_cached("SELECT 1 FROM worker_queue WHERE seq = ?1 AND generation = ?2")?
        .query_row(params![fence.seq, fence.generation], |_| Ok(()))
        .optional()?
        .is_some())
}

fn steps(db: &Db, instance_id: &str) -> Result<Vec<JobStep>> {
    query_rows(
        db,
        "SELECT * FROM job_steps WHERE instance_id = ?1 ORDER BY rowid",
        params![instance_id],
        |r| job_step(r),
    )
}

fn step(db: &Db, instance_id: &str, name: &str) -> Result<Option<JobStep>> {
    Ok(query_rows(
        db,
        "SELECT * FROM job_steps WHERE instance_id = ?1 AND name = ?2",
        params![instance_id, name],
        |r| job_step(r),
    )?
    .pop())
}

fn put_step(db: &Db, instance_id: &str, s: &JobStep, now: i64) -> Result<()> {
    execute(
        db,
        "INSERT INTO job_steps (instance_id, name, state, value, attempts, until_ms, event,
            updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (instance_id, name) DO UPDATE SET state = excluded.state,
            value = excluded.value, attempts = excluded.attempts, until_ms = excluded.until_ms,
            event = excluded.event, updated_at = excluded.updated_at",
        params![
            instance_id,
            s.name,
            s.state,
            s.value,
            s.attempts as i64,
            s.until_ms,
            s.event,
            now
        ],
    )?;
    Ok(())
}

fn wake(db: &Db, instance_ids: Vec<String>, now: i64) -> Result<()> {
    let rows: Vec<QueueInsert> = instance_ids
        .into_iter()
        .map(|instance_id| QueueInsert {
            instance_id,
            message: Message::Event {
                name: JOB_WAKE_EVENT.to_owned(),
                data: null_payload(),
            },
            visible_at: now,
        })
        .collect();
    insert_messages(db, &rows)
}

/// The first run of `key` whose instance has not ended (the key's holder); runs that ended
/// leave the queue.
fn key_holder(db: &Db, key: &str) -> Result<Option<String>> {
    execute(
        db,
        "DELETE FROM job_keys WHERE key = ?1 AND instance_id NOT IN (
            SELECT instance_id FROM instances WHERE status IN ('Pending', 'Running'))",
        params![key],
    )?;
    Ok(query_rows(
        db,
        "SELECT instance_id FROM job_keys WHERE key = ?1 ORDER BY seq LIMIT 1",
        params![key],
        |r| r.string("instance_id"),
    )?
    .pop())
}

pub(super) async fn begin(
    p: &SqliteProvider,
    fence: JobFence,
    key: Option<String>,
) -> Result<JobBegin> {
    let now = p.clock.now_ms();
    p.write(move |db| {
        if !fenced(db, &fence)? {
            return Ok(JobBegin::LeaseLost);
        }
        let id = &fence.instance_id;
        if let Some(key) = key {
            execute(
                db,
                "INSERT OR IGNORE INTO job_keys (key, instance_id) VALUES (?1, ?2)",
                params![key, id],
            )?;
            if key_holder(db, &key)?.as_deref() != Some(id) {
                return Ok(JobBegin::Blocked);
            }
        }
        execute(
            db,
            "INSERT INTO job_runs (instance_id, started_at, updated_at) VALUES (?1, ?2, ?2)
             ON CONFLICT (instance_id) DO UPDATE SET
                 started_at = COALESCE(job_runs.started_at, excluded.started_at)",
            params![id, now],
        )?;
        let started_at = db
            .prepare_cached("SELECT started_at FROM job_runs WHERE instance_id = ?1")?
            .query_row(params![id], |r| r.get(0))?;
        Ok(JobBegin::Started {
            now,
            started_at,
            steps: steps(db, id)?,
        })
    })
    .await
}

pub(super) async fn write(
    p: &SqliteProvider,
    fence: JobFence,
    writes: Vec<JobWrite>,
) -> Result<bool> {
    let now = p.clock.now_ms();
    p.write(move |db| {
        if !fenced(db, &fence)? {
            return Ok(false);
        }
        let id = &fence.instance_id;
        for w in &writes {
            match w {
                JobWrite::Step(s) => put_step(db, id, s, now)?,
                JobWrite::Progress { value } => {
                    execute(
                        db,
                        "INSERT INTO job_runs (instance_id, progress, updated_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (instance_id) DO UPDATE SET progress = excluded.progress,
                             updated_at = excluded.updated_at",
                        params![id, value, now],
                    )?;
                }
                JobWrite::Log {
                    level,
                    message,
                    data,
                    step,
                } => {
                    execute(
                        db,
                        "INSERT INTO job_logs (instance_id, level, message, data, step, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![id, level, message, data, step, now],
                    )?;
                }
            }
        }
        Ok(true)
    })
    .await
}

pub(super) async fn await_event(
    p: &SqliteProvider,
    fence: JobFence,
    name: String,
    event: String,
    deadline: Option<i64>,
    give_up: bool,
) -> Result<JobAwait> {
    let now = p.clock.now_ms();
    p.write(move |db| {
        if !fenced(db, &fence)? {
            return Ok(JobAwait::LeaseLost);
        }
        let id = &fence.instance_id;
        let existing = step(db, id, &name)?;
        let kept: Option<String> = db
            .prepare_cached("SELECT payload FROM job_events WHERE name = ?1")?
            .query_row(params![event], |r| r.get(0))
            .optional()?;
        let (outcome, row) =
            await_step(name, event, deadline, give_up, existing.as_ref(), kept, now);
        if let Some(row) = row {
            put_step(db, id, &row, now)?;
        }
        Ok(outcome)
    })
    .await
}

pub(super) async fn emit(p: &SqliteProvider, event: String, payload: String) -> Result<u64> {
    let now = p.clock.now_ms();
    let woken = p
        .write(move |db| {
            execute(
                db,
                "INSERT INTO job_events (name, payload, emitted_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET payload = excluded.payload,
                     emitted_at = excluded.emitted_at",
                params![event, payload, now],
            )?;
            let ids = query_rows(
                db,
                "UPDATE job_steps SET state = 'done', value = ?2, until_ms = NULL, updated_at = ?3
                 WHERE event = ?1 AND state = 'waiting' RETURNING instance_id",
                params![event, payload, now],
                |r| r.string("instance_id"),
            )?;
            let count = ids.len() as u64;
            wake(db, ids, now)?;
            Ok(count)
        })
        .await?;
    if woken > 0 {
        p.wakers.orchestrations.notify_one();
    }
    Ok(woken)
}

pub(super) async fn clear_event(p: &SqliteProvider, event: String) -> Result<bool> {
    p.write(move |db| {
        Ok(execute(db, "DELETE FROM job_events WHERE name = ?1", params![event])? > 0)
    })
    .await
}

pub(super) async fn queue_key(p: &SqliteProvider, instance_id: String, key: String) -> Result<()> {
    p.write(move |db| {
        execute(
            db,
            "INSERT OR IGNORE INTO job_keys (key, instance_id) VALUES (?1, ?2)",
            params![key, instance_id],
        )?;
        Ok(())
    })
    .await
}

pub(super) async fn release(p: &SqliteProvider, instance_id: String) -> Result<()> {
    let now = p.clock.now_ms();
    let woke = p
        .write(move |db| {
            let keys = query_rows(
                db,
                "DELETE FROM job_keys WHERE instance_id = ?1 RETURNING key",
                params![instance_id],
                |r| r.string("key"),
            )?;
            let mut next = Vec::new();
            for key in keys {
                next.extend(key_holder(db, &key)?);
            }
            let woke = !next.is_empty();
            wake(db, next, now)?;
            Ok(woke)
        })
        .await?;
    if woke {
        p.wakers.orchestrations.notify_one();
    }
    Ok(())
}

pub(super) async fn reset(p: &SqliteProvider, instance_id: String) -> Result<u64> {
    p.write(move |db| {
        Ok(execute(
            db,
            "DELETE FROM job_steps WHERE instance_id = ?1 AND state IN ('failed', 'retrying')",
            params![instance_id],
        )? as u64)
    })
    .await
}

pub(super) async fn state(p: &SqliteProvider, instance_id: String) -> Result<JobState> {
    p.read(move |db| {
        let run = db
            .prepare_cached(
                "SELECT started_at, progress, updated_at FROM job_runs WHERE instance_id = ?1",
            )?
            .query_row(params![instance_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let (started_at, progress, updated_at) = run.unwrap_or((None, None, None));
        Ok(JobState {
            started_at,
            progress,
            updated_at,
            steps: steps(db, &instance_id)?,
        })
    })
    .await
}

pub(super) async fn logs(
    p: &SqliteProvider,
    instance_id: String,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<JobLog>> {
    p.read(move |db| {
        query_rows(
            db,
            "SELECT * FROM job_logs WHERE instance_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            params![instance_id, after_seq, limit as i64],
            |r| job_log(r),
        )
    })
    .await
}
