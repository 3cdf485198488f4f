//! Rewinding a failed instance (see [`Provider::rewind_instance`]) in one transaction.

use sqlx::sqlite::SqliteConnection;
use sqlx::QueryBuilder;

use super::queue::{insert_activities, insert_messages};
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
        .write(move |conn| {
            Box::pin(
                async move { rewind_in(conn, &id, &plan_owned, updated_at, clock.now_ms()).await },
            )
        })
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
async fn rewind_in(
    conn: &mut SqliteConnection,
    instance_id: &str,
    plan: &RewindPlan,
    updated_at: i64,
    now: i64,
) -> Result<bool> {
    let w = RewindWrites::of(instance_id, plan, now);
    let updated = sqlx::query(
        "UPDATE instances SET status = 'Running', output = NULL, error = NULL, error_code = NULL,
            updated_at = ?1, lock_owner = NULL, lock_until = 0, generation = generation + 1,
            custom_status = CASE WHEN ?2 THEN ?3 ELSE custom_status END,
            custom_status_version = custom_status_version + ?2
         WHERE instance_id = ?4 AND status IN ('Failed', 'Canceled') AND execution_id = ?5 AND updated_at = ?7
           AND (SELECT MAX(event_id) FROM history WHERE instance_id = ?4 AND execution_id = ?5) = ?6",
    )
    .bind(now)
    .bind(w.custom_status_set as i64)
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
        "DELETE FROM history WHERE instance_id = ?1 AND execution_id = ?2 AND event_id >= ?3",
    )
    .bind(instance_id)
    .bind(w.execution_id)
    .bind(w.truncate_from)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM orchestrator_queue WHERE instance_id = ?1 AND execution_id = ?2
           AND kind IN ('ChildCompleted', 'ChildFailed')",
    )
    .bind(instance_id)
    .bind(w.execution_id)
    .execute(&mut *conn)
    .await?;
    if !w.open_children.is_empty() {
        let mut qb = QueryBuilder::new(
            "DELETE FROM orchestrator_queue WHERE kind = 'Cancel' AND instance_id IN (",
        );
        let mut sep = qb.separated(", ");
        for child in &w.open_children {
            sep.push_bind(child.clone());
        }
        sep.push_unseparated(")");
        qb.build().execute(&mut *conn).await?;
    }
    insert_activities(
        conn,
        instance_id,
        w.execution_id,
        now,
        &plan.activities,
        None,
    )
    .await?;
    insert_messages(conn, &w.messages).await?;
    Ok(true)
}
