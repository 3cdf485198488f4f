//! Reading rows, once for both stores. Every column is read with `try_get`: a missing column
//! or a value of an unexpected type is a [`StoreError`], never a panic; a payload this
//! version cannot parse is [`StoreError::Corrupt`].

use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::engine::{event_from_row, message_from_row, HistoryRow, QueuedMessage};

use super::{
    ActivityAttempt, ActivityItem, ExecutionInfo, InstanceInfo, InstancePage, JobLog, JobStep,
    OrchestrationItem, PageCursor, QueueDepths, Result, RuntimeInfo, StoreError, StoredStatus,
    SystemMetrics, UnservedName,
};

/// How long an instance with a row this version cannot read is kept out of claims.
pub(crate) const UNREADABLE_RETRY_MS: i64 = 60_000;

pub(crate) fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// A row of either store, read by column name. The stores differ in one column type only:
/// `task`, `attempt` and `deliveries` are 64-bit integers on SQLite, 32-bit on PostgreSQL.
pub(crate) trait Columns {
    fn int(&self, column: &str) -> Result<i64>;
    /// A `task`, `attempt` or `deliveries` column.
    fn small(&self, column: &str) -> Result<u32>;
    fn text(&self, column: &str) -> Result<&str>;
    fn opt_string(&self, column: &str) -> Result<Option<String>>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>>;
    fn flag(&self, column: &str) -> Result<bool>;

    fn string(&self, column: &str) -> Result<String> {
        self.text(column).map(str::to_owned)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn int(&self, column: &str) -> Result<i64> {
        Ok(self.get(column)?)
    }

    fn small(&self, column: &str) -> Result<u32> {
        Ok(self.get::<_, i64>(column)? as u32)
    }

    fn text(&self, column: &str) -> Result<&str> {
        self.get_ref(column)?
            .as_str()
            .map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
    }

    fn opt_string(&self, column: &str) -> Result<Option<String>> {
        Ok(self.get(column)?)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        Ok(self.get(column)?)
    }

    fn flag(&self, column: &str) -> Result<bool> {
        Ok(self.get(column)?)
    }
}

impl Columns for PgRow {
    fn int(&self, column: &str) -> Result<i64> {
        Ok(self.try_get(column)?)
    }

    fn small(&self, column: &str) -> Result<u32> {
        Ok(self.try_get::<i32, _>(column)? as u32)
    }

    fn text(&self, column: &str) -> Result<&str> {
        Ok(self.try_get(column)?)
    }

    fn opt_string(&self, column: &str) -> Result<Option<String>> {
        Ok(self.try_get(column)?)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        Ok(self.try_get(column)?)
    }

    fn flag(&self, column: &str) -> Result<bool> {
        Ok(self.try_get(column)?)
    }
}

/// A history row: `event_id, ts, kind, data`.
pub(crate) fn history_row(row: &impl Columns) -> Result<HistoryRow> {
    Ok(HistoryRow {
        event_id: row.int("event_id")? as u64,
        ts: row.int("ts")?,
        event: event_from_row(row.text("kind")?, row.text("data")?).map_err(corrupt)?,
    })
}

/// An instance's last history event read beside a claim (`last_event_id`, `last_ts`,
/// `last_kind`, `last_data`; `None` when its history is empty).
pub(crate) fn last_history_row(row: &impl Columns) -> Result<Option<HistoryRow>> {
    let Some(event_id) = row.opt_int("last_event_id")? else {
        return Ok(None);
    };
    Ok(Some(HistoryRow {
        event_id: event_id as u64,
        ts: row.int("last_ts")?,
        event: event_from_row(row.text("last_kind")?, row.text("last_data")?).map_err(corrupt)?,
    }))
}

/// A `runtimes` row (every column), read at the store's time `now`.
pub(crate) fn runtime_info(row: &impl Columns, now: i64) -> Result<RuntimeInfo> {
    Ok(RuntimeInfo {
        runtime_id: row.string("runtime_id")?,
        worker_node_id: row.opt_string("worker_node_id")?,
        host: row.string("host")?,
        pid: row.int("pid")?,
        started_at: row.int("started_at")?,
        heartbeat_at: row.int("heartbeat_at")?,
        stale_after_ms: row.int("stale_after_ms")?,
        capabilities: row.string("capabilities")?,
        now,
    })
}

/// A row of an unserved-work query: `kind, name, last_seen_at, waiting` (`None` on a row
/// with a NULL `kind`).
pub(crate) fn unserved_name(row: &impl Columns) -> Result<Option<UnservedName>> {
    let Some(kind) = row.opt_string("kind")? else {
        return Ok(None);
    };
    Ok(Some(UnservedName {
        kind,
        name: row.string("name")?,
        last_seen_at: row.opt_int("last_seen_at")?,
        waiting: row.int("waiting")? as u64,
    }))
}

/// A delivered orchestrator-queue row: `seq, deliveries, kind, data`.
pub(crate) fn queued_message(row: &impl Columns) -> Result<QueuedMessage> {
    Ok(QueuedMessage {
        seq: row.int("seq")?,
        deliveries: row.small("deliveries")?,
        message: message_from_row(row.text("kind")?, row.text("data")?).map_err(corrupt)?,
    })
}

/// An `instances` row (every column).
pub(crate) fn instance_info(row: &impl Columns) -> Result<InstanceInfo> {
    Ok(InstanceInfo {
        instance_id: row.string("instance_id")?,
        name: row.string("name")?,
        version: row.opt_string("version")?,
        status: row.string("status")?,
        execution_id: row.int("execution_id")? as u64,
        input: row.opt_string("input")?,
        output: row.opt_string("output")?,
        error: row.opt_string("error")?,
        error_code: row.opt_string("error_code")?,
        custom_status: row.opt_string("custom_status")?,
        custom_status_version: row.int("custom_status_version")?,
        parent_instance_id: row.opt_string("parent_instance_id")?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
    })
}

/// A `job_steps` row.
pub(crate) fn job_step(r: &impl Columns) -> Result<JobStep> {
    Ok(JobStep {
        name: r.string("name")?,
        state: r.string("state")?,
        value: r.opt_string("value")?,
        attempts: r.int("attempts")? as u32,
        until_ms: r.opt_int("until_ms")?,
        event: r.opt_string("event")?,
        updated_at: r.int("updated_at")?,
    })
}

/// A `job_logs` row.
pub(crate) fn job_log(r: &impl Columns) -> Result<JobLog> {
    Ok(JobLog {
        seq: r.int("seq")?,
        level: r.string("level")?,
        message: r.string("message")?,
        data: r.opt_string("data")?,
        step: r.opt_string("step")?,
        created_at: r.int("created_at")?,
    })
}

/// A claimed `worker_queue` row.
pub(crate) fn activity_item(row: &impl Columns) -> Result<ActivityItem> {
    Ok(ActivityItem {
        seq: row.int("seq")?,
        generation: row.int("generation")?,
        instance_id: row.string("instance_id")?,
        execution_id: row.int("execution_id")? as u64,
        task: row.small("task")?,
        name: row.string("name")?,
        input: row.string("input")?,
        attempt: row.small("attempt")?,
        retry: row
            .opt_string("retry")?
            .map(|r| serde_json::from_str(&r))
            .transpose()
            .map_err(corrupt)?,
        deliveries: row.small("deliveries")?,
        created_at: row.int("created_at")?,
        orchestration: row.string("orchestration_name")?,
        orchestration_version: row.opt_string("orchestration_version")?,
        session_id: row.opt_string("session_id")?,
        tag: row.opt_string("tag")?,
    })
}

/// A `worker_queue` row as [`ActivityAttempt`]: `execution_id, task, name, attempt, running,
/// visible_at`.
pub(crate) fn activity_attempt(row: &impl Columns) -> Result<ActivityAttempt> {
    Ok(ActivityAttempt {
        execution_id: row.int("execution_id")? as u64,
        task: row.small("task")?,
        name: row.string("name")?,
        attempt: row.small("attempt")?,
        running: row.flag("running")?,
        visible_at: row.int("visible_at")?,
    })
}

/// One claimed instance with its rows read: messages and history are parsed apart so that
/// an unreadable row sets only its own instance aside.
pub(crate) struct Claimed {
    pub instance_id: String,
    pub execution_id: i64,
    pub generation: i64,
    pub name: String,
    pub created_at: i64,
    /// The claim's timestamp from the store's clock.
    pub now: i64,
    pub messages: Result<Vec<QueuedMessage>>,
    pub history: Result<Vec<HistoryRow>>,
    /// The event id `history` was read from.
    pub history_from: u64,
}

/// The claimed instances whose rows all read, and the ids of the others, which the caller
/// sets aside for [`UNREADABLE_RETRY_MS`]: one unreadable row must not stall every other
/// instance.
pub(crate) fn sort_claimed(claimed: Vec<Claimed>) -> (Vec<OrchestrationItem>, Vec<String>) {
    let mut items = Vec::with_capacity(claimed.len());
    let mut unreadable = Vec::new();
    for c in claimed {
        match (c.messages, c.history) {
            (Ok(messages), Ok(history)) => items.push(OrchestrationItem {
                instance_id: c.instance_id,
                execution_id: c.execution_id as u64,
                generation: c.generation,
                name: c.name,
                created_at: c.created_at,
                history,
                history_from: c.history_from,
                messages,
                now: c.now,
            }),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(instance_id = %c.instance_id, error = %e, "instance has an unreadable row; set aside for a minute");
                unreadable.push(c.instance_id);
            }
        }
    }
    (items, unreadable)
}

/// A page of at most `limit` instances from `instances`, read with one row more than the
/// page holds: that extra row says whether more follow.
pub(crate) fn page_of(mut instances: Vec<InstanceInfo>, limit: usize) -> InstancePage {
    let more = instances.len() > limit;
    instances.truncate(limit);
    let next_cursor = more
        .then(|| instances.last())
        .flatten()
        .map(|i| PageCursor {
            created_at: i.created_at,
            instance_id: i.instance_id.clone(),
        });
    InstancePage {
        instances,
        next_cursor,
    }
}

/// The executions of an instance from its history, `(execution_id, first ts, last ts,
/// events)` by execution in order, and its current execution (listed even while it has no
/// history).
pub(crate) fn executions_of(rows: Vec<(i64, i64, i64, i64)>, current: i64) -> Vec<ExecutionInfo> {
    let mut out: Vec<ExecutionInfo> = rows
        .into_iter()
        .map(|(e, first, last, n)| ExecutionInfo {
            execution_id: e as u64,
            first_event_at: Some(first),
            last_event_at: Some(last),
            event_count: n as u64,
        })
        .collect();
    if out.last().map(|e| e.execution_id) != Some(current as u64) {
        out.push(ExecutionInfo {
            execution_id: current as u64,
            first_event_at: None,
            last_event_at: None,
            event_count: 0,
        });
    }
    out
}

/// Instance counts from `(status, count)` rows.
pub(crate) fn metrics_of(rows: Vec<(String, i64)>) -> SystemMetrics {
    let mut m = SystemMetrics::default();
    for (status, n) in rows {
        let n = n as u64;
        match status.as_str() {
            "#executions" => m.executions = n,
            "#events" => m.events = n,
            _ => m.total += n,
        }
        // The counts are the generator face's: Pending is running, Canceled failed.
        match StoredStatus::parse(&status).map(StoredStatus::generator_face) {
            Some("Running") => m.running += n,
            Some("Completed") => m.completed += n,
            Some("Failed") => m.failed += n,
            _ => {}
        }
    }
    m
}

/// Queue depths from the counts `(orchestrator visible, orchestrator delayed, worker
/// visible, worker running, worker delayed)`.
pub(crate) fn queue_depths_of((ov, od, wv, wr, wd): (i64, i64, i64, i64, i64)) -> QueueDepths {
    QueueDepths {
        orchestrator_visible: ov as u64,
        orchestrator_delayed: od as u64,
        worker_visible: wv as u64,
        worker_running: wr as u64,
        worker_delayed: wd as u64,
    }
}
