//! Rows into the two queues: orchestrator messages and activities, many per statement.

use rusqlite::types::Value;

use super::sql::Sql;
use super::writer::Db;
use crate::engine::{message_data, ActivityRequest};
use crate::store::rows::Columns;
use crate::store::writes::{message_columns, retry_column, QueueInsert};
use crate::store::{DirectClaim, Result};

/// Rows per multi-row statement: SQLite refuses a statement with more than 32,766 bound
/// values, and the widest row here binds 12.
pub(super) const ROWS_PER_STATEMENT: usize = 1_000;
/// Values per `IN (...)` list, for the same limit.
pub(super) const IDS_PER_STATEMENT: usize = 10_000;

pub(super) fn insert_messages(db: &Db, rows: &[QueueInsert]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new(
            "INSERT INTO orchestrator_queue (instance_id, kind, execution_id, task, visible_at, data,
                name)
             SELECT v.*, (SELECT i.name FROM instances i WHERE i.instance_id = v.column1)
             FROM (VALUES ",
        );
        sql.tuples(chunk, |r| {
            let (exec, task) = message_columns(&r.message);
            vec![
                r.instance_id.clone().into(),
                r.message.kind().to_owned().into(),
                exec.into(),
                task.map(i64::from).into(),
                r.visible_at.into(),
                message_data(&r.message).into(),
            ]
        })
        .push(") AS v");
        sql.execute(db)?;
    }
    Ok(())
}

/// Inserts worker rows; with `claim`, the first `claim.count` are written already leased to
/// `claim.owner` (generation 1, first delivery). Returns `(task, seq)` of the claimed rows.
pub(super) fn insert_activities(
    db: &Db,
    instance_id: &str,
    execution_id: i64,
    now: i64,
    activities: &[ActivityRequest],
    claim: Option<(&DirectClaim, i64)>,
) -> Result<Vec<(u32, i64)>> {
    let claimed = claim.map_or(0, |(d, _)| d.count);
    let mut leased = Vec::new();
    for (n, chunk) in activities.chunks(ROWS_PER_STATEMENT).enumerate() {
        let offset = n * ROWS_PER_STATEMENT;
        let mut sql = Sql::new(
            "INSERT INTO worker_queue (instance_id, execution_id, task, name, input, retry, visible_at,
                created_at, lock_owner, lock_until, generation, deliveries, orchestration_name,
                orchestration_version, session_id, tag) VALUES ",
        );
        sql.tuples(chunk.iter().enumerate(), |(i, a)| {
            let lease = claim.filter(|_| offset + i < claimed);
            vec![
                instance_id.to_owned().into(),
                execution_id.into(),
                (a.task as i64).into(),
                a.name.clone().into(),
                a.input.get().to_owned().into(),
                retry_column(a).into(),
                now.into(),
                now.into(),
                lease.map(|(d, _)| d.owner.clone()).into(),
                // From the clock at commit, not the turn's claim time: the turn may have run
                // long.
                lease
                    .map_or(0, |(d, commit_now)| commit_now + d.lease_ms)
                    .into(),
                Value::Integer(lease.is_some() as i64),
                Value::Integer(lease.is_some() as i64),
                a.orchestration.clone().into(),
                a.orchestration_version.clone().into(),
                a.session_id.clone().into(),
                a.tag.clone().into(),
            ]
        });
        if claimed <= offset {
            sql.execute(db)?;
            continue;
        }
        sql.push(" RETURNING task, seq, lock_owner IS NOT NULL AS leased");
        for (task, seq, is_leased) in sql.rows(db, |r| {
            Ok((r.small("task")?, r.int("seq")?, r.flag("leased")?))
        })? {
            if is_leased {
                leased.push((task, seq));
            }
        }
    }
    Ok(leased)
}
