//! Rewinding a failed instance (see [`Provider::rewind_instance`]) in one transaction.

use sqlx::postgres::PgConnection;

use super::notify::Change;
use super::queue::{insert_activities, QueueRows};
use super::PostgresProvider;
use crate::engine::RewindPlan;
use crate::store::writes::RewindWrites;
use crate::store::Result;

#[cfg(doc)]
use crate::store::Provider;

pub(super) async fn rewind_instance(
    p: &PostgresProvider,
    instance_id: &str,
    plan: &RewindPlan,
    updated_at: i64,
) -> Result<bool> {
    let mut tx = p.pool.begin().await?;
    let now: i64 = sqlx::query_scalar("SELECT reprise_now_ms()")
        .fetch_one(&mut *tx)
        .await?;
    if !rewind_in(&mut tx, instance_id, plan, updated_at, now).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    let change = Change {
        orchestrations: true,
        activities: !plan.activities.is_empty(),
        instances: vec![instance_id.to_owned()],
        ..Default::default()
    };
    p.signal(change, true).await;
    Ok(true)
}

/// Applies a rewind plan (see [`Provider::rewind_instance`]).
async fn rewind_in(
    conn: &mut PgConnection,
    instance_id: &str,
    plan: &RewindPlan,
    updated_at: i64,
    now: i64,
) -> Result<bool> {
    let w = RewindWrites::of(instance_id, plan, now);
    let updated = sqlx::query(
        "UPDATE instances SET status = 'Running', output = NULL, error = NULL, error_code = NULL,
            updated_at = $1, lock_owner = NULL, lock_until = 0, generation = generation + 1,
            custom_status = CASE WHEN $2 THEN $3 ELSE custom_status END,
            custom_status_version = custom_status_version + CASE WHEN $2 THEN 1 ELSE 0 END
         WHERE instance_id = $4 AND status IN ('Failed', 'Canceled') AND execution_id = $5 AND updated_at = $7
           AND (SELECT MAX(event_id) FROM history WHERE instance_id = $4 AND execution_id = $5) = $6",
    )
    .bind(now)
    .bind(w.custom_status_set)
    .bind(w.custom_status)
    .bind(instance_id)
    .bind(w.execution_id)
    .bind(w.last_event_id)
    .bind(updated_at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    sqlx::query(
        "DELETE FROM history WHERE instance_id = $1 AND execution_id = $2 AND event_id >= $3",
    )
    .bind(instance_id)
    .bind(w.execution_id)
    .bind(w.truncate_from)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM orchestrator_queue WHERE instance_id = $1 AND execution_id = $2
           AND kind IN ('ChildCompleted', 'ChildFailed')",
    )
    .bind(instance_id)
    .bind(w.execution_id)
    .execute(&mut *conn)
    .await?;
    if !w.open_children.is_empty() {
        sqlx::query(
            "DELETE FROM orchestrator_queue WHERE kind = 'Cancel' AND instance_id = ANY($1)",
        )
        .bind(&w.open_children)
        .execute(&mut *conn)
        .await?;
    }
    insert_activities(conn, instance_id, w.execution_id, now, &plan.activities).await?;
    QueueRows::of(&w.messages).insert(conn).await?;
    // A job run retried: the steps it gave up on run again; finished ones stay.
    sqlx::query("DELETE FROM job_steps WHERE instance_id = $1 AND state IN ('failed', 'retrying')")
        .bind(instance_id)
        .execute(&mut *conn)
        .await?;
    if let Some(entries) = &plan.kv {
        // The removed events had written values: the store goes back to the kept history's.
        sqlx::query("DELETE FROM kv WHERE instance_id = $1")
            .bind(instance_id)
            .execute(&mut *conn)
            .await?;
        let (keys, values, times): (Vec<&str>, Vec<&str>, Vec<i64>) = entries
            .iter()
            .map(|(k, v, t)| (k.as_str(), v.as_str(), *t))
            .collect();
        sqlx::query(
            "INSERT INTO kv (instance_id, key, value, updated_at)
             SELECT $1, e.key, e.value, e.updated_at
             FROM UNNEST($2::text[], $3::text[], $4::bigint[]) AS e(key, value, updated_at)",
        )
        .bind(instance_id)
        .bind(keys)
        .bind(values)
        .bind(times)
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}
