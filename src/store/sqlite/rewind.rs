//! Rewinding a failed instance (see [`Provider::rewind_instance`]) in one transaction.

use rusqlite::params;

use super::queue::{insert_activities, insert_messages};
use super::sql::{execute, Sql};
use super::writer::Db;
use super::SqliteProvider;
use crate::engine::RewindPlan;
use crate::store::writes::RewindWrites;
use crate::store::Result;

#[cfg(doc)]
use crate::store::Provider;

pub(super) async fn rewind_instance(
    p: &SqliteProvider,
    instance_id: &str,
    plan: &RewindPlan,
    updated_at: i64,
) -> Result<bool> {
    let id = instance_id.to_owned();
    let plan_owned = plan.clone();
    let clock = p.clock.clone();
    let rewound = p
        .write(move |db| rewind_in(db, &id, &plan_owned, updated_at, clock.now_ms()))
        .await?;
    if rewound {
        p.wakers.orchestrations.notify_one();
        if !plan.activities.is_empty() {
            p.wakers.activities.notify_one();
        }
        p.wakers.instance_changed(instance_id);
    }
    Ok(rewound)
}

/// Applies a rewind plan (see [`Provider::rewind_instance`]).
fn rewind_in(
    db: &Db,
    instance_id: &str,
    plan: &RewindPlan,
    updated_at: i64,
    now: i64,
) -> Result<bool> {
    let w = RewindWrites::of(instance_id, plan, now);
    let updated = execute(
        db,
        "UPDATE instances SET status = 'Running', output = NULL, error = NULL, error_code = NULL,
            updated_at = ?1, lock_owner = NULL, lock_until = 0, generation = generation + 1,
            custom_status = CASE WHEN ?2 THEN ?3 ELSE custom_status END,
            custom_status_version = custom_status_version + ?2
         WHERE instance_id = ?4 AND status IN ('Failed', 'Canceled') AND execution_id = ?5 AND updated_at = ?7
           AND (SELECT MAX(event_id) FROM history WHERE instance_id = ?4 AND execution_id = ?5) = ?6",
        params![
            now,
            w.custom_status_set as i64,
            w.custom_status,
            instance_id,
            w.execution_id,
            w.last_event_id,
            updated_at,
        ],
    )?;
    if updated == 0 {
        return Ok(false);
    }
    execute(
        db,
        "DELETE FROM history WHERE instance_id = ?1 AND execution_id = ?2 AND event_id >= ?3",
        params![instance_id, w.execution_id, w.truncate_from],
    )?;
    execute(
        db,
        "DELETE FROM orchestrator_queue WHERE instance_id = ?1 AND execution_id = ?2
           AND kind IN ('ChildCompleted', 'ChildFailed')",
        params![instance_id, w.execution_id],
    )?;
    if !w.open_children.is_empty() {
        let mut sql =
            Sql::new("DELETE FROM orchestrator_queue WHERE kind = 'Cancel' AND instance_id IN ");
        sql.list(w.open_children.iter().cloned()).execute(db)?;
    }
    insert_activities(db, instance_id, w.execution_id, now, &plan.activities, None)?;
    insert_messages(db, &w.messages)?;
    // A job run retried: the steps it gave up on run again; finished ones stay.
    execute(
        db,
        "DELETE FROM job_steps WHERE instance_id = ?1 AND state IN ('failed', 'retrying')",
        params![instance_id],
    )?;
    if let Some(entries) = &plan.kv {
        // The removed events had written values: the store goes back to the kept history's.
        execute(
            db,
            "DELETE FROM kv WHERE instance_id = ?1",
            params![instance_id],
        )?;
        for (key, value, updated_at) in entries {
            execute(
                db,
                "INSERT INTO kv (instance_id, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)",
                params![instance_id, key, value, updated_at],
            )?;
        }
    }
    Ok(true)
}
