//! The runtime: claims work from a provider, hands turns and activities to the host (the
//! JavaScript side) without waiting on its thread, commits results, renews leases and
//! drains on shutdown.

mod activities;
pub mod cache;
mod heartbeat;
mod held;
mod host;
mod jobs;
mod leases;
pub mod metrics;
mod slots;
mod turns;

use crate::error_code::ErrorCode;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{debug, info, info_span, warn, Instrument};

use crate::engine::lifecycle::Lifecycle;
use crate::engine::{
    prepare, ExecutionState, Job, Message, Payload, Plan, TaskError, Terminal, Turn, TurnInput,
    TurnOutcome, TurnReply,
};
use crate::store::{
    now_ms, ActivityItem, ActivityResult, DirectClaim, KnownHistories, Lease, OrchestrationClaim,
    OrchestrationItem, Orphans, QueueDepths, Routing, RuntimeRegistration, SessionRule,
    SharedProvider, StoreError, TagFilter, TurnCommit, ACTIVITY_KIND, ORCHESTRATION_KIND,
};
use activities::*;
use cache::GeneratorCache;
pub use host::Host;
use host::*;
pub use jobs::JobCall;
use leases::*;
use metrics::{add, inc, upkeep_loop, FailureCause, Metrics};
use slots::*;
use turns::*;

/// Names of the activities every runtime registers itself (`ctx.getValueFromInstance`);
/// user code cannot register names with this prefix.
pub const BUILTIN_PREFIX: &str = "reprise.";

#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub orchestration_concurrency: usize,
    pub worker_concurrency: usize,
    pub generator_cache_size: usize,
    /// Lease on an instance or activity; renewed every third of it while work runs.
    pub lease_ms: i64,
    /// Fallback poll for work committed by other processes.
    pub poll_interval_ms: u64,
    /// Deliveries after which a message or activity is poisoned.
    pub max_deliveries: u32,
    /// How long work for a name no runtime has ever had waits (from its creation) for
    /// code that knows it.
    pub not_registered_grace_ms: i64,
    /// How long work for a name that runtimes had waits after the last of them stopped
    /// (a deploy, an outage) before it fails as not registered.
    pub unserved_grace_ms: i64,
    /// Longest a driver call may take before the turn is abandoned.
    pub max_turn_ms: u64,
    /// An activity attempt running longer than this fails with `ERR_TIMEOUT` (unless its
    /// retry policy sets its own `timeoutMs`).
    pub activity_timeout_ms: u64,
    /// How often the queue depth gauges of the metrics snapshot are read from the store.
    pub metrics_interval_ms: u64,
    /// The stable name a deployment gives this process: one live runtime per name, and a
    /// restarted process with the name takes the previous one's work back at once.
    pub worker_node_id: Option<String>,
    /// This machine's name, for the registry of runtimes.
    pub host: String,
    /// How often the runtime refreshes its row in the registry of runtimes.
    pub heartbeat_interval_ms: u64,
    /// A runtime whose heartbeat is older than this is dead: its leases are released.
    pub heartbeat_timeout_ms: i64,
    /// Put on every line this runtime logs (as `service.name`, `service.version` of a span
    /// around its tasks).
    pub service_name: Option<String>,
    pub service_version: Option<String>,
    /// Activity sessions this runtime may hold at once.
    pub max_sessions_per_runtime: u32,
    /// A session with nothing running and no claim for this long is free for any worker.
    pub session_idle_timeout_ms: i64,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            orchestration_concurrency: 100,
            worker_concurrency: 100,
            generator_cache_size: 1000,
            lease_ms: 30_000,
            poll_interval_ms: 1_000,
            max_deliveries: 10,
            not_registered_grace_ms: 10_000,
            unserved_grace_ms: 600_000,
            max_turn_ms: 60_000,
            activity_timeout_ms: 300_000,
            metrics_interval_ms: 5_000,
            worker_node_id: None,
            host: String::new(),
            heartbeat_interval_ms: 1_000,
            heartbeat_timeout_ms: 3_000,
            service_name: None,
            service_version: None,
            max_sessions_per_runtime: 10,
            session_idle_timeout_ms: 300_000,
        }
    }
}

impl RuntimeOptions {
    /// The not-registered rule: how long work for a name nothing here has went without a
    /// runtime that has it, once that is long enough to fail it (`None`: it waits on). A
    /// name no runtime ever had fails `not_registered_grace_ms` after the work's creation;
    /// one that runtimes had, `unserved_grace_ms` after the last of them stopped.
    pub fn unregistered_for(
        &self,
        now: i64,
        created_at: i64,
        last_seen: Option<i64>,
    ) -> Option<i64> {
        let age = now - created_at;
        if age < self.not_registered_grace_ms {
            return None;
        }
        match last_seen {
            None => Some(age),
            Some(seen) => {
                let gone = now - seen;
                (gone >= self.unserved_grace_ms).then_some(gone.min(age))
            }
        }
    }
}

/// What code this process has: orchestration names with their versions, activity names.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub orchestrations: HashMap<String, Vec<String>>,
    pub activities: HashSet<String>,
    /// Which tagged activities this process takes (`workerTagFilter`).
    pub tags: TagFilter,
}

impl Registry {
    /// What the registry of runtimes records this process runs, as JSON (as
    /// [`Registry::names`] counts it).
    pub fn capabilities_json(&self, options: &RuntimeOptions) -> String {
        let (runs_orchestrations, runs_activities) = self.runs(options);
        let mut orchestrations: Vec<_> = self
            .orchestrations
            .iter()
            .filter(|_| runs_orchestrations)
            .map(|(name, versions)| {
                let mut versions = versions.clone();
                versions.sort();
                serde_json::json!({ "name": name, "versions": versions })
            })
            .collect();
        orchestrations.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        let mut activities: Vec<_> = self
            .activities
            .iter()
            .filter(|_| runs_activities)
            .cloned()
            .collect();
        activities.sort();
        serde_json::json!({ "orchestrations": orchestrations, "activities": activities, "tags": self.tags })
            .to_string()
    }

    /// What the registry of names records this process runs: `(kind, name, version)`.
    /// A runtime that claims no orchestrations (or no activities) runs none of their names.
    pub fn names(&self, options: &RuntimeOptions) -> Vec<(String, String, String)> {
        let (runs_orchestrations, runs_activities) = self.runs(options);
        let mut names: Vec<_> = self
            .orchestrations
            .iter()
            .filter(|_| runs_orchestrations)
            .flat_map(|(name, versions)| {
                versions
                    .iter()
                    .map(move |v| (ORCHESTRATION_KIND.to_owned(), name.clone(), v.clone()))
            })
            .collect();
        names.extend(
            self.activities
                .iter()
                .filter(|_| runs_activities)
                .map(|a| (ACTIVITY_KIND.to_owned(), a.clone(), String::new())),
        );
        names
    }

    /// Whether the runtime claims orchestrations, and activities.
    fn runs(&self, options: &RuntimeOptions) -> (bool, bool) {
        (
            options.orchestration_concurrency > 0,
            options.worker_concurrency > 0 && self.tags != TagFilter::None,
        )
    }

    /// The claim rule's inputs for this registry (no orphans yet).
    fn routing(&self, options: &RuntimeOptions, session_owner: String) -> Routing {
        let mut orchestrations: Vec<(String, Vec<String>)> = self
            .orchestrations
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        orchestrations.sort();
        let mut activities: Vec<String> = self.activities.iter().cloned().collect();
        activities.sort();
        Routing {
            orchestrations,
            activities,
            tags: self.tags.clone(),
            orphans: Orphans::default(),
            unserved_grace_ms: options.unserved_grace_ms,
            not_registered_grace_ms: options.not_registered_grace_ms,
            sessions: SessionRule {
                owner: session_owner,
                max: options.max_sessions_per_runtime,
                idle_ms: options.session_idle_timeout_ms,
            },
        }
    }

    /// The version a new execution of `name` gets: the one asked for, or the highest.
    pub fn resolve(&self, name: &str, requested: Option<&str>) -> Option<String> {
        let versions = self.orchestrations.get(name)?;
        match requested {
            Some(v) => versions.iter().find(|x| x.as_str() == v).cloned(),
            None => versions
                .iter()
                .max_by(
                    |a, b| match (semver::Version::parse(a), semver::Version::parse(b)) {
                        (Ok(a), Ok(b)) => a.cmp(&b),
                        _ => a.cmp(b),
                    },
                )
                .cloned(),
        }
    }
}

struct RunningActivity {
    item: ActivityItem,
    started: Instant,
    timeout: Duration,
}

struct Inner {
    provider: SharedProvider,
    host: Box<dyn Host>,
    options: RuntimeOptions,
    registry: Registry,
    /// What claims may take: the registry's names and the orphans the upkeep loop found.
    routing: std::sync::RwLock<Arc<Routing>>,
    /// Queued rows (orchestration, activity) that no live runtime can run, for metrics.
    unserved: Mutex<(u64, u64)>,
    owner: String,
    /// This runtime's row in the registry of runtimes, refreshed by its heartbeat.
    registration: RuntimeRegistration,
    next_token: AtomicU64,
    turns: Mutex<HashMap<u64, oneshot::Sender<String>>>,
    inflight: Mutex<HashMap<String, i64>>,
    /// In-flight turns whose lease a renewal found lost: no longer renewed; their commit
    /// will be refused (and counted then).
    lost_turns: Mutex<HashSet<String>>,
    /// Running activities (by seq) whose orchestration cancelled them: their row is gone, so
    /// a late result or renewal refused for them is not a lost lease.
    canceled_running: Mutex<HashSet<i64>>,
    /// Activities taken out of `running` whose outcomes are being recorded (changed only under
    /// the `running` lock, so shutdown never sees an outcome in neither).
    settling: AtomicUsize,
    cache: Arc<Mutex<GeneratorCache>>,
    /// What claims may skip of a history: the part the cache holds the engine's state for.
    known_histories: KnownHistories,
    running: Mutex<HashMap<i64, RunningActivity>>,
    completions: mpsc::UnboundedSender<(i64, String)>,
    /// Taken by [`Runtime::run`] for the completion loop.
    completion_rx: Mutex<Option<mpsc::UnboundedReceiver<(i64, String)>>>,
    stopping: AtomicBool,
    stop: Notify,
    /// A turn or an activity finished: capacity freed, shutdown may be done.
    progress: Notify,
    metrics: Metrics,
    /// Worker slots promised to activities being claimed (not yet in `running`).
    worker_slots: Slots,
    /// Turn slots promised to instances being claimed (not yet in `inflight`).
    turn_slots: Slots,
    /// The latest queue depths read from the store, and when.
    queue_depths: Mutex<Option<(Instant, QueueDepths)>>,
    /// Someone in JavaScript listens to `runtime.events()`: send lifecycle events.
    events_enabled: AtomicBool,
    /// Instances whose commit's events are not sent yet, with events held back until they
    /// are (an activity the commit queued may start first elsewhere in this runtime).
    held_events: Mutex<HashMap<String, Vec<Json>>>,
    /// Entered around every task of this runtime: its service fields on every line.
    span: tracing::Span,
}

impl Inner {
    /// The claim rule's inputs as of now.
    fn routing(&self) -> Arc<Routing> {
        self.routing.read().unwrap().clone()
    }

    /// An orchestration claim for this runtime of up to `max` instances.
    fn orchestration_claim(&self, max: usize) -> OrchestrationClaim {
        OrchestrationClaim {
            owner: self.owner.clone(),
            lease_ms: self.options.lease_ms,
            max,
            known: self.known_histories.clone(),
            routing: self.routing(),
        }
    }
}

/// A started runtime.
pub struct Runtime {
    inner: Arc<Inner>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Runtime {
    /// Starts dispatching. Must be called inside a tokio runtime.
    /// Attaches to the store; nothing runs until [`Runtime::run`]. The host must be able to
    /// hand answers back (`complete_turn`, `complete_activity`) before `run` sends it work.
    pub async fn attach(
        provider: SharedProvider,
        host: Box<dyn Host>,
        options: RuntimeOptions,
        registry: Registry,
    ) -> Result<Runtime, StoreError> {
        let span = service_span(&options);
        let owner = format!("{}:{}", std::process::id(), uuid::Uuid::new_v4());
        let registration = RuntimeRegistration {
            runtime_id: owner.clone(),
            worker_node_id: options.worker_node_id.clone(),
            host: options.host.clone(),
            pid: std::process::id(),
            stale_after_ms: options.heartbeat_timeout_ms,
            capabilities: registry.capabilities_json(&options),
            names: registry.names(&options),
        };
        let routing = registry.routing(
            &options,
            options
                .worker_node_id
                .clone()
                .unwrap_or_else(|| owner.clone()),
        );
        let reaped = async {
            let replace = match &options.worker_node_id {
                Some(node) => heartbeat::dead_predecessor(&provider, node, &registration).await?,
                None => None,
            };
            provider
                .attach_runtime(&registration, replace.as_deref())
                .await
        }
        .instrument(span.clone())
        .await?;
        span.in_scope(|| {
            heartbeat::log_reaped(&reaped);
            info!(
                store = %provider.describe(),
                runtime = %owner,
                orchestrations = registry.orchestrations.len(),
                activities = registry
                    .activities
                    .iter()
                    .filter(|name| !name.starts_with(BUILTIN_PREFIX))
                    .count(),
                options = ?options,
                "runtime started"
            );
        });
        let (completions, completion_rx) = mpsc::unbounded_channel();
        let cache = Arc::new(Mutex::new(GeneratorCache::new(
            options.generator_cache_size,
        )));
        let known_histories = {
            let cache = cache.clone();
            KnownHistories::new(move |id| cache.lock().unwrap().known(id))
        };
        let inner = Arc::new(Inner {
            completion_rx: Mutex::new(Some(completion_rx)),
            cache,
            known_histories,
            provider,
            host,
            options,
            registry,
            routing: std::sync::RwLock::new(Arc::new(routing)),
            unserved: Mutex::new((0, 0)),
            owner,
            registration,
            next_token: AtomicU64::new(1),
            turns: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            lost_turns: Mutex::new(HashSet::new()),
            canceled_running: Mutex::new(HashSet::new()),
            settling: AtomicUsize::new(0),
            running: Mutex::new(HashMap::new()),
            completions,
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
            progress: Notify::new(),
            metrics: Metrics::default(),
            events_enabled: AtomicBool::new(false),
            held_events: Mutex::new(HashMap::new()),
            queue_depths: Mutex::new(None),
            worker_slots: Slots::default(),
            turn_slots: Slots::default(),
            span,
        });
        Ok(Runtime {
            inner,
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Starts claiming and dispatching work (once).
    pub fn run(&self) {
        let Some(completion_rx) = self.inner.completion_rx.lock().unwrap().take() else {
            return;
        };
        let inner = &self.inner;
        // Tasks these loops spawn stay in the span (`in_current_span`).
        let span = &inner.span;
        let mut tasks = self.tasks.lock().unwrap();
        // An activity-only worker (`orchestrationConcurrency: 0`) never claims instances.
        if inner.options.orchestration_concurrency > 0 {
            tasks.push(tokio::spawn(
                orchestration_loop(inner.clone()).instrument(span.clone()),
            ));
        }
        tasks.extend([
            tokio::spawn(activity_loop(inner.clone()).instrument(span.clone())),
            tokio::spawn(completion_loop(inner.clone(), completion_rx).instrument(span.clone())),
            tokio::spawn(lease_loop(inner.clone()).instrument(span.clone())),
            tokio::spawn(upkeep_loop(inner.clone()).instrument(span.clone())),
            tokio::spawn(heartbeat::heartbeat_loop(inner.clone()).instrument(span.clone())),
        ]);
    }

    /// The driver's answer for activation `token` (called on the JavaScript thread).
    pub fn complete_turn(&self, token: u64, reply: String) {
        if let Some(tx) = self.inner.turns.lock().unwrap().remove(&token) {
            let _ = tx.send(reply);
        }
    }

    /// An activity settled: `{"ok": value}` or `{"err": {message, code, name}}`.
    pub fn complete_activity(&self, id: i64, result: String) {
        let _ = self.inner.completions.send((id, result));
    }

    /// Turns the lifecycle event feed to JavaScript (`{"kind":"events"}` messages) on or off.
    pub fn set_events(&self, enabled: bool) {
        self.inner.events_enabled.store(enabled, Ordering::Relaxed);
    }

    /// This runtime's id in the registry of runtimes (its leases' owner).
    pub fn id(&self) -> &str {
        &self.inner.owner
    }

    pub fn metrics_json(&self) -> String {
        let gauges = [
            (
                "inflight_turns",
                self.inner.inflight.lock().unwrap().len() as u64,
            ),
            (
                "running_activities",
                self.inner.running.lock().unwrap().len() as u64,
            ),
            (
                "cached_generators",
                self.inner.cache.lock().unwrap().len() as u64,
            ),
        ];
        let mut gauges = gauges.to_vec();
        if let Some((at, d)) = self.inner.queue_depths.lock().unwrap().as_ref() {
            gauges.extend([
                ("queue_orchestrator_visible", d.orchestrator_visible),
                ("queue_orchestrator_delayed", d.orchestrator_delayed),
                ("queue_worker_visible", d.worker_visible),
                ("queue_worker_running", d.worker_running),
                ("queue_worker_delayed", d.worker_delayed),
                ("queue_depth_age_ms", at.elapsed().as_millis() as u64),
            ]);
        }
        let (orchestrations, activities) = *self.inner.unserved.lock().unwrap();
        gauges.extend([
            ("orchestrations_without_runtime", orchestrations),
            ("activities_without_runtime", activities),
        ]);
        gauges.extend(self.inner.provider.counters());
        self.inner.metrics.snapshot_json(&gauges)
    }

    /// Stops claiming, waits for in-flight work up to `timeout`, then aborts and abandons
    /// what is left (to run again later; never recorded as failed).
    pub async fn shutdown(&self, timeout: Duration) {
        let span = self.inner.span.clone();
        self.drain_and_stop(timeout).instrument(span).await
    }

    async fn drain_and_stop(&self, timeout: Duration) {
        let inner = &self.inner;
        inner.stopping.store(true, Ordering::SeqCst);
        inner.stop.notify_waiters();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let progress = inner.progress.notified();
            if inner.inflight.lock().unwrap().is_empty() && drained_activities(inner) {
                break;
            }
            if tokio::time::timeout_at(deadline, progress).await.is_err() {
                break;
            }
        }
        // At the deadline: abandon what is left.
        let leftover: Vec<ActivityItem> = inner
            .running
            .lock()
            .unwrap()
            .drain()
            .map(|(_, r)| r.item)
            .collect();
        if !leftover.is_empty() {
            abort_in_js(
                inner,
                leftover.iter().map(|i| i.seq).collect(),
                "the runtime is shutting down",
            );
            for item in &leftover {
                add(&inner.metrics.activities_abandoned, 1);
                let _ = inner.provider.abandon_activity(item, 0).await;
            }
        }
        // Pending turns: dropping their reply channels makes each turn task abandon itself.
        inner.turns.lock().unwrap().clear();
        let wait_turns = async {
            loop {
                let progress = inner.progress.notified();
                if inner.inflight.lock().unwrap().is_empty() {
                    break;
                }
                progress.await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), wait_turns).await;
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        let _ = inner.provider.detach_runtime(&inner.owner).await;
        info!(
            store = %inner.provider.describe(),
            runtime = %inner.owner,
            activities_abandoned = leftover.len(),
            "runtime stopped"
        );
    }
}

/// The span of a runtime with a service name or version (none otherwise, so lines stay as
/// they were). At error level so that any level enables it.
fn service_span(options: &RuntimeOptions) -> tracing::Span {
    if options.service_name.is_none() && options.service_version.is_none() {
        return tracing::Span::none();
    }
    tracing::error_span!(
        target: "reprise",
        "service",
        service.name = options.service_name.as_deref(),
        service.version = options.service_version.as_deref(),
    )
}

/// No activity runs here and none has an outcome still being recorded.
fn drained_activities(inner: &Inner) -> bool {
    let running = inner.running.lock().unwrap();
    running.is_empty() && inner.settling.load(Ordering::SeqCst) == 0
}

fn stopping(inner: &Inner) -> bool {
    inner.stopping.load(Ordering::SeqCst)
}

/// Waits for a wake-up, the next due time, the fallback poll, or shutdown.
async fn idle_wait(inner: &Inner, wake: &Notify) {
    let poll = inner.options.poll_interval_ms as i64;
    let sleep_ms = match inner.provider.next_due().await {
        Ok(Some(due)) => (due - now_ms()).clamp(0, poll),
        _ => poll,
    };
    tokio::select! {
        _ = wake.notified() => {}
        _ = tokio::time::sleep(Duration::from_millis(sleep_ms as u64)) => {}
        _ = inner.stop.notified() => {}
    }
}

async fn store_error_pause(inner: &Inner, what: &str, e: &StoreError) {
    inc(&inner.metrics.store_errors);
    // An unreachable store is logged once by the heartbeat, not by every loop.
    if e.is_unavailable() {
        debug!(error = %e, "{what} failed; retrying");
    } else {
        warn!(error = %e, "{what} failed; retrying");
    }
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        _ = inner.stop.notified() => {}
    }
}

#[cfg(test)]
mod simulation;
#[cfg(test)]
mod tests;
