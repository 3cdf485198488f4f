//! Rows into the two queues, as column arrays: each batch is one statement over `UNNEST`.

use sqlx::postgres::PgConnection;

use crate::engine::{message_data, ActivityRequest, Message};
use crate::store::writes::{message_columns, retry_column, QueueInsert};
use crate::store::Result;

/// Orchestrator-queue rows as column arrays, inserted in order with one statement.
#[derive(Default)]
pub(super) struct QueueRows {
    pub instance_id: Vec<String>,
    pub kind: Vec<&'static str>,
    pub execution_id: Vec<Option<i64>>,
    pub task: Vec<Option<i32>>,
    pub visible_at: Vec<i64>,
    pub data: Vec<String>,
}

impl QueueRows {
    pub fn of(rows: &[QueueInsert]) -> Self {
        let mut queue = QueueRows::default();
        for row in rows {
            queue.push(&row.instance_id, &row.message, row.visible_at);
        }
        queue
    }

    pub fn push(&mut self, instance_id: &str, message: &Message, visible_at: i64) {
        let (exec, task) = message_columns(message);
        self.instance_id.push(instance_id.to_owned());
        self.kind.push(message.kind());
        self.execution_id.push(exec);
        self.task.push(task.map(|t| t as i32));
        self.visible_at.push(visible_at);
        self.data.push(message_data(message));
    }

    pub async fn insert(self, conn: &mut PgConnection) -> Result<()> {
        if self.instance_id.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO orchestrator_queue (instance_id, kind, execution_id, task, visible_at, data,
                name)
             SELECT m.instance_id, m.kind, m.execution_id, m.task, m.visible_at, m.data,
                (SELECT i.name FROM instances i WHERE i.instance_id = m.instance_id)
             FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::int[], $5::bigint[], $6::text[])
                 WITH ORDINALITY AS m(instance_id, kind, execution_id, task, visible_at, data, n)
             ORDER BY m.n",
        )
        .bind(self.instance_id)
        .bind(self.kind)
        .bind(self.execution_id)
        .bind(self.task)
        .bind(self.visible_at)
        .bind(self.data)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// Worker-queue rows (the columns a turn's activity requests give) as column arrays.
pub(super) struct ActivityRows {
    pub task: Vec<i32>,
    pub name: Vec<String>,
    pub input: Vec<String>,
    pub retry: Vec<Option<String>>,
    pub orchestration: Vec<String>,
    pub orchestration_version: Vec<Option<String>>,
    pub session_id: Vec<Option<String>>,
    pub tag: Vec<Option<String>>,
}

impl ActivityRows {
    pub fn of(activities: &[ActivityRequest]) -> Self {
        ActivityRows {
            task: activities.iter().map(|a| a.task as i32).collect(),
            name: activities.iter().map(|a| a.name.clone()).collect(),
            input: activities
                .iter()
                .map(|a| a.input.get().to_owned())
                .collect(),
            retry: activities.iter().map(retry_column).collect(),
            orchestration: activities.iter().map(|a| a.orchestration.clone()).collect(),
            orchestration_version: activities
                .iter()
                .map(|a| a.orchestration_version.clone())
                .collect(),
            session_id: activities.iter().map(|a| a.session_id.clone()).collect(),
            tag: activities.iter().map(|a| a.tag.clone()).collect(),
        }
    }
}

pub(super) async fn insert_activities(
    conn: &mut PgConnection,
    instance_id: &str,
    execution_id: i64,
    now: i64,
    activities: &[ActivityRequest],
) -> Result<()> {
    if activities.is_empty() {
        return Ok(());
    }
    let rows = ActivityRows::of(activities);
    sqlx::query(
        "INSERT INTO worker_queue (instance_id, execution_id, task, name, input, retry, visible_at,
             created_at, orchestration_name, orchestration_version, session_id, tag)
         SELECT $1, $2, a.task, a.name, a.input, a.retry, $3, $3, a.orchestration_name,
             a.orchestration_version, a.session_id, a.tag
         FROM UNNEST($4::int[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
             $10::text[], $11::text[])
             WITH ORDINALITY AS a(task, name, input, retry, orchestration_name,
                 orchestration_version, session_id, tag, n)
         ORDER BY a.n",
    )
    .bind(instance_id)
    .bind(execution_id)
    .bind(now)
    .bind(rows.task)
    .bind(rows.name)
    .bind(rows.input)
    .bind(rows.retry)
    .bind(rows.orchestration)
    .bind(rows.orchestration_version)
    .bind(rows.session_id)
    .bind(rows.tag)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
