//! Following one instance: its history as lifecycle events, plus what its activity rows
//! show (an attempt running, a retry waiting). Each step reads what is new since a cursor
//! the caller keeps, so a watch survives any number of steps and continue-as-new.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::engine::lifecycle::Lifecycle;
use crate::engine::Event;
use crate::store::{now_ms, Provider, Result, StoredStatus};

/// Where a watch is. `execution_id` 0: not begun yet.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchCursor {
    pub execution_id: u64,
    /// The last history event reported in that execution, and its time: a different time
    /// at that id later means the history was rewound (`retryInstance`) under the watch.
    pub event_id: u64,
    #[serde(default)]
    pub event_ts: i64,
    /// Activity attempts already reported (`s:` started, `r:` retried, then exec:task:attempt).
    #[serde(default)]
    pub seen: BTreeSet<String>,
    /// Begin at the end: report only what happens from now on.
    #[serde(default)]
    pub skip_existing: bool,
}

/// What one step found.
#[derive(Debug, Default)]
pub struct WatchStep {
    /// Lifecycle events as JSON objects, in order.
    pub events: Vec<Box<serde_json::value::RawValue>>,
    /// The instance finished (its completion or failure was reported): nothing more comes.
    pub done: bool,
    /// No such instance (never was, or deleted).
    pub missing: bool,
}

/// Reads what happened to `instance_id` since `cursor`, and moves the cursor past it.
pub async fn watch_step(
    provider: &dyn Provider,
    instance_id: &str,
    cursor: &mut WatchCursor,
) -> Result<WatchStep> {
    let mut step = WatchStep::default();
    let Some(info) = provider.instance(instance_id).await? else {
        step.missing = true;
        step.done = true;
        return Ok(step);
    };
    if cursor.execution_id == 0 {
        if cursor.skip_existing {
            if !StoredStatus::is_active(&info.status) {
                step.done = true;
                return Ok(step);
            }
            cursor.execution_id = info.execution_id;
            let last = provider
                .history(instance_id, Some(info.execution_id))
                .await?
                .last()
                .map(|r| (r.event_id, r.ts));
            (cursor.event_id, cursor.event_ts) = last.unwrap_or((0, 0));
            // What is already under way is not news; an attempt still waiting to start is.
            for a in provider.activity_attempts(instance_id).await? {
                let at = format!("{}:{}:{}", a.execution_id, a.task, a.attempt);
                if a.running {
                    cursor.seen.insert(format!("s:{at}"));
                }
                if a.attempt > 1 {
                    cursor.seen.insert(format!("r:{at}"));
                }
            }
            return Ok(step);
        }
        cursor.execution_id = provider
            .list_executions(instance_id)
            .await?
            .first()
            .map_or(info.execution_id, |e| e.execution_id);
    }
    // Attempts before history: an attempt's row is written with its `ActivityScheduled`, so
    // the history read next holds the scheduling of every attempt reported after it.
    let attempts = provider.activity_attempts(instance_id).await?;
    let mut settled_now = BTreeSet::new();
    loop {
        // Read from the last reported event on, to check it is still there.
        let mut rows = provider
            .history_after(
                instance_id,
                cursor.execution_id,
                cursor.event_id.saturating_sub(1),
            )
            .await?;
        if cursor.event_id > 0 {
            let same = rows
                .first()
                .is_some_and(|r| r.event_id == cursor.event_id && r.ts == cursor.event_ts);
            if same {
                rows.remove(0);
            } else {
                // Rewound: go on from where the retry took over.
                let all = provider
                    .history(instance_id, Some(cursor.execution_id))
                    .await?;
                let from = all
                    .iter()
                    .rposition(|r| matches!(r.event, Event::ExecutionRetried { .. }))
                    .unwrap_or(all.len());
                rows = all[from..].to_vec();
            }
        }
        for row in &rows {
            step.events.push(
                Lifecycle::of_event(
                    &row.event,
                    instance_id,
                    cursor.execution_id,
                    row.event_id,
                    row.ts,
                )
                .to_raw(),
            );
            cursor.event_id = row.event_id;
            cursor.event_ts = row.ts;
            if let Event::ActivityCompleted { task, .. }
            | Event::ActivityFailed { task, .. }
            | Event::TaskCanceled { task } = &row.event
            {
                settled_now.insert((cursor.execution_id, *task));
            }
            if matches!(
                row.event,
                Event::ExecutionCompleted { .. } | Event::ExecutionFailed { .. }
            ) {
                step.done = true;
            }
        }
        if cursor.execution_id >= info.execution_id {
            break;
        }
        // An earlier execution is complete once a later one exists: go on to the next.
        cursor.execution_id += 1;
        cursor.event_id = 0;
        cursor.event_ts = 0;
    }
    if step.done {
        return Ok(step);
    }
    // An attempt whose task settled in the history just reported is over: reporting it now
    // would put it after its own outcome.
    for a in attempts.iter().filter(|a| {
        a.execution_id == cursor.execution_id && !settled_now.contains(&(a.execution_id, a.task))
    }) {
        let at = format!("{}:{}:{}", a.execution_id, a.task, a.attempt);
        let mut report = |kind: &'static str, key: String, retry_at: Option<i64>| {
            if cursor.seen.insert(key) {
                let mut l = Lifecycle::new(kind, instance_id, a.execution_id, now_ms());
                l.task = Some(a.task);
                l.name = Some(&a.name);
                l.attempt = Some(a.attempt);
                l.retry_at = retry_at;
                step.events.push(l.to_raw());
            }
        };
        if a.attempt > 1 {
            report("activityRetried", format!("r:{at}"), Some(a.visible_at));
        }
        if a.running {
            report("activityStarted", format!("s:{at}"), None);
        }
    }
    // Attempts whose rows are gone (settled) need no memory.
    let prefixes: BTreeSet<String> = attempts
        .iter()
        .map(|a| format!("{}:{}:", a.execution_id, a.task))
        .collect();
    cursor
        .seen
        .retain(|k| prefixes.iter().any(|p| k[2..].starts_with(p.as_str())));
    Ok(step)
}
