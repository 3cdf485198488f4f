//! The runtime: claims work from a provider, hands turns and activities to the host (the
//! JavaScript side) without waiting on its thread, commits results, renews leases and
//! drains on shutdown.

pub mod cache;
pub mod metrics;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{debug, info_span, warn, Instrument};

use crate::engine::lifecycle::Lifecycle;
use crate::engine::{
    prepare, Job, Message, Payload, Plan, TaskError, Terminal, Turn, TurnInput, TurnOutcome,
    TurnReply,
};
use crate::store::{
    now_ms, ActivityItem, ActivityResult, DirectClaim, Lease, OrchestrationClaim,
    OrchestrationItem, QueueDepths, SharedProvider, StoreError, TurnCommit,
};
use cache::GeneratorCache;
use metrics::{add, inc, Metrics};

/// Where activations and activities go: the JavaScript driver, behind a non-blocking call.
pub trait Host: Send + Sync + 'static {
    /// Queues `message` for the JavaScript thread; `false` if it can no longer be delivered.
    fn send(&self, message: String) -> bool;
}

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
    /// How long work for an unregistered name waits for code that knows it.
    pub not_registered_grace_ms: i64,
    /// Longest a driver call may take before the turn is abandoned.
    pub max_turn_ms: u64,
    /// An activity attempt running longer than this fails with `ERR_TIMEOUT` (unless its
    /// retry policy sets its own `timeoutMs`).
    pub activity_timeout_ms: u64,
    /// How often the queue depth gauges of the metrics snapshot are read from the store.
    pub metrics_interval_ms: u64,
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
            max_turn_ms: 60_000,
            activity_timeout_ms: 300_000,
            metrics_interval_ms: 5_000,
        }
    }
}

/// What code this process has: orchestration names with their versions, activity names.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub orchestrations: HashMap<String, Vec<String>>,
    pub activities: HashSet<String>,
}

impl Registry {
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
    owner: String,
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
    cache: Mutex<GeneratorCache>,
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
    held_events: Mutex<HashMap<String, Vec<String>>>,
}

/// A started runtime.
pub struct Runtime {
    inner: Arc<Inner>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Activation<'a> {
    token: u64,
    instance_id: &'a str,
    execution_id: u64,
    name: &'a str,
    version: Option<&'a str>,
    /// Replace any cached generator: this activation replays from the start.
    fresh: bool,
    /// Keep the generator after this turn.
    keep: bool,
    replay_count: usize,
    jobs: &'a [Job],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActivityDelivery<'a> {
    id: i64,
    instance_id: &'a str,
    execution_id: u64,
    task: u32,
    name: &'a str,
    input: &'a RawValue,
    attempt: u32,
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
        let owner = format!("{}:{}", std::process::id(), uuid::Uuid::new_v4());
        provider.attach_runtime(&owner).await?;
        let (completions, completion_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            completion_rx: Mutex::new(Some(completion_rx)),
            cache: Mutex::new(GeneratorCache::new(options.generator_cache_size)),
            provider,
            host,
            options,
            registry,
            owner,
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
        self.tasks.lock().unwrap().extend([
            tokio::spawn(orchestration_loop(inner.clone())),
            tokio::spawn(activity_loop(inner.clone())),
            tokio::spawn(completion_loop(inner.clone(), completion_rx)),
            tokio::spawn(lease_loop(inner.clone())),
            tokio::spawn(queue_depth_loop(inner.clone())),
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
        gauges.extend(self.inner.provider.counters());
        self.inner.metrics.snapshot_json(&gauges)
    }

    /// Stops claiming, waits for in-flight work up to `timeout`, then aborts and abandons
    /// what is left (to run again later; never recorded as failed).
    pub async fn shutdown(&self, timeout: Duration) {
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
    }
}

/// No activity runs here and none has an outcome still being recorded.
fn drained_activities(inner: &Inner) -> bool {
    let running = inner.running.lock().unwrap();
    running.is_empty() && inner.settling.load(Ordering::SeqCst) == 0
}

fn events_enabled(inner: &Inner) -> bool {
    inner.events_enabled.load(Ordering::Relaxed)
}

/// Sends lifecycle events (JSON objects) to JavaScript.
fn emit_events(inner: &Inner, events: &[String]) {
    if events.is_empty() {
        return;
    }
    let message = format!("{{\"kind\":\"events\",\"events\":[{}]}}", events.join(","));
    inner.host.send(message);
}

fn activity_event<'a>(kind: &'static str, item: &'a ActivityItem, attempt: u32) -> Lifecycle<'a> {
    let mut l = Lifecycle::new(kind, &item.instance_id, item.execution_id, now_ms());
    l.task = Some(item.task);
    l.name = Some(&item.name);
    l.attempt = Some(attempt);
    l
}

fn stopping(inner: &Inner) -> bool {
    inner.stopping.load(Ordering::SeqCst)
}

fn abort_in_js(inner: &Inner, ids: Vec<i64>, reason: &str) {
    if ids.is_empty() {
        return;
    }
    let message = serde_json::json!({"kind": "abort", "ids": ids, "reason": reason}).to_string();
    inner.host.send(message);
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
    warn!(error = %e, "{what} failed; retrying");
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        _ = inner.stop.notified() => {}
    }
}

/// Capacity shared by a dispatcher loop and the shortcuts that claim work along the way (a
/// commit claiming its activities, a completion claiming the instances it woke). Every
/// claim reserves its slots first, under one lock, so two claimers never take the same slot;
/// the reservation is released once the work is counted as in flight.
#[derive(Default)]
struct Slots {
    reserved: Mutex<usize>,
}

impl Slots {
    /// Reserves up to `wanted` of the slots below `limit` not taken by `in_flight()` or by
    /// other reservations.
    fn reserve(&self, limit: usize, in_flight: impl FnOnce() -> usize, wanted: usize) -> usize {
        let mut reserved = self.reserved.lock().unwrap();
        let free = limit.saturating_sub(in_flight() + *reserved).min(wanted);
        *reserved += free;
        free
    }

    fn release(&self, n: usize) {
        let mut reserved = self.reserved.lock().unwrap();
        *reserved = reserved.saturating_sub(n);
    }
}

/// No free slot: wait for progress (or a short while) before looking again.
async fn wait_for_capacity(inner: &Inner) {
    tokio::select! {
        _ = inner.progress.notified() => {}
        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
    }
}

fn reserve_workers(inner: &Inner, wanted: usize) -> usize {
    if stopping(inner) {
        return 0;
    }
    inner.worker_slots.reserve(
        inner.options.worker_concurrency,
        || inner.running.lock().unwrap().len(),
        wanted,
    )
}

fn reserve_turns(inner: &Inner, wanted: usize) -> usize {
    if stopping(inner) {
        return 0;
    }
    inner.turn_slots.reserve(
        inner.options.orchestration_concurrency,
        || inner.inflight.lock().unwrap().len(),
        wanted,
    )
}

async fn orchestration_loop(inner: Arc<Inner>) {
    let wakers = inner.provider.wakers().clone();
    while !stopping(&inner) {
        let slots = reserve_turns(&inner, 128);
        if slots == 0 {
            wait_for_capacity(&inner).await;
            continue;
        }
        match inner
            .provider
            .claim_orchestrations(&inner.owner, inner.options.lease_ms, slots)
            .await
        {
            Ok(items) if !items.is_empty() => {
                inc(&inner.metrics.claims);
                add(&inner.metrics.claimed_items, items.len() as u64);
                dispatch_turns(&inner, items);
                inner.turn_slots.release(slots);
            }
            Ok(_) => {
                inner.turn_slots.release(slots);
                idle_wait(&inner, &wakers.orchestrations).await
            }
            Err(e) => {
                inner.turn_slots.release(slots);
                store_error_pause(&inner, "claiming orchestrations", &e).await
            }
        }
    }
}

enum Prepared {
    Run(Box<Turn>, OrchestrationItem),
    Commit(Box<TurnOutcome>, OrchestrationItem),
    Abandon(OrchestrationItem, i64, bool),
}

fn plan_item(inner: &Inner, mut item: OrchestrationItem) -> Prepared {
    // A start message without a version gets the highest registered one.
    let mut missing = None;
    for m in item.messages.iter_mut() {
        if let Message::Start { name, version, .. } = &mut m.message {
            match inner.registry.resolve(name, version.as_deref()) {
                Some(v) => *version = Some(v),
                None => missing = Some((name.clone(), version.clone())),
            }
        }
    }
    let started = item.history.first().map(|r| match &r.event {
        crate::engine::Event::ExecutionStarted { name, version, .. } => {
            (name.clone(), version.clone())
        }
        _ => (item.name.clone(), None),
    });
    if let Some((name, version)) = &started {
        if inner.registry.resolve(name, version.as_deref()).is_none() {
            missing = Some((name.clone(), version.clone()));
        }
    }
    let incremental = inner.cache.lock().unwrap().is_current(
        &item.instance_id,
        (
            item.execution_id,
            item.history.len() as u64,
            item.history.last().map_or(0, |r| r.ts),
        ),
    );
    let plan = prepare(TurnInput {
        instance_id: &item.instance_id,
        execution_id: item.execution_id,
        history: &item.history,
        messages: &item.messages,
        now: item.now,
        incremental,
    });
    match plan {
        Plan::NotStarted => Prepared::Abandon(item, 1_000, false),
        Plan::Unsupported(reason) => {
            warn!(instance_id = %item.instance_id, %reason, "instance left for a newer runtime");
            Prepared::Abandon(item, 5_000, false)
        }
        Plan::Commit(outcome) => Prepared::Commit(outcome, item),
        Plan::Run(turn) => {
            if let Some((name, version)) = missing {
                let waited = item.now - item.created_at;
                if waited < inner.options.not_registered_grace_ms {
                    debug!(instance_id = %item.instance_id, %name, "orchestration not registered here; waiting");
                    return Prepared::Abandon(item, 1_000, false);
                }
                let what = match version {
                    Some(v) => format!("orchestration '{name}' version {v}"),
                    None => format!("orchestration '{name}'"),
                };
                let error = TaskError::with_code(
                    format!(
                        "{what} is not registered (waited {} ms for a runtime that has it)",
                        waited
                    ),
                    "ERR_NOT_REGISTERED",
                );
                return Prepared::Commit(Box::new(turn.fail(error)), item);
            }
            let worst = item
                .messages
                .iter()
                .map(|m| m.deliveries)
                .max()
                .unwrap_or(0);
            if worst > inner.options.max_deliveries {
                inc(&inner.metrics.poisoned);
                let error = TaskError::with_code(
                    format!(
                        "a message for this instance was delivered {worst} times without a successful turn (poison)"
                    ),
                    "ERR_POISON",
                );
                return Prepared::Commit(Box::new(turn.fail(error)), item);
            }
            Prepared::Run(turn, item)
        }
    }
}

fn dispatch_turns(inner: &Arc<Inner>, items: Vec<OrchestrationItem>) {
    let mut activations = Vec::new();
    for item in items {
        inner
            .inflight
            .lock()
            .unwrap()
            .insert(item.instance_id.clone(), item.generation);
        match plan_item(inner, item) {
            Prepared::Abandon(item, delay, count) => {
                let inner = inner.clone();
                tokio::spawn(async move {
                    let _ = inner
                        .provider
                        .abandon_orchestration(&item.instance_id, item.generation, delay, count)
                        .await;
                    finish_inflight(&inner, &item.instance_id);
                });
            }
            Prepared::Commit(outcome, item) => {
                let inner = inner.clone();
                tokio::spawn(async move { commit(&inner, item, *outcome, false).await });
            }
            Prepared::Run(turn, item) => {
                let token = inner.next_token.fetch_add(1, Ordering::Relaxed);
                let (tx, rx) = oneshot::channel();
                inner.turns.lock().unwrap().insert(token, tx);
                if turn.full_replay {
                    inc(&inner.metrics.full_replays);
                }
                add(&inner.metrics.jobs_sent, turn.jobs.len() as u64);
                let keep = {
                    let mut cache = inner.cache.lock().unwrap();
                    cache.begin_turn(&item.instance_id);
                    cache.enabled()
                };
                activations.push(
                    serde_json::to_string(&Activation {
                        token,
                        instance_id: &item.instance_id,
                        execution_id: item.execution_id,
                        name: &turn.name,
                        version: turn.version.as_deref(),
                        fresh: turn.full_replay,
                        keep,
                        replay_count: turn.replay_count,
                        jobs: &turn.jobs,
                    })
                    .expect("activations serialize"),
                );
                let span = info_span!(
                    "turn",
                    instance_id = %item.instance_id,
                    execution_id = item.execution_id,
                    orchestration = %turn.name,
                    replaying = turn.full_replay && turn.replay_count > 0,
                );
                let inner = inner.clone();
                tokio::spawn(async move { run_turn(inner, turn, item, rx).await }.instrument(span));
            }
        }
    }
    if activations.is_empty() {
        return;
    }
    add(&inner.metrics.activations, activations.len() as u64);
    inc(&inner.metrics.driver_calls);
    let evict = inner.cache.lock().unwrap().take_evictions();
    let message = format!(
        "{{\"kind\":\"turns\",\"evict\":{},\"activations\":[{}]}}",
        serde_json::to_string(&evict).expect("strings serialize"),
        activations.join(",")
    );
    if !inner.host.send(message) {
        warn!("the JavaScript driver is gone; turns will be retried");
        inner.turns.lock().unwrap().clear();
    }
}

async fn run_turn(
    inner: Arc<Inner>,
    turn: Box<Turn>,
    item: OrchestrationItem,
    rx: oneshot::Receiver<String>,
) {
    let reply = tokio::time::timeout(Duration::from_millis(inner.options.max_turn_ms), rx).await;
    let reply: Result<TurnReply, String> = match reply {
        Ok(Ok(text)) => {
            serde_json::from_str(&text).map_err(|e| format!("unreadable driver reply: {e}"))
        }
        Ok(Err(_)) => Err("the turn was abandoned".into()),
        Err(_) => Err(format!(
            "the driver did not answer within {} ms",
            inner.options.max_turn_ms
        )),
    };
    let outcome = match reply {
        Ok(TurnReply {
            fault: None,
            commands,
        }) => match turn.finish(commands) {
            Ok(outcome) => outcome,
            Err(e) => {
                if e.code() == "ERR_NONDETERMINISM" {
                    inc(&inner.metrics.nondeterminism_errors);
                }
                warn!(error = %e, "turn failed the replay check");
                turn.fail(TaskError::with_code(e.to_string(), e.code()))
            }
        },
        Ok(TurnReply {
            fault: Some(fault), ..
        })
        | Err(fault) => {
            warn!(%fault, "turn abandoned");
            inc(&inner.metrics.turns_abandoned);
            inner
                .cache
                .lock()
                .unwrap()
                .end_turn(&item.instance_id, None);
            let _ = inner
                .provider
                .abandon_orchestration(&item.instance_id, item.generation, 1_000, true)
                .await;
            finish_inflight(&inner, &item.instance_id);
            return;
        }
    };
    commit(&inner, item, outcome, true).await;
}

/// Commits a turn. `driver_ran`: the driver processed an activation for it (so its cached
/// generator moved); otherwise the turn was decided by the engine alone.
async fn commit(
    inner: &Arc<Inner>,
    item: OrchestrationItem,
    outcome: TurnOutcome,
    driver_ran: bool,
) {
    let history_len = item.history.len() as u64 + outcome.events.len() as u64;
    let appended = !outcome.events.is_empty();
    let terminal = outcome.terminal.clone();
    let canceled: Vec<u32> = outcome.canceled_activities.clone();
    let first_event_id = item.history.len() as u64 + 1;
    let events: Vec<String> = if events_enabled(inner) {
        outcome
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                Lifecycle::of_event(
                    e,
                    &item.instance_id,
                    item.execution_id,
                    first_event_id + i as u64,
                    item.now,
                )
                .to_json()
            })
            .collect()
    } else {
        Vec::new()
    };
    let direct = reserve_direct_claims(inner, &outcome);
    let claim = (direct > 0).then(|| DirectClaim {
        owner: inner.owner.clone(),
        lease_ms: inner.options.lease_ms,
        count: direct,
    });
    let commit = TurnCommit {
        instance_id: item.instance_id.clone(),
        execution_id: item.execution_id,
        generation: item.generation,
        now: item.now,
        first_event_id,
        outcome,
        claim,
    };
    let holding = !events.is_empty();
    if holding {
        inner
            .held_events
            .lock()
            .unwrap()
            .entry(item.instance_id.clone())
            .or_default();
    }
    let committed = inner.provider.commit_turn(commit).await;
    if holding {
        // The commit's events first, then whatever waited for them.
        let held = inner.held_events.lock().unwrap().remove(&item.instance_id);
        if committed.is_ok() {
            emit_events(inner, &events);
        }
        emit_events(inner, &held.unwrap_or_default());
    }
    match committed {
        Ok(claimed) => {
            inc(&inner.metrics.turns_committed);
            if !claimed.is_empty() {
                add(
                    &inner.metrics.activities_claimed_on_commit,
                    claimed.len() as u64,
                );
                dispatch_activities(inner, claimed).await;
            }
            inner.worker_slots.release(direct);
            {
                let mut cache = inner.cache.lock().unwrap();
                if driver_ran {
                    // Committed events all carry the turn's time.
                    let last_ts = if appended {
                        item.now
                    } else {
                        item.history.last().map_or(0, |r| r.ts)
                    };
                    let advanced =
                        terminal
                            .is_none()
                            .then_some((item.execution_id, history_len, last_ts));
                    cache.end_turn(&item.instance_id, advanced);
                } else if appended || terminal.is_some() {
                    // History moved without the driver: its generator (if any) is stale.
                    cache.evict(&item.instance_id);
                }
            }
            match &terminal {
                Some(Terminal::Completed(_)) => inc(&inner.metrics.orchestrations_completed),
                Some(Terminal::Failed(_)) => inc(&inner.metrics.orchestrations_failed),
                _ => {}
            }
            // Cancelled activities learn of it after the commit that removed them.
            let aborted: Vec<i64> = inner
                .running
                .lock()
                .unwrap()
                .values()
                .filter(|r| {
                    r.item.instance_id == item.instance_id
                        && r.item.execution_id == item.execution_id
                        && (terminal.is_some() || canceled.contains(&r.item.task))
                })
                .map(|r| r.item.seq)
                .collect();
            inner
                .canceled_running
                .lock()
                .unwrap()
                .extend(aborted.iter().copied());
            abort_in_js(
                inner,
                aborted,
                "the orchestration no longer waits for this activity",
            );
        }
        Err(e) => {
            inner.worker_slots.release(direct);
            {
                let mut cache = inner.cache.lock().unwrap();
                if driver_ran {
                    cache.end_turn(&item.instance_id, None);
                } else {
                    cache.evict(&item.instance_id);
                }
            }
            match e {
                StoreError::LeaseLost(_) => {
                    inc(&inner.metrics.lease_losses);
                    warn!(instance_id = %item.instance_id, "turn commit refused: the instance's lease was lost to another claim");
                }
                _ => {
                    inc(&inner.metrics.store_errors);
                    warn!(error = %e, instance_id = %item.instance_id, "turn commit failed; the turn will run again");
                }
            }
            let _ = inner
                .provider
                .abandon_orchestration(&item.instance_id, item.generation, 0, true)
                .await;
        }
    }
    finish_inflight(inner, &item.instance_id);
}

/// How many of a turn's first activities its commit may claim for this runtime: those this
/// process can run, within free worker slots (reserved until they are running).
fn reserve_direct_claims(inner: &Inner, outcome: &TurnOutcome) -> usize {
    let runnable = outcome
        .activities
        .iter()
        .take_while(|a| inner.registry.activities.contains(&a.name))
        .count();
    if runnable == 0 {
        return 0;
    }
    reserve_workers(inner, runnable)
}

fn finish_inflight(inner: &Inner, instance_id: &str) {
    inner.inflight.lock().unwrap().remove(instance_id);
    inner.lost_turns.lock().unwrap().remove(instance_id);
    inner.progress.notify_waiters();
    // Freed capacity may let the dispatcher claim more.
    inner.provider.wakers().orchestrations.notify_one();
}

async fn activity_loop(inner: Arc<Inner>) {
    let wakers = inner.provider.wakers().clone();
    while !stopping(&inner) {
        let slots = reserve_workers(&inner, 256);
        if slots == 0 {
            wait_for_capacity(&inner).await;
            continue;
        }
        match inner
            .provider
            .claim_activities(&inner.owner, inner.options.lease_ms, slots)
            .await
        {
            Ok(items) if !items.is_empty() => {
                inc(&inner.metrics.activity_claims);
                add(&inner.metrics.activity_claimed_items, items.len() as u64);
                dispatch_activities(&inner, items).await;
                inner.worker_slots.release(slots);
            }
            Ok(_) => {
                inner.worker_slots.release(slots);
                idle_wait(&inner, &wakers.activities).await
            }
            Err(e) => {
                inner.worker_slots.release(slots);
                store_error_pause(&inner, "claiming activities", &e).await
            }
        }
    }
}

async fn dispatch_activities(inner: &Arc<Inner>, items: Vec<ActivityItem>) {
    let mut deliveries = Vec::with_capacity(items.len());
    let mut started_events = Vec::new();
    let mut refused = Vec::new();
    for item in items {
        if !inner.registry.activities.contains(&item.name) {
            let waited = now_ms() - item.created_at;
            if waited < inner.options.not_registered_grace_ms {
                refused.push((item, None));
            } else {
                let error = TaskError::with_code(
                    format!(
                        "activity '{}' is not registered (waited {waited} ms)",
                        item.name
                    ),
                    "ERR_NOT_REGISTERED",
                );
                refused.push((item, Some(error)));
            }
            continue;
        }
        if item.deliveries > inner.options.max_deliveries {
            inc(&inner.metrics.poisoned);
            let error = TaskError::with_code(
                format!(
                    "activity '{}' was delivered {} times without finishing (poison)",
                    item.name, item.deliveries
                ),
                "ERR_POISON",
            );
            refused.push((item, Some(error)));
            continue;
        }
        let input = RawValue::from_string(item.input.clone())
            .unwrap_or_else(|_| crate::engine::null_payload());
        deliveries.push(
            serde_json::to_string(&ActivityDelivery {
                id: item.seq,
                instance_id: &item.instance_id,
                execution_id: item.execution_id,
                task: item.task,
                name: &item.name,
                input: &input,
                attempt: item.attempt,
            })
            .expect("activities serialize"),
        );
        let timeout = item
            .retry
            .as_ref()
            .and_then(|r| r.timeout_ms)
            .unwrap_or(inner.options.activity_timeout_ms);
        let timeout = Duration::from_millis(timeout);
        if timeout < lease_period(inner) {
            // Shorter than the lease keeper's tick: give it its own timer.
            let (inner, seq, generation) = (inner.clone(), item.seq, item.generation);
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                time_out_activity(&inner, seq, generation).await;
            });
        }
        if events_enabled(inner) {
            started_events.push((
                item.instance_id.clone(),
                activity_event("activityStarted", &item, item.attempt).to_json(),
            ));
        }
        inner
            .provider
            .wakers()
            .instance_progressed(&item.instance_id);
        inner.running.lock().unwrap().insert(
            item.seq,
            RunningActivity {
                item,
                started: Instant::now(),
                timeout,
            },
        );
    }
    if !deliveries.is_empty() {
        add(&inner.metrics.activities_started, deliveries.len() as u64);
        inc(&inner.metrics.activity_batches);
        let message = format!(
            "{{\"kind\":\"activities\",\"items\":[{}]}}",
            deliveries.join(",")
        );
        if !inner.host.send(message) {
            warn!("the JavaScript side is gone; activities will run again later");
        }
        // An activity can start before its scheduling turn's events are sent: hold its
        // event back until they are.
        let mut held = inner.held_events.lock().unwrap();
        let mut now = Vec::with_capacity(started_events.len());
        for (instance_id, event) in started_events {
            match held.get_mut(&instance_id) {
                Some(waiting) => waiting.push(event),
                None => now.push(event),
            }
        }
        drop(held);
        emit_events(inner, &now);
    }
    for (item, error) in refused {
        match error {
            None => {
                // Waiting for code that knows the name is not a failed delivery: put the row
                // back as the same attempt with its delivery count reset.
                let _ = inner
                    .provider
                    .retry_activity(&item, now_ms() + 1_000, item.attempt)
                    .await;
            }
            Some(error) => {
                let _ = inner
                    .provider
                    .complete_activity(&item, ActivityResult::Failed(error))
                    .await;
            }
        }
    }
}

fn parse_activity_result(text: &str) -> ActivityResult {
    #[derive(serde::Deserialize)]
    struct Settled {
        #[serde(default)]
        ok: Option<Payload>,
        #[serde(default)]
        err: Option<TaskError>,
    }
    match serde_json::from_str::<Settled>(text) {
        Ok(Settled { err: Some(e), .. }) => ActivityResult::Failed(e),
        Ok(Settled { ok, .. }) => {
            ActivityResult::Completed(ok.unwrap_or_else(crate::engine::null_payload))
        }
        Err(e) => ActivityResult::Failed(TaskError::with_code(
            format!("the activity's result could not be read: {e}"),
            "ERR_INVALID_ARGUMENT",
        )),
    }
}

/// Most activity outcomes recorded in one store call.
const MAX_OUTCOME_BATCH: usize = 256;

async fn completion_loop(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<(i64, String)>) {
    while let Some(first) = rx.recv().await {
        // Whatever else has settled meanwhile goes in the same store call (no waiting for more).
        let mut settled = vec![first];
        while settled.len() < MAX_OUTCOME_BATCH {
            match rx.try_recv() {
                Ok(next) => settled.push(next),
                Err(_) => break,
            }
        }
        let mut outcomes = Vec::with_capacity(settled.len());
        for (id, text) in settled {
            let removed = {
                let mut running = inner.running.lock().unwrap();
                let removed = running.remove(&id);
                if removed.is_some() {
                    inner.settling.fetch_add(1, Ordering::SeqCst);
                }
                removed
            };
            // Not running: abandoned (shutdown or lost lease), not ours to record.
            if let Some(running) = removed {
                outcomes.push((running.item, parse_activity_result(&text)));
            }
        }
        if outcomes.is_empty() {
            continue;
        }
        let inner = inner.clone();
        tokio::spawn(async move {
            let n = outcomes.len();
            settle_activities(&inner, outcomes).await;
            inner.settling.fetch_sub(n, Ordering::SeqCst);
            inner.progress.notify_waiters();
            inner.provider.wakers().activities.notify_one();
        });
    }
}

/// Schedules a failed attempt again if its policy allows; `false` when the failure is final.
async fn retry_if_allowed(inner: &Inner, item: &ActivityItem, error: &TaskError) -> bool {
    let Some(policy) = item
        .retry
        .as_ref()
        .filter(|p| item.attempt < p.max_attempts)
    else {
        return false;
    };
    let mut delay = policy.delay_before(item.attempt + 1);
    if policy.jitter && delay > 0 {
        delay = rand::random_range(delay / 2..=delay);
    }
    inc(&inner.metrics.activity_retries);
    debug!(activity = %item.name, attempt = item.attempt, error = %error.message, delay, "retrying activity");
    let retry_at = now_ms() + delay as i64;
    match inner
        .provider
        .retry_activity(item, retry_at, item.attempt + 1)
        .await
    {
        Ok(true) => {
            inner
                .provider
                .wakers()
                .instance_progressed(&item.instance_id);
            if events_enabled(inner) {
                let mut l = activity_event("activityRetried", item, item.attempt + 1);
                l.retry_at = Some(retry_at);
                l.error = Some(error);
                emit_events(inner, &[l.to_json()]);
            }
        }
        Ok(false) => {
            if !inner.canceled_running.lock().unwrap().remove(&item.seq) {
                inc(&inner.metrics.lease_losses);
            }
        }
        Err(e) => {
            inc(&inner.metrics.store_errors);
            warn!(error = %e, "recording an activity retry failed");
        }
    }
    true
}

/// Retries what its policy allows and records the other outcomes in one store call.
async fn settle_activities(inner: &Arc<Inner>, outcomes: Vec<(ActivityItem, ActivityResult)>) {
    let mut finals = Vec::with_capacity(outcomes.len());
    for (item, result) in outcomes {
        if let ActivityResult::Failed(error) = &result {
            if retry_if_allowed(inner, &item, error).await {
                continue;
            }
        }
        finals.push((item, result));
    }
    let failed: Vec<bool> = finals
        .iter()
        .map(|(_, r)| matches!(r, ActivityResult::Failed(_)))
        .collect();
    if finals.is_empty() {
        return;
    }
    // Kept to give the rows back if the store call fails (without copying their inputs).
    let items: Vec<ActivityItem> = finals
        .iter()
        .map(|(item, _)| ActivityItem {
            seq: item.seq,
            generation: item.generation,
            instance_id: item.instance_id.clone(),
            execution_id: item.execution_id,
            task: item.task,
            name: item.name.clone(),
            input: String::new(),
            attempt: item.attempt,
            retry: None,
            deliveries: item.deliveries,
            created_at: item.created_at,
        })
        .collect();
    // The instances these results wake may be claimed in the same store call, within free
    // turn slots (reserved until the turns are in flight).
    let slots = reserve_turns(inner, finals.len());
    let claim = OrchestrationClaim {
        owner: inner.owner.clone(),
        lease_ms: inner.options.lease_ms,
        max: slots,
    };
    let settled = inner
        .provider
        .complete_activities_and_claim(finals, &claim)
        .await;
    let settled = match settled {
        Ok((recorded, claimed)) => {
            // A result refused (lease lost, or the activity cancelled meanwhile) is not an
            // outcome of this runtime's.
            let mut canceled = inner.canceled_running.lock().unwrap();
            for ((recorded, failed), item) in recorded.iter().zip(&failed).zip(&items) {
                let was_canceled = canceled.remove(&item.seq);
                match (recorded, failed) {
                    (false, _) if was_canceled => {}
                    (false, _) => inc(&inner.metrics.lease_losses),
                    (true, true) => inc(&inner.metrics.activities_failed),
                    (true, false) => inc(&inner.metrics.activities_completed),
                }
            }
            drop(canceled);
            if !claimed.is_empty() {
                inc(&inner.metrics.claims);
                add(&inner.metrics.claimed_items, claimed.len() as u64);
                add(
                    &inner.metrics.turns_claimed_on_completion,
                    claimed.len() as u64,
                );
                dispatch_turns(inner, claimed);
            }
            Ok(())
        }
        Err(e) => Err(e),
    };
    inner.turn_slots.release(slots);
    match settled {
        Ok(()) => {}
        Err(e) => {
            inc(&inner.metrics.store_errors);
            warn!(error = %e, activities = items.len(), "recording activity results failed; they will run again");
            for item in &items {
                let _ = inner.provider.abandon_activity(item, 1_000).await;
            }
        }
    }
}

fn lease_period(inner: &Inner) -> Duration {
    Duration::from_millis((inner.options.lease_ms / 3).max(10) as u64)
}

/// Fails an activity attempt that ran past its timeout (if that attempt is still running).
async fn time_out_activity(inner: &Arc<Inner>, seq: i64, generation: i64) {
    let removed = {
        let mut running = inner.running.lock().unwrap();
        match running.get(&seq) {
            Some(r) if r.item.generation == generation => running.remove(&seq),
            _ => None,
        }
    };
    let Some(r) = removed else { return };
    inner.settling.fetch_add(1, Ordering::SeqCst);
    abort_in_js(inner, vec![seq], "the activity timed out");
    let error = TaskError::with_code(
        format!(
            "activity '{}' timed out after {} ms",
            r.item.name,
            r.timeout.as_millis()
        ),
        "ERR_TIMEOUT",
    );
    settle_activities(inner, vec![(r.item, ActivityResult::Failed(error))]).await;
    inner.settling.fetch_sub(1, Ordering::SeqCst);
    inner.progress.notify_waiters();
    inner.provider.wakers().activities.notify_one();
}

/// Keeps the queue depth gauges of `metricsSnapshot()` fresh (one cheap query per period).
async fn queue_depth_loop(inner: Arc<Inner>) {
    while !stopping(&inner) {
        match inner.provider.queue_depths().await {
            Ok(depths) => *inner.queue_depths.lock().unwrap() = Some((Instant::now(), depths)),
            Err(e) => {
                inc(&inner.metrics.store_errors);
                debug!(error = %e, "reading queue depths failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(inner.options.metrics_interval_ms)) => {}
            _ = inner.stop.notified() => {}
        }
    }
}

/// Renews the leases of in-flight work (so a busy JavaScript thread does not by itself
/// cause a second execution) and times out hung activities.
async fn lease_loop(inner: Arc<Inner>) {
    let every = lease_period(&inner);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = inner.stop.notified() => {}
        }
        let mut leases: Vec<Lease> = {
            let lost_turns = inner.lost_turns.lock().unwrap();
            inner
                .inflight
                .lock()
                .unwrap()
                .iter()
                .filter(|(id, _)| !lost_turns.contains(*id))
                .map(|(id, g)| Lease::Instance(id.clone(), *g))
                .collect()
        };
        let mut timed_out = Vec::new();
        {
            let running = inner.running.lock().unwrap();
            for r in running.values() {
                if r.started.elapsed() > r.timeout {
                    timed_out.push((r.item.seq, r.item.generation));
                } else {
                    leases.push(Lease::Activity(r.item.seq, r.item.generation));
                }
            }
        }
        for (seq, generation) in timed_out {
            time_out_activity(&inner, seq, generation).await;
        }
        if leases.is_empty() {
            if stopping(&inner) && inner.inflight.lock().unwrap().is_empty() {
                // Keep renewing while shutdown drains; stop once nothing is left.
                if inner.running.lock().unwrap().is_empty() {
                    return;
                }
            }
            continue;
        }
        match inner
            .provider
            .renew_leases(&leases, inner.options.lease_ms)
            .await
        {
            Ok(lost) => {
                add(
                    &inner.metrics.lease_renewals,
                    leases.len().saturating_sub(lost.len()) as u64,
                );
                // A lease released meanwhile (its commit or result recorded while the renewal
                // ran) is reported too: only work still held here counts as lost.
                for lease in lost {
                    match lease {
                        Lease::Activity(seq, _) => {
                            let removed = inner.running.lock().unwrap().remove(&seq);
                            let canceled = inner.canceled_running.lock().unwrap().remove(&seq);
                            if removed.is_some() {
                                // Shutdown may be waiting for running work to drain.
                                inner.progress.notify_waiters();
                                if !canceled {
                                    inc(&inner.metrics.lease_losses);
                                    warn!(
                                        seq,
                                        "an activity's lease was lost; it may run elsewhere"
                                    );
                                    abort_in_js(&inner, vec![seq], "the activity's lease was lost");
                                }
                            }
                        }
                        Lease::Instance(id, generation) => {
                            if inner.inflight.lock().unwrap().get(&id) == Some(&generation) {
                                inner.lost_turns.lock().unwrap().insert(id);
                            }
                        }
                    }
                }
            }
            Err(e) => {
                inc(&inner.metrics.store_errors);
                warn!(error = %e, "renewing leases failed");
            }
        }
    }
}
