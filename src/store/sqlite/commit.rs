//! Committing a turn: every write of the turn in the writer's transaction, fenced first by
//! the lease generation.

use rusqlite::params;

use super::instances::create_instance_in;
use super::queue::{insert_activities, insert_messages, IDS_PER_STATEMENT, ROWS_PER_STATEMENT};
use super::sql::{execute, Sql};
use super::writer::Db;
use super::SqliteProvider;
use crate::engine::{event_data, KvWrite};
use crate::store::writes::{child_id_taken, turn_messages, TurnWakes};
use crate::store::{
    directly_claimed, ActivityItem, InstanceUpdate, Result, StoreError, TurnCommit,
};

pub(super) async fn commit_turn(
    p: &SqliteProvider,
    commit: TurnCommit,
) -> Result<Vec<ActivityItem>> {
    let wakes = TurnWakes::of(&commit);
    let instance_id = commit.instance_id.clone();
    let clock = p.clock.clone();
    let ttl = p.unknown_event_ttl_ms;
    let claimed = p
        .write(move |db| commit_turn_in(db, commit, clock.now_ms(), ttl))
        .await?;
    if wakes.orchestrations {
        p.wakers.orchestrations.notify_one();
    }
    if wakes.activities {
        p.wakers.activities.notify_one();
    }
    if wakes.instance_finished {
        p.wakers.instance_changed(&instance_id);
    } else if wakes.instance_changed {
        p.wakers.instance_changed_running(&instance_id);
    } else {
        p.wakers.instance_progressed(&instance_id);
    }
    for id in wakes.started {
        p.wakers.instance_changed(&id);
    }
    Ok(claimed)
}

/// `clock_now` is the store's clock as the transaction runs (direct claims lease from it);
/// `event_ttl_ms` is the store's unknown-event TTL, for the instances the turn creates.
fn commit_turn_in(
    db: &Db,
    c: TurnCommit,
    clock_now: i64,
    event_ttl_ms: i64,
) -> Result<Vec<ActivityItem>> {
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
    // Fencing first: nothing is written unless this generation still holds the instance.
    let fenced = execute(
        db,
        "UPDATE instances SET lock_owner = NULL, lock_until = 0,
            updated_at = CASE WHEN ?13 THEN ?1 ELSE updated_at END,
            name = COALESCE(?2, name), version = COALESCE(?3, version),
            status = COALESCE(?4, CASE status WHEN 'Pending' THEN 'Running' ELSE status END), output = COALESCE(?5, output),
            error = COALESCE(?6, error), error_code = COALESCE(?7, error_code),
            custom_status = CASE WHEN ?8 IS NULL THEN custom_status ELSE ?8 END,
            custom_status_version = custom_status_version + (?8 IS NOT NULL),
            execution_id = execution_id + ?9
         WHERE instance_id = ?10 AND generation = ?11 AND execution_id = ?12",
        params![
            c.now,
            name,
            version,
            status,
            output,
            error,
            error_code,
            out.custom_status.as_ref().map(|v| v.get()),
            continued as i64,
            c.instance_id,
            c.generation,
            c.execution_id as i64,
            touched,
        ],
    )?;
    if fenced == 0 {
        return Err(StoreError::LeaseLost(format!(
            "instance '{}' (generation {})",
            c.instance_id, c.generation
        )));
    }
    let exec = c.execution_id as i64;
    for (n, chunk) in out.events.chunks(ROWS_PER_STATEMENT).enumerate() {
        let first = c.first_event_id + (n * ROWS_PER_STATEMENT) as u64;
        let mut sql = Sql::new(
            "INSERT INTO history (instance_id, execution_id, event_id, kind, task, ts, data) VALUES ",
        );
        sql.tuples(chunk.iter().enumerate(), |(i, e)| {
            vec![
                c.instance_id.clone().into(),
                exec.into(),
                ((first + i as u64) as i64).into(),
                e.kind().to_owned().into(),
                e.task().map(|t| t as i64).into(),
                c.now.into(),
                event_data(e).into(),
            ]
        });
        sql.execute(db)?;
    }
    for write in &out.kv {
        match write {
            KvWrite::Set { key, value } => execute(
                db,
                "INSERT INTO kv (instance_id, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (instance_id, key) DO UPDATE
                 SET value = excluded.value, updated_at = excluded.updated_at",
                params![c.instance_id, key, value, c.now],
            )?,
            KvWrite::Clear { key } => execute(
                db,
                "DELETE FROM kv WHERE instance_id = ?1 AND key = ?2",
                params![c.instance_id, key],
            )?,
            KvWrite::ClearAll => execute(
                db,
                "DELETE FROM kv WHERE instance_id = ?1",
                params![c.instance_id],
            )?,
        };
    }
    for chunk in out.consumed.chunks(IDS_PER_STATEMENT) {
        let mut sql = Sql::new("DELETE FROM orchestrator_queue WHERE seq IN ");
        sql.list(chunk.iter().copied()).execute(db)?;
    }
    // Race losers, and everything still queued when the execution ends.
    for chunk in out.canceled_activities.chunks(IDS_PER_STATEMENT) {
        let mut sql = Sql::new("DELETE FROM worker_queue WHERE instance_id = ");
        sql.bind(c.instance_id.clone())
            .push(" AND execution_id = ")
            .bind(exec)
            .push(" AND task IN ")
            .list(chunk.iter().map(|t| *t as i64))
            .execute(db)?;
    }
    for chunk in out.canceled_timers.chunks(IDS_PER_STATEMENT) {
        let mut sql =
            Sql::new("DELETE FROM orchestrator_queue WHERE kind = 'TimerFired' AND instance_id = ");
        sql.bind(c.instance_id.clone())
            .push(" AND execution_id = ")
            .bind(exec)
            .push(" AND task IN ")
            .list(chunk.iter().map(|t| *t as i64))
            .execute(db)?;
    }
    let claimed = insert_activities(
        db,
        &c.instance_id,
        exec,
        c.now,
        &out.activities,
        c.claim.as_ref().map(|d| (d, clock_now)),
    )?;
    let mut queue = Vec::new();
    for start in &out.starts {
        let created = create_instance_in(db, start, c.now, event_ttl_ms)?;
        if let (false, Some(parent)) = (created, &start.parent) {
            queue.push(child_id_taken(parent, &start.instance_id, c.now));
        }
    }
    queue.extend(turn_messages(&c));
    insert_messages(db, &queue)?;
    Ok(directly_claimed(&c, &claimed))
}
