//! The PostgreSQL provider: a connection pool on one schema (a tenant), claims batched with
//! `FOR UPDATE SKIP LOCKED`, one transaction per turn fenced by the lease generation, and
//! wake-ups between processes over LISTEN/NOTIFY (one channel per schema), sent after the
//! commit and coalesced. Many processes share one database; leases are taken over once they
//! expire. The store's clock is the database's (`reprise_now_ms()`, see the migration).

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, Executor, Postgres, QueryBuilder, Row};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{
    directly_claimed, executions_to_prune, ActivityAttempt, ActivityItem, ActivityResult,
    DeleteFilter, Deletion, ExecutionInfo, InstanceFilter, InstanceInfo, InstancePage,
    InstanceUpdate, Lease, OrchestrationItem, PageCursor, Provider, QueueDepths, Result,
    StoreError, SystemMetrics, TurnCommit, Wakers,
};
use crate::engine::{
    event_data, event_from_row, message_data, message_from_row, ActivityRequest, HistoryRow,
    Message, ParentLink, QueuedMessage, RewindPlan, StartRequest, TaskError,
};

/// The schema used when none is given.
pub const DEFAULT_SCHEMA: &str = "public";

/// PostgreSQL's identifier limit (NAMEDATALEN - 1), for schemas, channels and
/// `application_name`.
const MAX_IDENTIFIER: usize = 63;

/// How long an instance with a row this version cannot read is kept out of claims.
const UNREADABLE_RETRY_MS: i64 = 60_000;

/// Largest NOTIFY payload sent (the server refuses 8000 bytes and more); a larger change is
/// sent as "every instance changed".
const MAX_NOTIFY_PAYLOAD: usize = 4_000;

/// Options for [`PostgresProvider::connect`].
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The schema holding this store's tables (created if missing); `public` by default.
    /// Schemas are fully isolated from each other: one per tenant.
    pub schema: Option<String>,
    /// Most connections the pool opens (the LISTEN connection is extra).
    pub pool_size: u32,
    /// How often a waiting client re-reads an instance as a fallback for missed
    /// notifications.
    pub poll_interval_ms: u64,
    /// Bound on connecting (the first connection and every pool acquire).
    pub connect_timeout_ms: u64,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: None,
            pool_size: 10,
            poll_interval_ms: 1_000,
            connect_timeout_ms: 10_000,
        }
    }
}

pub struct PostgresProvider {
    pool: PgPool,
    schema: String,
    wakers: Arc<Wakers>,
    /// Changes for the notifier task, which tells the other processes.
    changes: mpsc::UnboundedSender<Outgoing>,
    poll_interval: Duration,
    listener: JoinHandle<()>,
}

impl Drop for PostgresProvider {
    fn drop(&mut self) {
        // The notifier ends by itself once it has sent what is queued (its sender is gone).
        self.listener.abort();
    }
}

/// Checks a schema name: 1 to 63 ASCII letters, digits or underscores, not `pg_*`.
pub fn validate_schema(schema: &str) -> Result<String> {
    if schema.is_empty()
        || schema.len() > MAX_IDENTIFIER
        || !schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(StoreError::Config(format!(
            "schema name '{schema}' is invalid: use 1 to {MAX_IDENTIFIER} ASCII letters, digits or underscores"
        )));
    }
    if schema.to_ascii_lowercase().starts_with("pg_") {
        return Err(StoreError::Config(format!(
            "schema name '{schema}' is reserved: names starting with pg_ belong to PostgreSQL"
        )));
    }
    Ok(schema.to_owned())
}

/// The URL with its password masked, for messages.
pub fn redact_url(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let end = url[start..]
        .find(['/', '?'])
        .map(|i| start + i)
        .unwrap_or(url.len());
    let authority = &url[start..end];
    match authority.rfind('@') {
        Some(at) => match authority[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..start],
                &authority[..colon],
                &url[start + at..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `postgres://` or `postgresql://` URLs only.
fn parse_url(url: &str) -> Result<PgConnectOptions> {
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(StoreError::Config("the PostgreSQL URL is empty".into()));
    }
    if !(trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://")) {
        return Err(StoreError::Config(format!(
            "'{}' is not a PostgreSQL URL (expected postgres://user:password@host:port/database)",
            redact_url(trimmed)
        )));
    }
    PgConnectOptions::from_str(trimmed).map_err(|e| {
        StoreError::Config(format!(
            "invalid PostgreSQL URL '{}': {e}",
            redact_url(trimmed)
        ))
    })
}

fn describe_target(o: &PgConnectOptions) -> String {
    let place = match o.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => format!("{}:{}", o.get_host(), o.get_port()),
    };
    format!(
        "{place}/{} as {}",
        o.get_database().unwrap_or(o.get_username()),
        o.get_username()
    )
}

fn truncate(mut s: String, max: usize) -> String {
    // Identifiers here are ASCII: byte and char boundaries agree.
    s.truncate(max);
    s
}

/// `application_name` of every connection: lets operators (and tests) find a store's
/// backends in `pg_stat_activity`.
pub fn application_name(schema: &str) -> String {
    truncate(format!("reprise:{schema}"), MAX_IDENTIFIER)
}

/// The NOTIFY channel of a schema: `reprise_<schema>`, hashed when that is too long.
pub fn channel_name(schema: &str) -> String {
    let channel = format!("reprise_{schema}");
    if channel.len() <= MAX_IDENTIFIER {
        return channel;
    }
    let hash = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, schema.as_bytes())
        .simple()
        .to_string();
    format!("reprise_{}_{}", &schema[..38], &hash[..16])
}

fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn connect_error(target: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("cannot connect to PostgreSQL at {target}: {e}"))
}

impl PostgresProvider {
    /// Connects, creates the schema if missing and runs the migrations in it, then starts
    /// listening for other processes' changes. An unreachable server or a bad URL fails
    /// within `connect_timeout_ms` with a [`StoreError::Unavailable`] naming the server (a bad
    /// URL or option: [`StoreError::Config`]).
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Arc<Self>> {
        let schema = validate_schema(options.schema.as_deref().unwrap_or(DEFAULT_SCHEMA))?;
        if options.pool_size == 0 {
            return Err(StoreError::Config(
                "the pool size must be at least 1".into(),
            ));
        }
        let timeout = Duration::from_millis(options.connect_timeout_ms.max(1));
        let connect = parse_url(url)?
            .application_name(&application_name(&schema))
            .disable_statement_logging();
        let target = describe_target(&connect);

        // One direct connection first: its error says what is wrong (the pool would retry a
        // refused connection until its timeout and then only say that it timed out).
        let mut conn =
            match tokio::time::timeout(timeout, PgConnection::connect_with(&connect)).await {
                Err(_) => {
                    return Err(connect_error(
                        &target,
                        format!("no answer within {} ms", timeout.as_millis()),
                    ))
                }
                Ok(Err(e)) => return Err(connect_error(&target, e)),
                Ok(Ok(conn)) => conn,
            };
        prepare_schema(&mut conn, &schema).await?;
        let _ = conn.close().await;

        let set_path = format!("SET search_path TO {}", quote_ident(&schema));
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size)
            .acquire_timeout(timeout)
            .after_connect(move |conn, _meta| {
                let sql = set_path.clone();
                Box::pin(async move {
                    conn.execute(sql.as_str()).await?;
                    Ok(())
                })
            })
            .connect_lazy_with(connect.clone());

        // Notifications: a connection of its own, outside the pool.
        let listen_pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(timeout)
            .connect_lazy_with(connect);
        let channel = channel_name(&schema);
        let listener = listen(&listen_pool, &channel)
            .await
            .map_err(|e| connect_error(&target, format!("LISTEN failed: {e}")))?;
        let sender = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let wakers = Arc::new(Wakers::default());
        let listener = tokio::spawn(listen_loop(
            listen_pool,
            channel.clone(),
            sender.clone(),
            wakers.clone(),
            listener,
        ));
        let (changes, rx) = mpsc::unbounded_channel();
        tokio::spawn(notify_loop(pool.clone(), channel, sender, rx));
        Ok(Arc::new(PostgresProvider {
            pool,
            schema,
            wakers,
            changes,
            poll_interval: Duration::from_millis(options.poll_interval_ms.max(1)),
            listener,
        }))
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Signals this process's wakers now and the other processes' through the notifier;
    /// with `wait`, returns once the notification was sent (a client process may exit
    /// right after its call).
    async fn signal(&self, change: Change, wait: bool) {
        change.apply(&self.wakers);
        let (done, sent) = if wait {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        if self.changes.send(Outgoing { change, done }).is_ok() {
            if let Some(sent) = sent {
                let _ = sent.await;
            }
        }
    }
}

/// Creates the schema if needed, points `conn` at it and runs the migrations there.
async fn prepare_schema(conn: &mut PgConnection, schema: &str) -> Result<()> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(&mut *conn)
            .await?;
    if !exists {
        // Serialized, so two processes creating the same schema do not race.
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("reprise:create-schema:{schema}"))
            .execute(&mut *tx)
            .await?;
        let create = format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema));
        tx.execute(create.as_str())
            .await
            .map_err(|e| StoreError::Config(format!("cannot create schema '{schema}': {e}")))?;
        tx.commit().await?;
    }
    let set_path = format!("SET search_path TO {}", quote_ident(schema));
    conn.execute(set_path.as_str()).await?;
    sqlx::migrate!("./migrations/postgres")
        .run_direct(conn)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Wake-ups between processes
// ---------------------------------------------------------------------------------------

fn is_false(b: &bool) -> bool {
    !*b
}

/// What a commit changed, as other processes need to hear it. Serialized as the NOTIFY
/// payload: `{"s":"<sender>","o":true,"a":true,"i":["id"],"all":true}`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Change {
    /// The provider that sent it: it ignores its own notifications (it signalled itself).
    #[serde(rename = "s", default)]
    sender: String,
    /// Orchestration messages became visible (or may have).
    #[serde(rename = "o", default, skip_serializing_if = "is_false")]
    orchestrations: bool,
    /// Activities were enqueued or released.
    #[serde(rename = "a", default, skip_serializing_if = "is_false")]
    activities: bool,
    /// Instances whose status or custom status changed.
    #[serde(rename = "i", default, skip_serializing_if = "Vec::is_empty")]
    instances: Vec<String>,
    /// Any instance may have changed.
    #[serde(rename = "all", default, skip_serializing_if = "is_false")]
    all_instances: bool,
}

impl Change {
    fn everything() -> Self {
        Change {
            orchestrations: true,
            activities: true,
            all_instances: true,
            ..Default::default()
        }
    }

    fn apply(&self, wakers: &Wakers) {
        if self.orchestrations {
            wakers.orchestrations.notify_one();
        }
        if self.activities {
            wakers.activities.notify_one();
        }
        if self.all_instances {
            wakers.all_instances_changed();
        } else {
            for id in &self.instances {
                wakers.instance_changed(id);
            }
        }
    }

    fn merge(&mut self, other: Change) {
        self.orchestrations |= other.orchestrations;
        self.activities |= other.activities;
        self.all_instances |= other.all_instances;
        self.instances.extend(other.instances);
    }

    fn payload(mut self, sender: &str) -> String {
        self.sender = sender.to_owned();
        if self.all_instances {
            self.instances.clear();
        } else {
            let mut seen = HashSet::new();
            self.instances.retain(|id| seen.insert(id.clone()));
        }
        let text = serde_json::to_string(&self).expect("a change serializes");
        if text.len() <= MAX_NOTIFY_PAYLOAD {
            return text;
        }
        self.instances.clear();
        self.all_instances = true;
        serde_json::to_string(&self).expect("a change serializes")
    }
}

struct Outgoing {
    change: Change,
    done: Option<oneshot::Sender<()>>,
}

/// Sends one NOTIFY for everything queued since the last one (outside any transaction: a
/// NOTIFY inside a turn's transaction would serialize committers on the notify queue).
async fn notify_loop(
    pool: PgPool,
    channel: String,
    sender: String,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(first) = rx.recv().await {
        let mut change = first.change;
        let mut waiting: Vec<_> = first.done.into_iter().collect();
        while let Ok(next) = rx.try_recv() {
            change.merge(next.change);
            waiting.extend(next.done);
        }
        let payload = change.payload(&sender);
        if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&channel)
            .bind(&payload)
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %e, "could not notify other processes of a change; they see it at their next poll");
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}

async fn listen(pool: &PgPool, channel: &str) -> std::result::Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

/// Turns other processes' notifications into wake-ups. Notifications sent while the
/// connection was down are lost, so after every reconnect everything is signalled once:
/// the dispatchers claim again and waiting clients re-read their instances.
async fn listen_loop(
    pool: PgPool,
    channel: String,
    me: String,
    wakers: Arc<Wakers>,
    mut listener: PgListener,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                match serde_json::from_str::<Change>(notification.payload()) {
                    Ok(change) if change.sender == me => {}
                    Ok(change) => change.apply(&wakers),
                    Err(_) => Change::everything().apply(&wakers),
                }
            }
            Ok(None) => {
                tracing::debug!(%channel, "LISTEN connection re-established; polling once");
                Change::everything().apply(&wakers);
            }
            Err(e) => {
                tracing::warn!(%channel, error = %e, "LISTEN connection failed; reconnecting");
                let mut backoff = Duration::from_millis(100);
                listener = loop {
                    tokio::time::sleep(backoff).await;
                    match listen(&pool, &channel).await {
                        Ok(l) => break l,
                        Err(e) => {
                            tracing::debug!(%channel, error = %e, "LISTEN reconnect failed");
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                        }
                    }
                };
                tracing::info!(%channel, "LISTEN connection re-established; polling once");
                Change::everything().apply(&wakers);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn history_row(row: &PgRow) -> Result<HistoryRow> {
    Ok(HistoryRow {
        event_id: row.try_get::<i64, _>("event_id")? as u64,
        ts: row.try_get("ts")?,
        event: event_from_row(row.try_get("kind")?, row.try_get("data")?).map_err(corrupt)?,
    })
}

fn instance_info(row: &PgRow) -> Result<InstanceInfo> {
    Ok(InstanceInfo {
        instance_id: row.try_get("instance_id")?,
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        status: row.try_get("status")?,
        execution_id: row.try_get::<i64, _>("execution_id")? as u64,
        input: row.try_get("input")?,
        output: row.try_get("output")?,
        error: row.try_get("error")?,
        error_code: row.try_get("error_code")?,
        custom_status: row.try_get("custom_status")?,
        custom_status_version: row.try_get("custom_status_version")?,
        parent_instance_id: row.try_get("parent_instance_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn activity_item(row: &PgRow) -> Result<ActivityItem> {
    let retry: Option<String> = row.try_get("retry")?;
    Ok(ActivityItem {
        seq: row.try_get("seq")?,
        generation: row.try_get("generation")?,
        instance_id: row.try_get("instance_id")?,
        execution_id: row.try_get::<i64, _>("execution_id")? as u64,
        task: row.try_get::<i32, _>("task")? as u32,
        name: row.try_get("name")?,
        input: row.try_get("input")?,
        attempt: row.try_get::<i32, _>("attempt")? as u32,
        retry: retry
            .map(|r| serde_json::from_str(&r))
            .transpose()
            .map_err(corrupt)?,
        deliveries: row.try_get::<i32, _>("deliveries")? as u32,
        created_at: row.try_get("created_at")?,
    })
}

/// `execution_id` and `task` columns of an orchestrator-queue row for a message.
fn message_columns(message: &Message) -> (Option<i64>, Option<i32>) {
    match message {
        Message::ActivityCompleted {
            execution_id, task, ..
        }
        | Message::ActivityFailed {
            execution_id, task, ..
        }
        | Message::TimerFired { execution_id, task }
        | Message::ChildCompleted {
            execution_id, task, ..
        }
        | Message::ChildFailed {
            execution_id, task, ..
        } => (Some(*execution_id as i64), Some(*task as i32)),
        _ => (None, None),
    }
}

/// Orchestrator-queue rows as column arrays, inserted in order with one statement.
#[derive(Default)]
struct QueueRows {
    instance_id: Vec<String>,
    kind: Vec<&'static str>,
    execution_id: Vec<Option<i64>>,
    task: Vec<Option<i32>>,
    visible_at: Vec<i64>,
    data: Vec<String>,
}

impl QueueRows {
    fn push(&mut self, instance_id: &str, message: &Message, visible_at: i64) {
        let (exec, task) = message_columns(message);
        self.instance_id.push(instance_id.to_owned());
        self.kind.push(message.kind());
        self.execution_id.push(exec);
        self.task.push(task);
        self.visible_at.push(visible_at);
        self.data.push(message_data(message));
    }

    async fn insert(self, conn: &mut PgConnection) -> Result<()> {
        if self.instance_id.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO orchestrator_queue (instance_id, kind, execution_id, task, visible_at, data)
             SELECT m.instance_id, m.kind, m.execution_id, m.task, m.visible_at, m.data
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

fn start_message(start: &StartRequest) -> Message {
    Message::Start {
        name: start.name.clone(),
        version: start.version.clone(),
        input: start.input.clone(),
        parent: start.parent.clone(),
        events: vec![],
        custom_status: None,
    }
}

fn already_exists(parent: &ParentLink, instance_id: &str) -> Message {
    Message::ChildFailed {
        execution_id: parent.execution_id,
        task: parent.task,
        error: TaskError::with_code(
            format!("an instance with id '{instance_id}' already exists"),
            "ERR_ALREADY_EXISTS",
        ),
    }
}

/// Creates a turn's new instances (each with its Start message) unless their ids exist;
/// a parent whose child id is taken hears of it (`ChildFailed`, queued into `failed`).
async fn create_instances(
    conn: &mut PgConnection,
    starts: &[StartRequest],
    now: i64,
    failed: &mut QueueRows,
) -> Result<()> {
    if starts.is_empty() {
        return Ok(());
    }
    // A second start of one id in the same turn finds the first one's instance.
    let mut seen = HashSet::new();
    let mut unique = Vec::with_capacity(starts.len());
    let mut duplicates = Vec::new();
    for start in starts {
        if seen.insert(start.instance_id.as_str()) {
            unique.push(start);
        } else {
            duplicates.push(start);
        }
    }
    let created: HashSet<String> = sqlx::query_scalar(
        "WITH s AS (
            SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                WITH ORDINALITY AS s(instance_id, name, version, input, parent_instance_id, data, n)
        ), created AS (
            INSERT INTO instances (instance_id, name, version, status, input, parent_instance_id,
                created_at, updated_at)
            SELECT instance_id, name, version, 'Running', input, parent_instance_id, $7, $7
            FROM s ORDER BY instance_id
            ON CONFLICT (instance_id) DO NOTHING
            RETURNING instance_id
        ), queued AS (
            INSERT INTO orchestrator_queue (instance_id, kind, visible_at, data)
            SELECT s.instance_id, 'Start', $7, s.data FROM s JOIN created USING (instance_id)
            ORDER BY s.n
        )
        SELECT instance_id FROM created",
    )
    .bind(unique.iter().map(|s| s.instance_id.clone()).collect::<Vec<_>>())
    .bind(unique.iter().map(|s| s.name.clone()).collect::<Vec<_>>())
    .bind(unique.iter().map(|s| s.version.clone()).collect::<Vec<_>>())
    .bind(
        unique
            .iter()
            .map(|s| s.input.get().to_owned())
            .collect::<Vec<_>>(),
    )
    .bind(
        unique
            .iter()
            .map(|s| s.parent.as_ref().map(|p| p.instance_id.clone()))
            .collect::<Vec<_>>(),
    )
    .bind(
        unique
            .iter()
            .map(|s| message_data(&start_message(s)))
            .collect::<Vec<_>>(),
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    for start in starts {
        let refused = !created.contains(&start.instance_id)
            || duplicates.iter().any(|d| std::ptr::eq(*d, start));
        if let (true, Some(parent)) = (refused, &start.parent) {
            failed.push(
                &parent.instance_id,
                &already_exists(parent, &start.instance_id),
                now,
            );
        }
    }
    Ok(())
}

async fn insert_activities(
    conn: &mut PgConnection,
    instance_id: &str,
    execution_id: i64,
    now: i64,
    activities: &[ActivityRequest],
) -> Result<()> {
    if activities.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO worker_queue (instance_id, execution_id, task, name, input, retry, visible_at, created_at)
         SELECT $1, $2, a.task, a.name, a.input, a.retry, $3, $3
         FROM UNNEST($4::int[], $5::text[], $6::text[], $7::text[])
             WITH ORDINALITY AS a(task, name, input, retry, n)
         ORDER BY a.n",
    )
    .bind(instance_id)
    .bind(execution_id)
    .bind(now)
    .bind(activities.iter().map(|a| a.task as i32).collect::<Vec<_>>())
    .bind(activities.iter().map(|a| a.name.clone()).collect::<Vec<_>>())
    .bind(
        activities
            .iter()
            .map(|a| a.input.get().to_owned())
            .collect::<Vec<_>>(),
    )
    .bind(
        activities
            .iter()
            .map(|a| {
                a.retry
                    .as_ref()
                    .map(|r| serde_json::to_string(r).unwrap_or_default())
            })
            .collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Applies a rewind plan (see [`Provider::rewind_instance`]).
async fn rewind_in(
    conn: &mut PgConnection,
    instance_id: &str,
    plan: &RewindPlan,
    updated_at: i64,
    now: i64,
) -> Result<bool> {
    let exec = plan.execution_id as i64;
    let (status_set, status_value) = match &plan.custom_status {
        Some(value) => (true, value.as_ref().map(|v| v.get().to_owned())),
        None => (false, None),
    };
    let updated = sqlx::query(
        "UPDATE instances SET status = 'Running', output = NULL, error = NULL, error_code = NULL,
            updated_at = $1, lock_owner = NULL, lock_until = 0, generation = generation + 1,
            custom_status = CASE WHEN $2 THEN $3 ELSE custom_status END,
            custom_status_version = custom_status_version + CASE WHEN $2 THEN 1 ELSE 0 END
         WHERE instance_id = $4 AND status = 'Failed' AND execution_id = $5 AND updated_at = $7
           AND (SELECT MAX(event_id) FROM history WHERE instance_id = $4 AND execution_id = $5) = $6",
    )
    .bind(now)
    .bind(status_set)
    .bind(status_value)
    .bind(instance_id)
    .bind(exec)
    .bind(plan.last_event_id as i64)
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
    .bind(exec)
    .bind(plan.truncate_from as i64)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM orchestrator_queue WHERE instance_id = $1 AND execution_id = $2
           AND kind IN ('ChildCompleted', 'ChildFailed')",
    )
    .bind(instance_id)
    .bind(exec)
    .execute(&mut *conn)
    .await?;
    if !plan.open_children.is_empty() {
        sqlx::query(
            "DELETE FROM orchestrator_queue WHERE kind = 'Cancel' AND instance_id = ANY($1)",
        )
        .bind(
            plan.open_children
                .iter()
                .map(|(_, child)| child.clone())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *conn)
        .await?;
    }
    insert_activities(conn, instance_id, exec, now, &plan.activities).await?;
    let mut queue = QueueRows::default();
    for (message, visible_at) in &plan.messages {
        queue.push(instance_id, message, visible_at.unwrap_or(now));
    }
    queue.insert(conn).await?;
    Ok(true)
}

/// Commits a turn. Everything but the creation of child instances is one statement (one
/// round trip, atomic on its own): every write in it is gated on the fencing update, so
/// nothing is written unless this generation still holds the instance. A turn that starts
/// instances runs inside a transaction (the caller's) with a second statement for them.
async fn commit_turn_in(conn: &mut PgConnection, c: &TurnCommit) -> Result<Vec<ActivityItem>> {
    let out = &c.outcome;
    let InstanceUpdate {
        status,
        output,
        error,
        error_code,
        continued,
        name,
        version,
    } = InstanceUpdate::of(out);
    let exec = c.execution_id as i64;
    let mut queue = QueueRows::default();
    for t in &out.timers {
        queue.push(
            &c.instance_id,
            &Message::TimerFired {
                execution_id: c.execution_id,
                task: t.task,
            },
            t.fire_at,
        );
    }
    for m in &out.messages {
        queue.push(&m.instance_id, &m.message, c.now);
    }
    let tasks = |t: &[u32]| t.iter().map(|t| *t as i32).collect::<Vec<_>>();
    let rows = sqlx::query(
        "WITH fenced AS (
            UPDATE instances SET lock_owner = NULL, lock_until = 0, updated_at = $1,
                name = COALESCE($2, name), version = COALESCE($3, version),
                status = COALESCE($4, status), output = COALESCE($5, output),
                error = COALESCE($6, error), error_code = COALESCE($7, error_code),
                custom_status = COALESCE($8, custom_status),
                custom_status_version = custom_status_version
                    + CASE WHEN $8::text IS NULL THEN 0 ELSE 1 END,
                execution_id = execution_id + $9
            WHERE instance_id = $10 AND generation = $11 AND execution_id = $12
            RETURNING 1
        ), appended AS (
            INSERT INTO history (instance_id, execution_id, event_id, kind, task, ts, data)
            SELECT $10, $12, e.event_id, e.kind, e.task, $1, e.data
            FROM UNNEST($13::bigint[], $14::text[], $15::int[], $16::text[])
                AS e(event_id, kind, task, data)
            WHERE EXISTS (SELECT 1 FROM fenced)
        ), consumed AS (
            DELETE FROM orchestrator_queue
            WHERE seq = ANY($17) AND EXISTS (SELECT 1 FROM fenced)
        ), dropped_activities AS (
            DELETE FROM worker_queue
            WHERE instance_id = $10 AND execution_id = $12 AND task = ANY($18)
              AND EXISTS (SELECT 1 FROM fenced)
        ), dropped_timers AS (
            DELETE FROM orchestrator_queue
            WHERE kind = 'TimerFired' AND instance_id = $10 AND execution_id = $12
              AND task = ANY($19) AND EXISTS (SELECT 1 FROM fenced)
        ), activities AS (
            INSERT INTO worker_queue (instance_id, execution_id, task, name, input, retry,
                visible_at, created_at, lock_owner, lock_until, generation, deliveries)
            SELECT $10, $12, a.task, a.name, a.input, a.retry, $1, $1,
                CASE WHEN a.n <= $30 THEN $31 END,
                CASE WHEN a.n <= $30 THEN reprise_now_ms() + $32 ELSE 0 END,
                CASE WHEN a.n <= $30 THEN 1 ELSE 0 END,
                CASE WHEN a.n <= $30 THEN 1 ELSE 0 END
            FROM UNNEST($20::int[], $21::text[], $22::text[], $23::text[])
                WITH ORDINALITY AS a(task, name, input, retry, n)
            WHERE EXISTS (SELECT 1 FROM fenced)
            ORDER BY a.n
            RETURNING task, seq, lock_owner IS NOT NULL AS leased
        ), queued AS (
            INSERT INTO orchestrator_queue (instance_id, kind, execution_id, task, visible_at, data)
            SELECT m.instance_id, m.kind, m.execution_id, m.task, m.visible_at, m.data
            FROM UNNEST($24::text[], $25::text[], $26::bigint[], $27::int[], $28::bigint[], $29::text[])
                WITH ORDINALITY AS m(instance_id, kind, execution_id, task, visible_at, data, n)
            WHERE EXISTS (SELECT 1 FROM fenced)
            ORDER BY m.n
        )
        SELECT (SELECT COUNT(*) FROM fenced) AS fenced, a.task, a.seq
        FROM (SELECT 1) AS one
        LEFT JOIN activities a ON a.leased",
    )
    .bind(c.now)
    .bind(name)
    .bind(version)
    .bind(status)
    .bind(output)
    .bind(error)
    .bind(error_code)
    .bind(out.custom_status.as_ref().map(|v| v.get().to_owned()))
    .bind(continued as i64)
    .bind(&c.instance_id)
    .bind(c.generation)
    .bind(exec)
    .bind(
        (0..out.events.len())
            .map(|i| (c.first_event_id + i as u64) as i64)
            .collect::<Vec<_>>(),
    )
    .bind(out.events.iter().map(|e| e.kind()).collect::<Vec<_>>())
    .bind(
        out.events
            .iter()
            .map(|e| e.task().map(|t| t as i32))
            .collect::<Vec<_>>(),
    )
    .bind(out.events.iter().map(event_data).collect::<Vec<_>>())
    .bind(&out.consumed)
    .bind(tasks(&out.canceled_activities))
    .bind(tasks(&out.canceled_timers))
    .bind(tasks(
        &out.activities.iter().map(|a| a.task).collect::<Vec<_>>(),
    ))
    .bind(out.activities.iter().map(|a| a.name.clone()).collect::<Vec<_>>())
    .bind(
        out.activities
            .iter()
            .map(|a| a.input.get().to_owned())
            .collect::<Vec<_>>(),
    )
    .bind(
        out.activities
            .iter()
            .map(|a| {
                a.retry
                    .as_ref()
                    .map(|r| serde_json::to_string(r).unwrap_or_default())
            })
            .collect::<Vec<_>>(),
    )
    .bind(queue.instance_id)
    .bind(queue.kind)
    .bind(queue.execution_id)
    .bind(queue.task)
    .bind(queue.visible_at)
    .bind(queue.data)
    .bind(c.claim.as_ref().map_or(0, |d| d.count as i64))
    .bind(c.claim.as_ref().map(|d| d.owner.clone()))
    .bind(c.claim.as_ref().map_or(0, |d| d.lease_ms))
    .fetch_all(&mut *conn)
    .await?;
    let fenced: i64 = rows.first().map_or(0, |r| r.get("fenced"));
    let claimed: Vec<(u32, i64)> = rows
        .iter()
        .filter_map(|r| {
            let task: Option<i32> = r.get("task");
            let seq: Option<i64> = r.get("seq");
            Some((task? as u32, seq?))
        })
        .collect();
    if fenced == 0 {
        return Err(StoreError::LeaseLost(format!(
            "instance '{}' (generation {})",
            c.instance_id, c.generation
        )));
    }
    if !out.starts.is_empty() {
        let mut refused = QueueRows::default();
        create_instances(conn, &out.starts, c.now, &mut refused).await?;
        refused.insert(conn).await?;
    }
    Ok(directly_claimed(c, &claimed))
}

/// Releases claimed instances (each under its claim's generation), giving back the claim's
/// delivery of their visible messages.
async fn release_claims(pool: &PgPool, claims: &[(String, i64)]) -> Result<()> {
    if claims.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH released AS (
            UPDATE instances i SET lock_owner = NULL, lock_until = 0
            FROM UNNEST($1::text[], $2::bigint[]) AS r(instance_id, generation)
            WHERE i.instance_id = r.instance_id AND i.generation = r.generation
            RETURNING i.instance_id
        )
        UPDATE orchestrator_queue q SET deliveries = GREATEST(q.deliveries - 1, 0)
        FROM released WHERE q.instance_id = released.instance_id
            AND q.visible_at <= reprise_now_ms()",
    )
    .bind(claims.iter().map(|c| c.0.clone()).collect::<Vec<_>>())
    .bind(claims.iter().map(|c| c.1).collect::<Vec<_>>())
    .execute(pool)
    .await?;
    Ok(())
}

/// One claimed instance while its claim is assembled.
struct Claimed {
    instance_id: String,
    execution_id: i64,
    generation: i64,
    name: String,
    created_at: i64,
    now: i64,
    messages: std::result::Result<Vec<QueuedMessage>, StoreError>,
}

#[async_trait]
impl Provider for PostgresProvider {
    fn wakers(&self) -> &Arc<Wakers> {
        &self.wakers
    }

    async fn now(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT reprise_now_ms()")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn shift_clock(&self, by_ms: i64) -> Result<()> {
        // The offset is a constant in the schema's own clock function: every process sees
        // it at once, and an unshifted store pays nothing for it. Replacing the function
        // invalidates the plans that inlined it.
        let mut tx = self.pool.begin().await?;
        // One shift at a time per schema: each reads the offset the last one wrote.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('reprise_clock:' || current_schema()))")
            .execute(&mut *tx)
            .await?;
        let offset: i64 = sqlx::query_scalar(
            "SELECT reprise_now_ms() - floor(extract(epoch FROM now()) * 1000)::bigint",
        )
        .fetch_one(&mut *tx)
        .await?;
        let offset = offset.checked_add(by_ms).ok_or_else(|| {
            StoreError::Config(format!("shifting the clock by {by_ms} ms overflows"))
        })?;
        sqlx::query(&format!(
            "CREATE OR REPLACE FUNCTION reprise_now_ms() RETURNS BIGINT
                LANGUAGE sql STABLE PARALLEL SAFE
                AS $$ SELECT floor(extract(epoch FROM now()) * 1000)::bigint + ({offset}) $$"
        ))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_instance(&self, start: &StartRequest) -> Result<bool> {
        let created = sqlx::query(
            "WITH created AS (
                INSERT INTO instances (instance_id, name, version, status, input, parent_instance_id,
                    created_at, updated_at)
                VALUES ($1, $2, $3, 'Running', $4, $5, reprise_now_ms(), reprise_now_ms())
                ON CONFLICT (instance_id) DO NOTHING
                RETURNING instance_id, created_at
            )
            INSERT INTO orchestrator_queue (instance_id, kind, visible_at, data)
            SELECT instance_id, 'Start', created_at, $6 FROM created",
        )
        .bind(&start.instance_id)
        .bind(&start.name)
        .bind(&start.version)
        .bind(start.input.get())
        .bind(start.parent.as_ref().map(|p| p.instance_id.as_str()))
        .bind(message_data(&start_message(start)))
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if created {
            let change = Change {
                orchestrations: true,
                instances: vec![start.instance_id.clone()],
                ..Default::default()
            };
            self.signal(change, true).await;
        }
        Ok(created)
    }

    async fn enqueue(&self, instance_id: &str, message: &Message) -> Result<()> {
        let (exec, task) = message_columns(message);
        sqlx::query(
            "INSERT INTO orchestrator_queue (instance_id, kind, execution_id, task, visible_at, data)
             VALUES ($1, $2, $3, $4, reprise_now_ms(), $5)",
        )
        .bind(instance_id)
        .bind(message.kind())
        .bind(exec)
        .bind(task)
        .bind(message_data(message))
        .execute(&self.pool)
        .await?;
        let change = Change {
            orchestrations: true,
            ..Default::default()
        };
        self.signal(change, true).await;
        Ok(())
    }

    async fn instance(&self, instance_id: &str) -> Result<Option<InstanceInfo>> {
        let row = sqlx::query("SELECT * FROM instances WHERE instance_id = $1")
            .bind(instance_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(instance_info).transpose()
    }

    async fn history(
        &self,
        instance_id: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<HistoryRow>> {
        sqlx::query(
            "SELECT event_id, ts, kind, data FROM history
             WHERE instance_id = $1 AND execution_id = COALESCE($2,
                 (SELECT execution_id FROM instances WHERE instance_id = $1))
             ORDER BY event_id",
        )
        .bind(instance_id)
        .bind(execution_id.map(|e| e as i64))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(history_row)
        .collect()
    }

    async fn history_after(
        &self,
        instance_id: &str,
        execution_id: u64,
        after_event_id: u64,
    ) -> Result<Vec<HistoryRow>> {
        sqlx::query(
            "SELECT event_id, ts, kind, data FROM history
             WHERE instance_id = $1 AND execution_id = $2 AND event_id > $3
             ORDER BY event_id",
        )
        .bind(instance_id)
        .bind(execution_id as i64)
        .bind(after_event_id as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(history_row)
        .collect()
    }

    async fn delete_instance(&self, instance_id: &str, force: bool) -> Result<Deletion> {
        let mut tx = self.pool.begin().await?;
        let tree: Vec<String> = sqlx::query_scalar(
            "WITH RECURSIVE tree(id) AS (
                SELECT instance_id FROM instances WHERE instance_id = $1
                UNION SELECT i.instance_id FROM instances i JOIN tree t ON i.parent_instance_id = t.id)
             SELECT id FROM tree",
        )
        .bind(instance_id)
        .fetch_all(&mut *tx)
        .await?;
        if tree.is_empty() {
            sqlx::query("DELETE FROM orchestrator_queue WHERE instance_id = $1")
                .bind(instance_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Deletion::NotFound);
        }
        let status: String =
            sqlx::query_scalar("SELECT status FROM instances WHERE instance_id = $1 FOR UPDATE")
                .bind(instance_id)
                .fetch_one(&mut *tx)
                .await?;
        if status == "Running" && !force {
            tx.rollback().await?;
            return Ok(Deletion::Running);
        }
        for table in ["history", "orchestrator_queue", "worker_queue", "instances"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE instance_id = ANY($1)"))
                .bind(&tree)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let change = Change {
            instances: tree.clone(),
            ..Default::default()
        };
        self.signal(change, true).await;
        Ok(Deletion::Deleted(tree))
    }

    async fn rewind_instance(
        &self,
        instance_id: &str,
        plan: &RewindPlan,
        updated_at: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
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
        self.signal(change, true).await;
        Ok(true)
    }

    async fn list_instances(&self, f: &InstanceFilter) -> Result<InstancePage> {
        let limit = f.limit.max(1) as usize;
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new("SELECT * FROM instances WHERE true");
        if let Some(status) = &f.status {
            qb.push(" AND status = ").push_bind(status);
        }
        if let Some(name) = &f.name {
            qb.push(" AND name = ").push_bind(name);
        }
        if let Some(after) = f.created_after {
            qb.push(" AND created_at > ").push_bind(after);
        }
        if let Some(before) = f.created_before {
            qb.push(" AND created_at < ").push_bind(before);
        }
        if let Some(parent) = &f.parent_id {
            qb.push(" AND parent_instance_id = ").push_bind(parent);
        }
        // Ids compare bytewise (COLLATE "C", as the index), like SQLite's.
        if let Some(c) = &f.cursor {
            qb.push(" AND (created_at, instance_id COLLATE \"C\") > (")
                .push_bind(c.created_at)
                .push(", ")
                .push_bind(&c.instance_id)
                .push(")");
        }
        qb.push(" ORDER BY created_at, instance_id COLLATE \"C\" LIMIT ")
            .push_bind(limit as i64 + 1);
        let rows = qb.build().fetch_all(&self.pool).await?;
        let mut instances = rows.iter().map(instance_info).collect::<Result<Vec<_>>>()?;
        let more = instances.len() > limit;
        instances.truncate(limit);
        let next_cursor = more
            .then(|| instances.last())
            .flatten()
            .map(|i| PageCursor {
                created_at: i.created_at,
                instance_id: i.instance_id.clone(),
            });
        Ok(InstancePage {
            instances,
            next_cursor,
        })
    }

    async fn list_executions(&self, instance_id: &str) -> Result<Vec<ExecutionInfo>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT execution_id FROM instances WHERE instance_id = $1")
                .bind(instance_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(current) = current else {
            return Ok(vec![]);
        };
        let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT execution_id, MIN(ts), MAX(ts), COUNT(*) FROM history
             WHERE instance_id = $1 GROUP BY execution_id ORDER BY execution_id",
        )
        .bind(instance_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
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
        Ok(out)
    }

    async fn system_metrics(&self) -> Result<SystemMetrics> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM instances GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        let mut m = SystemMetrics::default();
        for (status, n) in rows {
            let n = n as u64;
            m.total += n;
            match status.as_str() {
                "Running" => m.running += n,
                "Completed" => m.completed += n,
                "Failed" => m.failed += n,
                _ => {}
            }
        }
        Ok(m)
    }

    async fn activity_attempts(&self, instance_id: &str) -> Result<Vec<ActivityAttempt>> {
        let rows = sqlx::query(
            "SELECT execution_id, task, name, attempt, lock_until > reprise_now_ms() AS running, visible_at
             FROM worker_queue WHERE instance_id = $1 ORDER BY execution_id, task",
        )
        .bind(instance_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| ActivityAttempt {
                execution_id: r.get::<i64, _>("execution_id") as u64,
                task: r.get::<i32, _>("task") as u32,
                name: r.get("name"),
                attempt: r.get::<i32, _>("attempt") as u32,
                running: r.get::<bool, _>("running"),
                visible_at: r.get("visible_at"),
            })
            .collect())
    }

    async fn queue_depths(&self) -> Result<QueueDepths> {
        let (ov, od, wv, wr, wd): (i64, i64, i64, i64, i64) = sqlx::query_as(
            "WITH t AS (SELECT reprise_now_ms() AS now)
             SELECT
                (SELECT COUNT(*) FROM orchestrator_queue, t WHERE visible_at <= t.now),
                (SELECT COUNT(*) FROM orchestrator_queue, t WHERE visible_at > t.now),
                (SELECT COUNT(*) FROM worker_queue, t WHERE lock_until <= t.now AND visible_at <= t.now),
                (SELECT COUNT(*) FROM worker_queue, t WHERE lock_until > t.now),
                (SELECT COUNT(*) FROM worker_queue, t WHERE lock_until <= t.now AND visible_at > t.now)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(QueueDepths {
            orchestrator_visible: ov as u64,
            orchestrator_delayed: od as u64,
            worker_visible: wv as u64,
            worker_running: wr as u64,
            worker_delayed: wd as u64,
        })
    }

    async fn finished_instances(&self, f: &DeleteFilter) -> Result<Vec<String>> {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
            "SELECT instance_id FROM instances WHERE status IN ('Completed', 'Failed')",
        );
        if let Some(ids) = &f.ids {
            qb.push(" AND instance_id = ANY(").push_bind(ids).push(")");
        }
        if let Some(status) = &f.status {
            qb.push(" AND status = ").push_bind(status);
        }
        if let Some(before) = f.completed_before {
            qb.push(" AND updated_at < ").push_bind(before);
        }
        qb.push(" ORDER BY updated_at, instance_id");
        if let Some(limit) = f.limit {
            qb.push(" LIMIT ").push_bind(limit as i64);
        }
        Ok(qb.build_query_scalar().fetch_all(&self.pool).await?)
    }

    async fn prune_executions(
        &self,
        instance_id: &str,
        keep_last: Option<u32>,
        completed_before: Option<i64>,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT execution_id FROM instances WHERE instance_id = $1 FOR SHARE",
        )
        .bind(instance_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(current) = current else {
            return Ok(0);
        };
        let old: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT execution_id, MAX(ts) FROM history
             WHERE instance_id = $1 AND execution_id < $2 GROUP BY execution_id",
        )
        .bind(instance_id)
        .bind(current)
        .fetch_all(&mut *tx)
        .await?;
        let old: Vec<(u64, i64)> = old.into_iter().map(|(e, t)| (e as u64, t)).collect();
        let doomed: Vec<i64> =
            executions_to_prune(current as u64, &old, keep_last, completed_before)
                .into_iter()
                .map(|e| e as i64)
                .collect();
        if !doomed.is_empty() {
            sqlx::query("DELETE FROM history WHERE instance_id = $1 AND execution_id = ANY($2)")
                .bind(instance_id)
                .bind(&doomed)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(doomed.len() as u64)
    }

    async fn attach_runtime(&self, _owner: &str) -> Result<()> {
        // Many runtimes share the database: nothing is exclusive, and a lease left by a dead
        // process is taken over once it expires.
        Ok(())
    }

    async fn detach_runtime(&self, _owner: &str) -> Result<()> {
        Ok(())
    }

    async fn claim_orchestrations(
        &self,
        owner: &str,
        lease_ms: i64,
        max: usize,
    ) -> Result<Vec<OrchestrationItem>> {
        // One statement claims the instances (lease + generation) and delivers their visible
        // messages; a second reads their current executions' histories.
        let rows = sqlx::query(
            "WITH candidates AS (
                SELECT i.instance_id FROM instances i
                WHERE i.instance_id IN (
                        SELECT q.instance_id FROM orchestrator_queue q
                        WHERE q.visible_at <= reprise_now_ms())
                    AND i.lock_until <= reprise_now_ms()
                LIMIT $3
                FOR UPDATE OF i SKIP LOCKED
            ), claimed AS (
                UPDATE instances i SET lock_owner = $1, lock_until = reprise_now_ms() + $2,
                    generation = i.generation + 1
                FROM candidates c WHERE i.instance_id = c.instance_id
                RETURNING i.instance_id, i.execution_id, i.generation, i.name, i.created_at
            ), delivered AS (
                UPDATE orchestrator_queue q SET deliveries = q.deliveries + 1
                FROM claimed c
                WHERE q.instance_id = c.instance_id AND q.visible_at <= reprise_now_ms()
                RETURNING q.instance_id, q.seq, q.kind, q.data, q.deliveries
            )
            SELECT c.instance_id, c.execution_id, c.generation, c.name, c.created_at,
                reprise_now_ms() AS now, m.seq, m.kind, m.data, m.deliveries
            FROM claimed c LEFT JOIN delivered m ON m.instance_id = c.instance_id
            ORDER BY c.instance_id, m.seq",
        )
        .bind(owner)
        .bind(lease_ms)
        .bind(max as i64)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let mut claimed: Vec<Claimed> = Vec::new();
        for row in &rows {
            let instance_id: String = row.try_get("instance_id")?;
            if claimed.last().map(|c| &c.instance_id) != Some(&instance_id) {
                claimed.push(Claimed {
                    instance_id,
                    execution_id: row.try_get("execution_id")?,
                    generation: row.try_get("generation")?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                    now: row.try_get("now")?,
                    messages: Ok(vec![]),
                });
            }
            let entry = claimed.last_mut().expect("just pushed");
            let Some(seq) = row.try_get::<Option<i64>, _>("seq")? else {
                continue;
            };
            let kind: String = row.try_get("kind")?;
            let data: String = row.try_get("data")?;
            let deliveries: i32 = row.try_get("deliveries")?;
            let parsed = message_from_row(&kind, &data).map_err(corrupt);
            if let Ok(messages) = &mut entry.messages {
                match parsed {
                    Ok(message) => messages.push(QueuedMessage {
                        seq,
                        deliveries: deliveries as u32,
                        message,
                    }),
                    Err(e) => entry.messages = Err(e),
                }
            }
        }
        // A concurrent commit may have consumed an instance's messages between the
        // candidate scan and the lock: nothing to deliver, release it.
        let (empty, claimed): (Vec<Claimed>, Vec<Claimed>) = claimed
            .into_iter()
            .partition(|c| matches!(&c.messages, Ok(m) if m.is_empty()));
        if !empty.is_empty() {
            let claims: Vec<(String, i64)> = empty
                .into_iter()
                .map(|c| (c.instance_id, c.generation))
                .collect();
            release_claims(&self.pool, &claims).await?;
        }
        if claimed.is_empty() {
            return Ok(vec![]);
        }

        let histories = sqlx::query(
            "SELECT h.instance_id, h.event_id, h.ts, h.kind, h.data
             FROM history h
             JOIN UNNEST($1::text[], $2::bigint[]) AS c(instance_id, execution_id)
                 ON h.instance_id = c.instance_id AND h.execution_id = c.execution_id
             ORDER BY h.instance_id, h.event_id",
        )
        .bind(
            claimed
                .iter()
                .map(|c| c.instance_id.clone())
                .collect::<Vec<_>>(),
        )
        .bind(claimed.iter().map(|c| c.execution_id).collect::<Vec<_>>())
        .fetch_all(&self.pool)
        .await;
        let histories = match histories {
            Ok(rows) => rows,
            Err(e) => {
                // Give the claims back rather than leave them locked for a whole lease.
                let claims: Vec<(String, i64)> = claimed
                    .iter()
                    .map(|c| (c.instance_id.clone(), c.generation))
                    .collect();
                if let Err(release) = release_claims(&self.pool, &claims).await {
                    tracing::warn!(error = %release, "could not release claims after a failed history read");
                }
                return Err(e.into());
            }
        };
        let mut by_instance: HashMap<String, Vec<PgRow>> = HashMap::new();
        for row in histories {
            by_instance
                .entry(row.try_get("instance_id")?)
                .or_default()
                .push(row);
        }

        let mut items = Vec::with_capacity(claimed.len());
        let mut unreadable = Vec::new();
        for c in claimed {
            let history = by_instance
                .remove(&c.instance_id)
                .unwrap_or_default()
                .iter()
                .map(history_row)
                .collect::<Result<Vec<_>>>();
            match (c.messages, history) {
                (Ok(messages), Ok(history)) => items.push(OrchestrationItem {
                    instance_id: c.instance_id,
                    execution_id: c.execution_id as u64,
                    generation: c.generation,
                    name: c.name,
                    created_at: c.created_at,
                    history,
                    messages,
                    now: c.now,
                }),
                (Err(e), _) | (_, Err(e)) => {
                    // One unreadable row must not stall every other instance.
                    tracing::warn!(instance_id = %c.instance_id, error = %e, "instance has an unreadable row; set aside for a minute");
                    unreadable.push(c.instance_id);
                }
            }
        }
        if !unreadable.is_empty() {
            sqlx::query(
                "UPDATE instances SET lock_until = reprise_now_ms() + $2 WHERE instance_id = ANY($1)",
            )
            .bind(&unreadable)
            .bind(UNREADABLE_RETRY_MS)
            .execute(&self.pool)
            .await?;
        }
        Ok(items)
    }

    async fn commit_turn(&self, commit: TurnCommit) -> Result<Vec<ActivityItem>> {
        let out = &commit.outcome;
        let mut instances: Vec<String> = out.starts.iter().map(|s| s.instance_id.clone()).collect();
        if out.changes_instance() {
            instances.push(commit.instance_id.clone());
        }
        let change = Change {
            orchestrations: !out.messages.is_empty()
                || !out.starts.is_empty()
                || !out.timers.is_empty(),
            // Activities claimed by the commit itself need no other worker's attention.
            activities: out.activities.len() > commit.claim.as_ref().map_or(0, |d| d.count),
            instances,
            ..Default::default()
        };
        let claimed = if out.starts.is_empty() {
            // One statement: atomic without a transaction around it.
            let mut conn = self.pool.acquire().await?;
            commit_turn_in(&mut conn, &commit).await?
        } else {
            let mut tx = self.pool.begin().await?;
            match commit_turn_in(&mut tx, &commit).await {
                Ok(claimed) => {
                    tx.commit().await?;
                    claimed
                }
                Err(e) => {
                    let _ = tx.rollback().await;
                    return Err(e);
                }
            }
        };
        self.signal(change, false).await;
        // Followers in this process hear of every commit (other processes' followers poll;
        // the notification only names status changes).
        self.wakers.instance_progressed(&commit.instance_id);
        Ok(claimed)
    }

    async fn abandon_orchestration(
        &self,
        instance_id: &str,
        generation: i64,
        delay_ms: i64,
        count_delivery: bool,
    ) -> Result<()> {
        // Messages that arrived after the claim were not delivered by it: the count never
        // goes below zero.
        sqlx::query(
            "WITH released AS (
                UPDATE instances SET lock_owner = NULL, lock_until = 0
                WHERE instance_id = $1 AND generation = $2
                RETURNING instance_id
            )
            UPDATE orchestrator_queue q
            SET visible_at = GREATEST(q.visible_at, reprise_now_ms() + $3),
                deliveries = GREATEST(q.deliveries - $4, 0)
            FROM released
            WHERE q.instance_id = released.instance_id AND q.visible_at <= reprise_now_ms()",
        )
        .bind(instance_id)
        .bind(generation)
        .bind(delay_ms)
        .bind(if count_delivery { 0i32 } else { 1i32 })
        .execute(&self.pool)
        .await?;
        let change = Change {
            orchestrations: true,
            ..Default::default()
        };
        self.signal(change, false).await;
        Ok(())
    }

    async fn claim_activities(
        &self,
        owner: &str,
        lease_ms: i64,
        max: usize,
    ) -> Result<Vec<ActivityItem>> {
        let rows = sqlx::query(
            "WITH candidates AS (
                SELECT seq FROM worker_queue
                WHERE visible_at <= reprise_now_ms() AND lock_until <= reprise_now_ms()
                ORDER BY seq LIMIT $3
                FOR UPDATE SKIP LOCKED
            )
            UPDATE worker_queue w SET lock_owner = $1, lock_until = reprise_now_ms() + $2,
                generation = w.generation + 1, deliveries = w.deliveries + 1
            FROM candidates c WHERE w.seq = c.seq
            RETURNING w.seq, w.generation, w.instance_id, w.execution_id, w.task, w.name,
                w.input, w.attempt, w.retry, w.deliveries, w.created_at",
        )
        .bind(owner)
        .bind(lease_ms)
        .bind(max as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut items = rows.iter().map(activity_item).collect::<Result<Vec<_>>>()?;
        items.sort_by_key(|i| i.seq);
        Ok(items)
    }

    async fn complete_activities(
        &self,
        outcomes: Vec<(ActivityItem, ActivityResult)>,
    ) -> Result<Vec<bool>> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let mut seqs = Vec::with_capacity(outcomes.len());
        let mut generations = Vec::with_capacity(outcomes.len());
        let mut kinds = Vec::with_capacity(outcomes.len());
        let mut data = Vec::with_capacity(outcomes.len());
        for (item, result) in outcomes {
            let message = result.message(&item);
            seqs.push(item.seq);
            generations.push(item.generation);
            kinds.push(message.kind());
            data.push(message_data(&message));
        }
        // One statement for the batch, fenced row by row by generation; messages are queued
        // in the batch's order. Rows are locked in seq order, as renewals lock them, so a
        // renewal racing a batch that holds some of its rows waits instead of deadlocking.
        let deleted: HashSet<i64> = sqlx::query_scalar(
            "WITH d AS (
                SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[])
                    WITH ORDINALITY AS d(seq, generation, kind, data, n)
            ),
            locked AS (
                SELECT w.seq FROM worker_queue w JOIN d
                    ON w.seq = d.seq AND w.generation = d.generation
                ORDER BY w.seq FOR UPDATE OF w
            ),
            done AS (
                DELETE FROM worker_queue w USING locked
                WHERE w.seq = locked.seq
                RETURNING w.seq, w.instance_id, w.execution_id, w.task
            ),
            queued AS (
                INSERT INTO orchestrator_queue (instance_id, kind, execution_id, task, visible_at, data)
                SELECT done.instance_id, d.kind, done.execution_id, done.task, reprise_now_ms(), d.data
                FROM done JOIN d ON d.seq = done.seq
                ORDER BY d.n
            )
            SELECT seq FROM done",
        )
        .bind(&seqs)
        .bind(&generations)
        .bind(&kinds)
        .bind(&data)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect();
        let recorded: Vec<bool> = seqs.iter().map(|s| deleted.contains(s)).collect();
        if !deleted.is_empty() {
            let change = Change {
                orchestrations: true,
                ..Default::default()
            };
            self.signal(change, false).await;
        }
        Ok(recorded)
    }

    async fn retry_activity(
        &self,
        item: &ActivityItem,
        visible_at: i64,
        next_attempt: u32,
    ) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE worker_queue SET visible_at = $1, attempt = $2, lock_owner = NULL,
                lock_until = 0, deliveries = 0
             WHERE seq = $3 AND generation = $4",
        )
        .bind(visible_at)
        .bind(next_attempt as i32)
        .bind(item.seq)
        .bind(item.generation)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        let change = Change {
            activities: true,
            ..Default::default()
        };
        self.signal(change, false).await;
        Ok(updated)
    }

    async fn abandon_activity(&self, item: &ActivityItem, delay_ms: i64) -> Result<()> {
        sqlx::query(
            "UPDATE worker_queue SET lock_owner = NULL, lock_until = 0,
                visible_at = reprise_now_ms() + $1
             WHERE seq = $2 AND generation = $3",
        )
        .bind(delay_ms)
        .bind(item.seq)
        .bind(item.generation)
        .execute(&self.pool)
        .await?;
        let change = Change {
            activities: true,
            ..Default::default()
        };
        self.signal(change, false).await;
        Ok(())
    }

    async fn renew_leases(&self, leases: &[Lease], lease_ms: i64) -> Result<Vec<Lease>> {
        if leases.is_empty() {
            return Ok(vec![]);
        }
        let (mut ids, mut id_gens, mut seqs, mut seq_gens) = (vec![], vec![], vec![], vec![]);
        for lease in leases {
            match lease {
                Lease::Instance(id, generation) => {
                    ids.push(id.clone());
                    id_gens.push(*generation);
                }
                Lease::Activity(seq, generation) => {
                    seqs.push(*seq);
                    seq_gens.push(*generation);
                }
            }
        }
        // A lease released by a commit, abandon or retry (lock_until = 0) is not held any
        // more: renewing it must not lock the row again. Rows are locked in key order (as
        // recording activity results locks them) so the two never deadlock.
        let rows = sqlx::query(
            "WITH instance_rows AS (
                SELECT i.instance_id FROM instances i
                JOIN UNNEST($2::text[], $3::bigint[]) AS l(instance_id, generation)
                    ON i.instance_id = l.instance_id AND i.generation = l.generation
                WHERE i.lock_until > 0
                ORDER BY i.instance_id FOR UPDATE OF i
            ), held_instances AS (
                UPDATE instances i SET lock_until = reprise_now_ms() + $1
                FROM instance_rows l WHERE i.instance_id = l.instance_id
                RETURNING i.instance_id, i.generation
            ), activity_rows AS (
                SELECT w.seq FROM worker_queue w
                JOIN UNNEST($4::bigint[], $5::bigint[]) AS l(seq, generation)
                    ON w.seq = l.seq AND w.generation = l.generation
                WHERE w.lock_until > 0
                ORDER BY w.seq FOR UPDATE OF w
            ), held_activities AS (
                UPDATE worker_queue w SET lock_until = reprise_now_ms() + $1
                FROM activity_rows l WHERE w.seq = l.seq
                RETURNING w.seq, w.generation
            )
            SELECT instance_id, NULL::bigint AS seq, generation FROM held_instances
            UNION ALL
            SELECT NULL::text, seq, generation FROM held_activities",
        )
        .bind(lease_ms)
        .bind(ids)
        .bind(id_gens)
        .bind(seqs)
        .bind(seq_gens)
        .fetch_all(&self.pool)
        .await?;
        let mut held = HashSet::new();
        for row in rows {
            let generation: i64 = row.try_get("generation")?;
            match row.try_get::<Option<String>, _>("instance_id")? {
                Some(id) => held.insert(Lease::Instance(id, generation)),
                None => held.insert(Lease::Activity(row.try_get("seq")?, generation)),
            };
        }
        Ok(leases
            .iter()
            .filter(|l| !held.contains(*l))
            .cloned()
            .collect())
    }

    async fn next_due(&self) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT LEAST(
                (SELECT MIN(visible_at) FROM orchestrator_queue WHERE visible_at > reprise_now_ms()),
                (SELECT MIN(visible_at) FROM worker_queue WHERE visible_at > reprise_now_ms()))",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    fn foreign_commit_poll(&self) -> Option<Duration> {
        // Other processes' commits arrive as notifications; polling covers what a dropped
        // LISTEN connection missed.
        Some(self.poll_interval)
    }
}
