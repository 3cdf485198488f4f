//! Rows into the two queues: orchestrator messages and activities, many per statement.

use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::engine::{message_data, ActivityRequest};
use crate::store::writes::{message_columns, retry_column, QueueInsert};
use crate::store::{DirectClaim, Result};

/// Rows per multi-row statement: SQLite refuses a statement with more than 32,766 bound
/// values, and the widest row here binds 12.
pub(super) const ROWS_PER_STATEMENT: usize = 1_000;
/// Values per `IN (...)` list, for the same limit.
pub(super) const IDS_PER_STATEMENT: usize = 10_000;

pub(super) async fn insert_messages(
    conn: &mut SqliteConnection,
    rows: &[QueueInsert],
) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        insert_message_rows(conn, chunk).await?;
    }
    Ok(())
}

async fn insert_message_rows(conn: &mut SqliteConnection, rows: &[QueueInsert]) -> Result<()> {
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO orchestrator_queue (instance_id, kind, execution_id, task, visible_at, data) ",
    );
    qb.push_values(rows, |mut b, r| {
        let (exec, task) = message_columns(&r.message);
        b.push_bind(r.instance_id.clone())
            .push_bind(r.message.kind())
            .push_bind(exec)
            .push_bind(task.map(i64::from))
            .push_bind(r.visible_at)
            .push_bind(message_data(&r.message));
    });
    qb.build().execute(&mut *conn).await?;
    Ok(())
}

/// Inserts worker rows; with `claim`, the first `claim.count` are written already leased to
/// `claim.owner` (generation 1, first delivery). Returns `(task, seq)` of the claimed rows.
pub(super) async fn insert_activities(
    conn: &mut SqliteConnection,
    instance_id: &str,
    execution_id: i64,
    now: i64,
    activities: &[ActivityRequest],
    claim: Option<(&DirectClaim, i64)>,
) -> Result<Vec<(u32, i64)>> {
    let mut leased = Vec::new();
    for (n, chunk) in activities.chunks(ROWS_PER_STATEMENT).enumerate() {
        let offset = n * ROWS_PER_STATEMENT;
        let rows = insert_activity_rows(conn, instance_id, execution_id, now, chunk, offset, claim);
        leased.extend(rows.await?);
    }
    Ok(leased)
}

/// One statement of [`insert_activities`]: `activities` are the ones from `offset` on.
async fn insert_activity_rows(
    conn: &mut SqliteConnection,
    instance_id: &str,
    execution_id: i64,
    now: i64,
    activities: &[ActivityRequest],
    offset: usize,
    claim: Option<(&DirectClaim, i64)>,
) -> Result<Vec<(u32, i64)>> {
    let claimed = claim.map_or(0, |(d, _)| d.count);
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO worker_queue (instance_id, execution_id, task, name, input, retry, visible_at,
            created_at, lock_owner, lock_until, generation, deliveries) ",
    );
    qb.push_values(activities.iter().enumerate(), |mut b, (i, a)| {
        let lease = claim.filter(|_| offset + i < claimed);
        b.push_bind(instance_id)
            .push_bind(execution_id)
            .push_bind(a.task as i64)
            .push_bind(&a.name)
            .push_bind(a.input.get())
            .push_bind(retry_column(a))
            .push_bind(now)
            .push_bind(now)
            .push_bind(lease.map(|(d, _)| d.owner.clone()))
            // From the clock at commit, not the turn's claim time: the turn may have run long.
            .push_bind(lease.map_or(0, |(d, commit_now)| commit_now + d.lease_ms))
            .push_bind(lease.is_some() as i64)
            .push_bind(lease.is_some() as i64);
    });
    if claimed <= offset {
        qb.build().execute(&mut *conn).await?;
        return Ok(Vec::new());
    }
    qb.push(" RETURNING task, seq, lock_owner IS NOT NULL AS leased");
    let rows = qb.build().fetch_all(&mut *conn).await?;
    let mut leased = Vec::new();
    for r in &rows {
        if r.try_get::<bool, _>("leased")? {
            leased.push((r.try_get::<i64, _>("task")? as u32, r.try_get("seq")?));
        }
    }
    Ok(leased)
}

/// Closes an `IN (` list of integers.
pub(super) fn in_list(qb: &mut QueryBuilder<Sqlite>, values: impl IntoIterator<Item = i64>) {
    let mut sep = qb.separated(", ");
    for v in values {
        sep.push_bind(v);
    }
    sep.push_unseparated(")");
}
