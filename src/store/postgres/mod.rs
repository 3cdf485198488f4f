//! The PostgreSQL provider: a connection pool on one schema (a tenant), claims batched with
//! `FOR UPDATE SKIP LOCKED`, one transaction per turn fenced by the lease generation, and
//! wake-ups between processes over LISTEN/NOTIFY (one channel per schema), sent after the
//! commit and coalesced. Many processes share one database; leases are taken over once they
//! expire. The store's clock is the database's (`reprise_now_ms()`, see the migration).
//!
//! One file per concern, as in `sqlite/`: `instances` (a client's instance), `claim`
//! (claims and leases), `commit` (a turn), `activities`, `rewind` and `management`, with
//! `queue` for the inserts they share. `config` (URLs and names), `tls` (the URL's TLS
//! settings and handshake failures) and `notify` (wake-ups between processes) are
//! PostgreSQL's own.

mod activities;
mod claim;
mod commit;
mod config;
mod group_commit;
mod instances;
mod jobs;
mod kv;
mod management;
mod notify;
mod pool;
mod queue;
mod registry;
mod rewind;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::engine::{HistoryRow, Message, RewindPlan, StartRequest};
use crate::store::{
    ActivityAttempt, ActivityItem, ActivityResult, DeleteFilter, Deletion, ExecutionInfo,
    InstanceFilter, InstanceInfo, InstancePage, InstanceStats, JobAwait, JobBegin, JobFence,
    JobLog, JobState, JobWrite, KvEntry, Lease, OrchestrationClaim, OrchestrationItem, Provider,
    QueueDepths, Reaped, Result, Routing, RuntimeInfo, RuntimeRegistration, StoreError,
    SystemMetrics, TurnCommit, UnservedWork, Wakers, DEFAULT_UNKNOWN_EVENT_TTL_MS,
};
pub use config::{application_name, channel_name, redact_url, validate_schema};
use config::{connect_error, describe_target, parse_url, quote_ident};
use notify::{listen, listen_loop, notify_loop, Outgoing};

/// The schema used when none is given.
pub const DEFAULT_SCHEMA: &str = "public";

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
    /// How long events for instances that do not exist are kept.
    pub unknown_event_ttl_ms: i64,
    /// Create the schema when it does not exist (`false`: a missing schema is an error).
    pub create_schema: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: None,
            pool_size: 10,
            poll_interval_ms: 1_000,
            connect_timeout_ms: 10_000,
            unknown_event_ttl_ms: DEFAULT_UNKNOWN_EVENT_TTL_MS,
            create_schema: true,
        }
    }
}

pub struct PostgresProvider {
    pool: Arc<pool::Pool>,
    /// Turns for the group committer, and what it committed.
    committer: mpsc::UnboundedSender<group_commit::PendingTurn>,
    commits: Arc<group_commit::GroupCounters>,
    /// Starts for the start gatherer.
    starter: mpsc::UnboundedSender<instances::PendingStart>,
    /// Statements each gatherer may have in flight; a caller that finds one free runs its
    /// own statement at once.
    commit_permits: Arc<tokio::sync::Semaphore>,
    start_permits: Arc<tokio::sync::Semaphore>,
    schema: String,
    wakers: Arc<Wakers>,
    /// Changes for the notifier task, which tells the other processes.
    changes: mpsc::UnboundedSender<Outgoing>,
    /// The NOTIFY channel of the schema, and this provider's name in the payloads.
    channel: String,
    sender: String,
    poll_interval: Duration,
    unknown_event_ttl_ms: i64,
    /// Server, database and user (no password), for logs.
    target: String,
    listener: JoinHandle<()>,
}

impl Drop for PostgresProvider {
    fn drop(&mut self) {
        // The notifier ends by itself once it has sent what is queued (its sender is gone).
        self.listener.abort();
    }
}

impl PostgresProvider {
    /// Connects, creates the schema if missing and runs the migrations in it, then starts
    /// listening for other processes' changes. An unreachable server or a bad URL fails
    /// within `connect_timeout_ms` with a [`StoreError::Unavailable`] naming the server (a bad
    /// URL or option, or a failed TLS handshake: [`StoreError::Config`]).
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
                Ok(Err(e)) => return Err(tls::connect_failure(&target, &connect, e)),
                Ok(Ok(conn)) => conn,
            };
        prepare_schema(&mut conn, &schema, options.create_schema).await?;
        let _ = conn.close().await;

        // Generic plans, planned once per connection and statement: no statement here
        // depends on its parameters' values for its plan (a claim's names are constants in
        // its text), and the claim and commit statements are large enough that planning
        // them anew at each execution would cost more than running them.
        let set_path = format!(
            "SET search_path TO {}; SET plan_cache_mode = force_generic_plan",
            quote_ident(&schema)
        );
        // The pool waits up to the connect timeout; `conn` fails sooner when the wait is not
        // for busy connections but for a server that does not answer.
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
        tokio::spawn(notify_loop(
            pool.clone(),
            channel.clone(),
            sender.clone(),
            rx,
        ));
        let pool = Arc::new(pool::Pool::new(pool, options.pool_size, target.clone()));
        let (committer, turns) = mpsc::unbounded_channel();
        let commits = Arc::new(group_commit::GroupCounters::default());
        let commit_permits = group_commit::permits();
        tokio::spawn(group_commit::committer(
            pool.clone(),
            turns,
            commit_permits.clone(),
            commits.clone(),
        ));
        let (starter, starts) = mpsc::unbounded_channel();
        let start_permits = group_commit::permits();
        tokio::spawn(instances::starter(
            instances::Starter {
                pool: pool.clone(),
                channel: channel.clone(),
                sender: sender.clone(),
                event_ttl_ms: options.unknown_event_ttl_ms,
            },
            starts,
            start_permits.clone(),
        ));
        Ok(Arc::new(PostgresProvider {
            pool,
            committer,
            commits,
            starter,
            commit_permits,
            start_permits,
            schema,
            wakers,
            changes,
            channel,
            sender,
            poll_interval: Duration::from_millis(options.poll_interval_ms.max(1)),
            unknown_event_ttl_ms: options.unknown_event_ttl_ms,
            target: target.clone(),
            listener,
        }))
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }
}

/// Creates the schema if needed, points `conn` at it and runs the migrations there.
async fn prepare_schema(conn: &mut PgConnection, schema: &str, create: bool) -> Result<()> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(&mut *conn)
            .await?;
    if !exists && !create {
        return Err(StoreError::NotFound(format!(
            "the schema '{schema}' does not exist (createSchema is false: it is not created)"
        )));
    }
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

#[async_trait]
impl Provider for PostgresProvider {
    fn wakers(&self) -> &Arc<Wakers> {
        &self.wakers
    }

    fn describe(&self) -> String {
        format!("PostgreSQL {} schema {}", self.target, self.schema)
    }

    async fn now(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT reprise_now_ms()")
            .fetch_one(&mut *self.pool.conn().await?)
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

    async fn create_instances(&self, starts: &[StartRequest]) -> Result<Vec<bool>> {
        instances::create_instances(self, starts).await
    }

    async fn create_instance(&self, start: &StartRequest) -> Result<bool> {
        instances::create_instance(self, start).await
    }

    async fn enqueue(&self, instance_id: &str, message: &Message) -> Result<()> {
        instances::enqueue(self, instance_id, message).await
    }

    async fn instance(&self, instance_id: &str) -> Result<Option<InstanceInfo>> {
        instances::instance(self, instance_id).await
    }

    async fn history(
        &self,
        instance_id: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<HistoryRow>> {
        instances::history(self, instance_id, execution_id).await
    }

    async fn history_after(
        &self,
        instance_id: &str,
        execution_id: u64,
        after_event_id: u64,
    ) -> Result<Vec<HistoryRow>> {
        instances::history_after(self, instance_id, execution_id, after_event_id).await
    }

    async fn delete_instance(&self, instance_id: &str, force: bool) -> Result<Deletion> {
        instances::delete_instance(self, instance_id, force).await
    }

    async fn rewind_instance(
        &self,
        instance_id: &str,
        plan: &RewindPlan,
        updated_at: i64,
    ) -> Result<bool> {
        rewind::rewind_instance(self, instance_id, plan, updated_at).await
    }

    async fn list_instances(&self, filter: &InstanceFilter) -> Result<InstancePage> {
        management::list_instances(self, filter).await
    }

    async fn list_executions(&self, instance_id: &str) -> Result<Vec<ExecutionInfo>> {
        management::list_executions(self, instance_id).await
    }

    async fn system_metrics(&self) -> Result<SystemMetrics> {
        management::system_metrics(self).await
    }

    async fn activity_attempts(&self, instance_id: &str) -> Result<Vec<ActivityAttempt>> {
        management::activity_attempts(self, instance_id).await
    }

    async fn expire_unknown_events(&self) -> Result<u64> {
        management::expire_unknown_events(self).await
    }

    async fn queue_depths(&self) -> Result<QueueDepths> {
        management::queue_depths(self).await
    }

    async fn kv_values(&self, instance_id: &str, key: Option<&str>) -> Result<Vec<KvEntry>> {
        kv::values(self, instance_id, key).await
    }

    async fn instance_stats(&self, instance_id: &str) -> Result<Option<InstanceStats>> {
        kv::instance_stats(self, instance_id).await
    }

    async fn finished_instances(&self, filter: &DeleteFilter) -> Result<Vec<String>> {
        management::finished_instances(self, filter).await
    }

    async fn prune_executions(
        &self,
        instance_id: &str,
        keep_last: Option<u32>,
        completed_before: Option<i64>,
    ) -> Result<u64> {
        management::prune_executions(self, instance_id, keep_last, completed_before).await
    }

    async fn attach_runtime(
        &self,
        runtime: &RuntimeRegistration,
        replace: Option<&str>,
    ) -> Result<Reaped> {
        registry::attach_runtime(self, runtime, replace).await
    }

    async fn detach_runtime(&self, runtime_id: &str) -> Result<()> {
        registry::detach_runtime(self, runtime_id).await
    }

    async fn heartbeat(&self, runtime: &RuntimeRegistration, reap: bool) -> Result<Reaped> {
        registry::heartbeat(self, runtime, reap).await
    }

    async fn list_runtimes(&self) -> Result<Vec<RuntimeInfo>> {
        registry::list_runtimes(self).await
    }

    async fn claim_orchestrations(
        &self,
        claim: &OrchestrationClaim,
    ) -> Result<Vec<OrchestrationItem>> {
        claim::claim_orchestrations(self, claim).await
    }

    async fn commit_turn(&self, commit: TurnCommit) -> Result<Vec<ActivityItem>> {
        commit::commit_turn(self, commit).await
    }

    async fn abandon_orchestration(
        &self,
        instance_id: &str,
        generation: i64,
        delay_ms: i64,
        count_delivery: bool,
    ) -> Result<()> {
        claim::abandon_orchestration(self, instance_id, generation, delay_ms, count_delivery).await
    }

    async fn claim_activities(
        &self,
        owner: &str,
        lease_ms: i64,
        max: usize,
        routing: &Routing,
    ) -> Result<Vec<ActivityItem>> {
        activities::claim_activities(self, owner, lease_ms, max, routing).await
    }

    async fn unserved_work(&self, live_ms: i64) -> Result<UnservedWork> {
        registry::unserved_work(self, live_ms).await
    }

    async fn job_begin(&self, fence: JobFence, key: Option<String>) -> Result<JobBegin> {
        jobs::begin(self, fence, key).await
    }

    async fn job_write(&self, fence: JobFence, writes: Vec<JobWrite>) -> Result<bool> {
        jobs::write(self, fence, writes).await
    }

    async fn job_await(
        &self,
        fence: JobFence,
        name: String,
        event: String,
        deadline: Option<i64>,
        give_up: bool,
    ) -> Result<JobAwait> {
        jobs::await_event(self, fence, name, event, deadline, give_up).await
    }

    async fn job_emit(&self, event: String, payload: String) -> Result<u64> {
        jobs::emit(self, event, payload).await
    }

    async fn job_clear_event(&self, event: String) -> Result<bool> {
        jobs::clear_event(self, event).await
    }

    async fn job_queue_key(&self, instance_id: String, key: String) -> Result<()> {
        jobs::queue_key(self, instance_id, key).await
    }

    async fn job_release(&self, instance_id: String) -> Result<()> {
        jobs::release(self, instance_id).await
    }

    async fn job_reset(&self, instance_id: String) -> Result<u64> {
        jobs::reset(self, instance_id).await
    }

    async fn job_state(&self, instance_id: String) -> Result<JobState> {
        jobs::state(self, instance_id).await
    }

    async fn job_logs(
        &self,
        instance_id: String,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<JobLog>> {
        jobs::logs(self, instance_id, after_seq, limit).await
    }

    async fn last_registered(
        &self,
        kind: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<i64>> {
        registry::last_registered(self, kind, name, version).await
    }

    async fn complete_activities(
        &self,
        outcomes: Vec<(ActivityItem, ActivityResult)>,
    ) -> Result<Vec<bool>> {
        let (recorded, _) = activities::complete_activities(self, outcomes, None).await?;
        Ok(recorded)
    }

    async fn complete_activities_and_claim(
        &self,
        outcomes: Vec<(ActivityItem, ActivityResult)>,
        claim: &OrchestrationClaim,
    ) -> Result<(Vec<bool>, Vec<OrchestrationItem>)> {
        activities::complete_activities(self, outcomes, Some(claim)).await
    }

    async fn retry_activity(
        &self,
        item: &ActivityItem,
        visible_at: i64,
        next_attempt: u32,
    ) -> Result<bool> {
        activities::retry_activity(self, item, visible_at, next_attempt).await
    }

    async fn abandon_activity(&self, item: &ActivityItem, delay_ms: i64) -> Result<()> {
        activities::abandon_activity(self, item, delay_ms).await
    }

    async fn renew_leases(&self, leases: &[Lease], lease_ms: i64) -> Result<Vec<Lease>> {
        claim::renew_leases(self, leases, lease_ms).await
    }

    async fn next_due(&self) -> Result<Option<i64>> {
        claim::next_due(self).await
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        // The group committer's statements and the turns they carried.
        vec![
            (
                "store_transactions",
                self.commits
                    .statements
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
            (
                "store_operations",
                self.commits
                    .turns
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
        ]
    }

    fn foreign_commit_poll(&self) -> Option<Duration> {
        // Other processes' commits arrive as notifications; polling covers what a dropped
        // LISTEN connection missed.
        Some(self.poll_interval)
    }
}
