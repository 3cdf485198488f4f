//! Crash-point simulation: a representative workload (activities, a retried activity,
//! timers, an event, a sub-orchestration, continue-as-new, a cancellation and a rewind) runs
//! on the runtime with a scripted driver standing in for JavaScript, while the store fails or
//! "kills" the runtime at its N-th call, before or after the call took effect. A killed
//! runtime's store calls all fail from then on (the process is gone) and a new runtime takes
//! over the same store. Every run must end like an uninterrupted one: the same final state
//! for every instance, valid histories, no activity run twice except one the dead runtime
//! had started.
//!
//! Seeded and reproducible: seed `s` picks the call and the fault; a failure names the seed
//! (`REPRISE_SIM_SEED=s` runs that one alone, `REPRISE_SIM_SEEDS=n` sets how many: 40 in a
//! plain `cargo test`, 300 in `npm test`'s parallel phase, about 50 s).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{Host, Registry, Runtime, RuntimeOptions};
use crate::engine::{Event, HistoryRow, Message, RewindPlan, StartRequest};
use crate::store::sqlite::SqliteProvider;
use crate::store::*;

// ---------------------------------------------------------------------------------------
// The store that fails
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// The call fails without taking effect.
    FailBefore,
    /// The call takes effect, then fails (its answer is lost).
    FailAfter,
    /// The process dies before the call.
    KillBefore,
    /// The call takes effect, then the process dies.
    KillAfter,
}

/// Wraps the store a runtime uses; counts the runtime's work calls (not its periodic ones,
/// whose number depends on timing) and injects `fault` at call `at`.
struct FaultyStore {
    inner: SharedProvider,
    calls: AtomicU64,
    at: u64,
    fault: Fault,
    dead: AtomicBool,
    hit: Mutex<Option<&'static str>>,
}

impl FaultyStore {
    fn new(inner: SharedProvider, at: u64, fault: Fault) -> Arc<Self> {
        Arc::new(FaultyStore {
            inner,
            calls: AtomicU64::new(0),
            at,
            fault,
            dead: AtomicBool::new(false),
            hit: Mutex::new(None),
        })
    }

    async fn call<T, F: Future<Output = Result<T>>>(
        &self,
        name: &'static str,
        counted: bool,
        f: impl FnOnce() -> F,
    ) -> Result<T> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        if !counted || self.calls.fetch_add(1, Ordering::SeqCst) != self.at {
            return f().await;
        }
        *self.hit.lock().unwrap() = Some(name);
        let injected = || StoreError::Unavailable(format!("injected fault at {name}"));
        match self.fault {
            Fault::FailBefore => Err(injected()),
            Fault::FailAfter => {
                let _ = f().await;
                Err(injected())
            }
            Fault::KillBefore => {
                self.dead.store(true, Ordering::SeqCst);
                Err(StoreError::Closed)
            }
            Fault::KillAfter => {
                let _ = f().await;
                self.dead.store(true, Ordering::SeqCst);
                Err(StoreError::Closed)
            }
        }
    }
}

#[async_trait]
impl Provider for FaultyStore {
    fn wakers(&self) -> &Arc<Wakers> {
        self.inner.wakers()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn now(&self) -> Result<i64> {
        self.inner.now().await
    }
    async fn shift_clock(&self, by_ms: i64) -> Result<()> {
        self.inner.shift_clock(by_ms).await
    }
    async fn create_instance(&self, start: &StartRequest) -> Result<bool> {
        self.inner.create_instance(start).await
    }
    async fn create_instances(&self, starts: &[StartRequest]) -> Result<Vec<bool>> {
        self.inner.create_instances(starts).await
    }
    async fn enqueue(&self, instance_id: &str, message: &Message) -> Result<()> {
        self.inner.enqueue(instance_id, message).await
    }
    async fn instance(&self, instance_id: &str) -> Result<Option<InstanceInfo>> {
        self.inner.instance(instance_id).await
    }
    async fn history(&self, id: &str, execution_id: Option<u64>) -> Result<Vec<HistoryRow>> {
        self.call("history", true, || self.inner.history(id, execution_id))
            .await
    }
    async fn history_after(&self, id: &str, execution: u64, after: u64) -> Result<Vec<HistoryRow>> {
        self.inner.history_after(id, execution, after).await
    }
    async fn delete_instance(&self, instance_id: &str, force: bool) -> Result<Deletion> {
        self.inner.delete_instance(instance_id, force).await
    }
    async fn rewind_instance(&self, id: &str, plan: &RewindPlan, updated_at: i64) -> Result<bool> {
        self.inner.rewind_instance(id, plan, updated_at).await
    }
    async fn list_instances(&self, filter: &InstanceFilter) -> Result<InstancePage> {
        self.inner.list_instances(filter).await
    }
    async fn list_executions(&self, instance_id: &str) -> Result<Vec<ExecutionInfo>> {
        self.inner.list_executions(instance_id).await
    }
    async fn system_metrics(&self) -> Result<SystemMetrics> {
        self.inner.system_metrics().await
    }
    async fn activity_attempts(&self, instance_id: &str) -> Result<Vec<ActivityAttempt>> {
        self.inner.activity_attempts(instance_id).await
    }
    async fn queue_depths(&self) -> Result<QueueDepths> {
        self.call("queue_depths", false, || self.inner.queue_depths())
            .await
    }
    async fn expire_unknown_events(&self) -> Result<u64> {
        self.call("expire_unknown_events", false, || {
            self.inner.expire_unknown_events()
        })
        .await
    }
    async fn finished_instances(&self, filter: &DeleteFilter) -> Result<Vec<String>> {
        self.inner.finished_instances(filter).await
    }
    async fn prune_executions(
        &self,
        id: &str,
        keep_last: Option<u32>,
        before: Option<i64>,
    ) -> Result<u64> {
        self.inner.prune_executions(id, keep_last, before).await
    }
    async fn attach_runtime(
        &self,
        r: &RuntimeRegistration,
        replace: Option<&str>,
    ) -> Result<Reaped> {
        self.call("attach_runtime", true, || {
            self.inner.attach_runtime(r, replace)
        })
        .await
    }
    async fn detach_runtime(&self, runtime_id: &str) -> Result<()> {
        self.call("detach_runtime", false, || {
            self.inner.detach_runtime(runtime_id)
        })
        .await
    }
    async fn heartbeat(&self, r: &RuntimeRegistration, reap: bool) -> Result<Reaped> {
        self.call("heartbeat", false, || self.inner.heartbeat(r, reap))
            .await
    }
    async fn list_runtimes(&self) -> Result<Vec<RuntimeInfo>> {
        self.call("list_runtimes", true, || self.inner.list_runtimes())
            .await
    }
    async fn claim_orchestrations(
        &self,
        owner: &str,
        lease_ms: i64,
        max: usize,
        known: &KnownHistories,
    ) -> Result<Vec<OrchestrationItem>> {
        self.call("claim_orchestrations", true, || {
            self.inner.claim_orchestrations(owner, lease_ms, max, known)
        })
        .await
    }
    async fn commit_turn(&self, commit: TurnCommit) -> Result<Vec<ActivityItem>> {
        self.call("commit_turn", true, || self.inner.commit_turn(commit))
            .await
    }
    async fn abandon_orchestration(
        &self,
        id: &str,
        generation: i64,
        delay_ms: i64,
        count_delivery: bool,
    ) -> Result<()> {
        self.call("abandon_orchestration", true, || {
            self.inner
                .abandon_orchestration(id, generation, delay_ms, count_delivery)
        })
        .await
    }
    async fn claim_activities(
        &self,
        owner: &str,
        lease_ms: i64,
        max: usize,
    ) -> Result<Vec<ActivityItem>> {
        self.call("claim_activities", true, || {
            self.inner.claim_activities(owner, lease_ms, max)
        })
        .await
    }
    async fn complete_activities(
        &self,
        outcomes: Vec<(ActivityItem, ActivityResult)>,
    ) -> Result<Vec<bool>> {
        self.call("complete_activities", true, || {
            self.inner.complete_activities(outcomes)
        })
        .await
    }
    async fn complete_activities_and_claim(
        &self,
        outcomes: Vec<(ActivityItem, ActivityResult)>,
        claim: &OrchestrationClaim,
    ) -> Result<(Vec<bool>, Vec<OrchestrationItem>)> {
        self.call("complete_activities_and_claim", true, || {
            self.inner.complete_activities_and_claim(outcomes, claim)
        })
        .await
    }
    async fn retry_activity(&self, item: &ActivityItem, at: i64, next: u32) -> Result<bool> {
        self.call("retry_activity", true, || {
            self.inner.retry_activity(item, at, next)
        })
        .await
    }
    async fn abandon_activity(&self, item: &ActivityItem, delay_ms: i64) -> Result<()> {
        self.call("abandon_activity", true, || {
            self.inner.abandon_activity(item, delay_ms)
        })
        .await
    }
    async fn renew_leases(&self, leases: &[Lease], lease_ms: i64) -> Result<Vec<Lease>> {
        self.call("renew_leases", false, || {
            self.inner.renew_leases(leases, lease_ms)
        })
        .await
    }
    async fn next_due(&self) -> Result<Option<i64>> {
        self.call("next_due", false, || self.inner.next_due()).await
    }
    fn foreign_commit_poll(&self) -> Option<Duration> {
        self.inner.foreign_commit_poll()
    }
}

// ---------------------------------------------------------------------------------------
// The scripted driver
// ---------------------------------------------------------------------------------------

/// One replay of an orchestration over its jobs (the generator cache is off: every
/// activation holds the whole history): the code below calls these in order, and each
/// returns the task's outcome once history has it.
struct Script {
    input: Value,
    results: HashMap<u64, std::result::Result<Value, Value>>,
    events: Vec<(String, Value)>,
    taken: usize,
    commands: Vec<Value>,
    next_task: u64,
}

impl Script {
    fn new(jobs: &[Value]) -> Script {
        let mut s = Script {
            input: Value::Null,
            results: HashMap::new(),
            events: Vec::new(),
            taken: 0,
            commands: Vec::new(),
            next_task: 1,
        };
        for job in jobs {
            match job["t"].as_str().unwrap() {
                "start" => {
                    s.input = job["input"].clone();
                    for e in job["events"].as_array().into_iter().flatten() {
                        s.events
                            .push((e["name"].as_str().unwrap().into(), e["data"].clone()));
                    }
                }
                "ok" => {
                    s.results
                        .insert(job["task"].as_u64().unwrap(), Ok(job["value"].clone()));
                }
                "err" => {
                    s.results
                        .insert(job["task"].as_u64().unwrap(), Err(job["error"].clone()));
                }
                "event" => s
                    .events
                    .push((job["name"].as_str().unwrap().into(), job["data"].clone())),
                other => panic!("unexpected job {other}"),
            }
        }
        s
    }

    fn task(&mut self, mut command: Value) -> Option<std::result::Result<Value, Value>> {
        let task = self.next_task;
        self.next_task += 1;
        command["task"] = json!(task);
        self.commands.push(command);
        self.results.get(&task).cloned()
    }

    fn activity(
        &mut self,
        name: &str,
        input: Value,
        retry: Value,
    ) -> Option<std::result::Result<Value, Value>> {
        self.task(json!({"t": "activity", "name": name, "input": input, "retry": retry}))
    }

    fn timer(&mut self, ms: u64) -> Option<()> {
        self.task(json!({"t": "timer", "delayMs": ms})).map(|_| ())
    }

    fn child(&mut self, name: &str, input: Value) -> Option<std::result::Result<Value, Value>> {
        self.task(json!({"t": "child", "name": name, "input": input}))
    }

    fn wait(&mut self, name: &str) -> Option<Value> {
        self.task(json!({"t": "wait", "name": name}));
        let (i, (_, data)) = self
            .events
            .iter()
            .enumerate()
            .skip(self.taken)
            .find(|(_, (n, _))| n == name)?;
        self.taken = i + 1;
        Some(data.clone())
    }

    fn end(&mut self, command: Value) {
        self.commands.push(command);
    }
}

fn orchestration(name: &str, s: &mut Script) {
    let flaky_retry = json!({"maxAttempts": 3, "backoff": "fixed", "initialDelayMs": 5});
    match name {
        // Two activities (the second fails once and is retried), then a timer.
        "Chain" => {
            let n = s.input.as_i64().unwrap();
            let Some(Ok(echo)) = s.activity("Echo", json!(n), Value::Null) else {
                return;
            };
            let Some(Ok(flaky)) = s.activity("Flaky", json!(n), flaky_retry) else {
                return;
            };
            if s.timer(20).is_none() {
                return;
            }
            let total = echo.as_i64().unwrap() + flaky.as_i64().unwrap();
            s.end(json!({"t": "complete", "output": total}));
        }
        "Waiter" => {
            let Some(data) = s.wait("go") else { return };
            s.end(json!({"t": "complete", "output": data}));
        }
        "Parent" => {
            let Some(Ok(out)) = s.child("Chain", json!(3)) else {
                return;
            };
            s.end(json!({"t": "complete", "output": out}));
        }
        "Looper" => {
            let n = s.input.as_i64().unwrap();
            if s.timer(5).is_none() {
                return;
            }
            if n < 2 {
                s.end(json!({"t": "continueAsNew", "input": n + 1}));
            } else {
                s.end(json!({"t": "complete", "output": n}));
            }
        }
        "Sleeper" => {
            let _ = s.timer(3_600_000);
        }
        "Rewound" => match s.activity("Boom", Value::Null, Value::Null) {
            Some(Ok(v)) => s.end(json!({"t": "complete", "output": v})),
            Some(Err(e)) => s.end(json!({"t": "fail", "error": e})),
            None => {}
        },
        other => panic!("no orchestration {other}"),
    }
}

/// Activity runs, by key: which runtime (by index) ran it each time.
#[derive(Default)]
struct Runs {
    by_key: Mutex<HashMap<String, Vec<usize>>>,
    /// Rewinds done so far: a Boom run after a rewind is a new run, not a repeat.
    rewinds: AtomicU64,
}

/// Answers one runtime's messages as the JavaScript driver would.
async fn drive(
    runtime: Arc<Runtime>,
    index: usize,
    runs: Arc<Runs>,
    mut messages: mpsc::UnboundedReceiver<Value>,
) {
    while let Some(message) = messages.recv().await {
        match message["kind"].as_str().unwrap() {
            "turns" => {
                for a in message["activations"].as_array().unwrap() {
                    let mut script = Script::new(a["jobs"].as_array().unwrap());
                    orchestration(a["name"].as_str().unwrap(), &mut script);
                    let reply = json!({ "commands": script.commands }).to_string();
                    runtime.complete_turn(a["token"].as_u64().unwrap(), reply);
                }
            }
            "activities" => {
                for item in message["items"].as_array().unwrap().clone() {
                    let runtime = runtime.clone();
                    let runs = runs.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        let name = item["name"].as_str().unwrap();
                        let attempt = item["attempt"].as_u64().unwrap();
                        let rewinds = runs.rewinds.load(Ordering::SeqCst);
                        let key = format!(
                            "{}/{}/{}/attempt {attempt}/rewind {}",
                            item["instanceId"].as_str().unwrap(),
                            item["executionId"],
                            item["task"],
                            if name == "Boom" { rewinds } else { 0 }
                        );
                        runs.by_key
                            .lock()
                            .unwrap()
                            .entry(key)
                            .or_default()
                            .push(index);
                        let input = &item["input"];
                        let result = match name {
                            "Echo" => json!({ "ok": input }),
                            "Flaky" if attempt == 1 => {
                                json!({ "err": { "message": "flaky", "name": "Error" } })
                            }
                            "Flaky" => json!({ "ok": input.as_i64().unwrap() * 10 }),
                            "Boom" if rewinds == 0 => {
                                json!({ "err": { "message": "boom", "name": "Error" } })
                            }
                            "Boom" => json!({ "ok": "fixed" }),
                            other => panic!("no activity {other}"),
                        };
                        runtime.complete_activity(item["id"].as_i64().unwrap(), result.to_string());
                    });
                }
            }
            "abort" | "events" => {}
            other => panic!("unexpected message kind {other}"),
        }
    }
}

struct ChannelHost(mpsc::UnboundedSender<Value>);

impl Host for ChannelHost {
    fn send(&self, message: String) -> bool {
        self.0.send(serde_json::from_str(&message).unwrap()).is_ok()
    }
}

/// Starts a runtime on `store` with its driver; `None` if the process "died" while attaching.
async fn start_runtime(
    store: Arc<FaultyStore>,
    index: usize,
    runs: Arc<Runs>,
) -> Option<(Arc<Runtime>, tokio::task::JoinHandle<()>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut registry = Registry::default();
    for name in ["Chain", "Waiter", "Parent", "Looper", "Sleeper", "Rewound"] {
        registry
            .orchestrations
            .insert(name.into(), vec!["1.0.0".into()]);
    }
    for name in ["Echo", "Flaky", "Boom"] {
        registry.activities.insert(name.into());
    }
    let options = RuntimeOptions {
        generator_cache_size: 0,
        lease_ms: 1_500,
        poll_interval_ms: 20,
        heartbeat_interval_ms: 100,
        heartbeat_timeout_ms: 1_000,
        ..Default::default()
    };
    // A failed attach is tried again, as a process would start again.
    let runtime = loop {
        let host = Box::new(ChannelHost(tx.clone()));
        match Runtime::attach(store.clone(), host, options.clone(), registry.clone()).await {
            Ok(r) => break Arc::new(r),
            Err(_) if store.dead.load(Ordering::SeqCst) => return None,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    runtime.run();
    let driver = tokio::spawn(drive(runtime.clone(), index, runs, rx));
    Some((runtime, driver))
}

// ---------------------------------------------------------------------------------------
// One seeded run and its checks
// ---------------------------------------------------------------------------------------

/// Final (stored status, output) of every instance of the workload.
fn expected() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        ("c1", "Completed", Some(json!(11))),
        ("c2", "Completed", Some(json!(22))),
        ("w", "Completed", Some(json!("go!"))),
        ("p", "Completed", Some(json!(33))),
        ("p:1:1", "Completed", Some(json!(33))),
        ("l", "Completed", Some(json!(2))),
        ("x", "Canceled", None),
        ("r", "Completed", Some(json!("fixed"))),
    ]
}

async fn start_workload(store: &SharedProvider) {
    let start = |id: &str, name: &str, input: Value| StartRequest {
        instance_id: id.into(),
        name: name.into(),
        version: None,
        input: serde_json::value::to_raw_value(&input).unwrap(),
        parent: None,
    };
    for (id, name, input) in [
        ("c1", "Chain", json!(1)),
        ("c2", "Chain", json!(2)),
        ("w", "Waiter", Value::Null),
        ("p", "Parent", Value::Null),
        ("l", "Looper", json!(0)),
        ("x", "Sleeper", Value::Null),
        ("r", "Rewound", Value::Null),
    ] {
        assert!(store
            .create_instance(&start(id, name, input))
            .await
            .unwrap());
    }
    let go = Message::Event {
        name: "go".into(),
        data: serde_json::value::to_raw_value(&json!("go!")).unwrap(),
    };
    store.enqueue("w", &go).await.unwrap();
}

struct Outcome {
    /// Store calls the runtime made (without a fault).
    calls: u64,
    /// The call the fault hit, if any.
    hit: Option<&'static str>,
}

async fn run_seed(seed: u64, calls_hint: u64) -> std::result::Result<Outcome, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (at, fault) = if calls_hint == 0 {
        (u64::MAX, Fault::FailBefore)
    } else {
        let faults = [
            Fault::FailBefore,
            Fault::FailAfter,
            Fault::KillBefore,
            Fault::KillAfter,
        ];
        (
            rng.random_range(0..calls_hint),
            faults[rng.random_range(0..4)],
        )
    };
    let store: SharedProvider = SqliteProvider::in_memory().await.unwrap();
    let runs = Arc::new(Runs::default());
    let first = FaultyStore::new(store.clone(), at, fault);
    let healthy = || FaultyStore::new(store.clone(), u64::MAX, fault);
    let mut killed = false;
    let (mut runtime, mut driver) = match start_runtime(first.clone(), 0, runs.clone()).await {
        Some(started) => started,
        None => {
            killed = true;
            start_runtime(healthy(), 1, runs.clone()).await.unwrap()
        }
    };
    start_workload(&store).await;
    let (mut canceled, mut rewound) = (false, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if !killed && first.dead.load(Ordering::SeqCst) {
            // The process died: its runtime can no longer reach the store. A new one starts.
            killed = true;
            driver.abort();
            let dead = runtime.clone();
            tokio::spawn(async move { dead.shutdown(Duration::ZERO).await });
            (runtime, driver) = start_runtime(healthy(), 1, runs.clone()).await.unwrap();
        }
        let status = |id: &'static str| {
            let store = store.clone();
            async move { store.instance(id).await.unwrap().map(|i| i.status) }
        };
        if !canceled && status("x").await.as_deref() == Some("Running") {
            canceled = crate::client::cancel_if_running(&*store, "x", "not needed".into())
                .await
                .unwrap();
        }
        if !rewound && status("r").await.as_deref() == Some("Failed") {
            runs.rewinds.fetch_add(1, Ordering::SeqCst);
            crate::client::retry_instance(&*store, "r")
                .await
                .map_err(|e| format!("retry failed: {e}"))?;
            rewound = true;
        }
        let mut done = true;
        for (id, _, _) in expected() {
            let finished = matches!(
                status(id).await.as_deref(),
                Some("Completed" | "Failed" | "Canceled")
            );
            // The rewound instance's failure is not its end.
            done &= finished && (id != "r" || rewound);
        }
        if done {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let mut states = Vec::new();
            for (id, _, _) in expected() {
                states.push(format!("{id}: {:?}", status(id).await));
            }
            return Err(format!(
                "not every instance finished within 30 s: {}",
                states.join(", ")
            ));
        }
    }
    let calls = first.calls.load(Ordering::SeqCst);
    let hit = *first.hit.lock().unwrap();
    runtime.shutdown(Duration::from_secs(2)).await;
    driver.abort();

    for (id, want_status, want_output) in expected() {
        let info = store.instance(id).await.unwrap().unwrap();
        if info.status != want_status {
            return Err(format!(
                "{id} ended {} ({:?}), not {want_status}",
                info.status, info.error
            ));
        }
        if let Some(want) = want_output {
            let got: Value =
                serde_json::from_str(info.output.as_deref().unwrap_or("null")).unwrap();
            if got != want {
                return Err(format!("{id} returned {got}, not {want}"));
            }
        }
        check_history(id, &store.history(id, None).await.unwrap())?;
    }
    let looper = store.instance("l").await.unwrap().unwrap();
    if looper.execution_id != 3 {
        return Err(format!(
            "the looper ended in execution {}, not 3",
            looper.execution_id
        ));
    }
    for (key, by) in runs.by_key.lock().unwrap().iter() {
        let live = by.iter().filter(|&&i| i == 1 || !killed).count();
        let dead = by.len() - live;
        if live > 1 || dead > 1 {
            return Err(format!(
                "activity {key} ran {} times (runtimes {by:?})",
                by.len()
            ));
        }
    }
    Ok(Outcome { calls, hit })
}

/// Event ids are dense from 1, every result answers one scheduled task once, and the
/// execution ends once, last.
fn check_history(id: &str, history: &[HistoryRow]) -> std::result::Result<(), String> {
    let mut scheduled = HashSet::new();
    let mut answered = HashSet::new();
    for (i, row) in history.iter().enumerate() {
        if row.event_id != i as u64 + 1 {
            return Err(format!(
                "{id}: event {} at position {}",
                row.event_id,
                i + 1
            ));
        }
        let ends = matches!(
            row.event,
            Event::ExecutionCompleted { .. }
                | Event::ExecutionFailed { .. }
                | Event::ContinuedAsNew { .. }
        );
        if ends && i + 1 != history.len() {
            // A rewound failure is followed by its retry.
            if !matches!(
                history.get(i + 1).map(|r| &r.event),
                Some(Event::ExecutionRetried { .. })
            ) {
                return Err(format!(
                    "{id}: the execution ended at event {} of {}",
                    i + 1,
                    history.len()
                ));
            }
        }
        match &row.event {
            Event::ActivityScheduled { task, .. }
            | Event::TimerCreated { task, .. }
            | Event::ChildScheduled { task, .. }
            | Event::EventWaitStarted { task, .. }
                if !scheduled.insert(*task) =>
            {
                return Err(format!("{id}: task {task} scheduled twice"));
            }
            Event::ActivityCompleted { task, .. }
            | Event::ActivityFailed { task, .. }
            | Event::TimerFired { task }
            | Event::ChildCompleted { task, .. }
            | Event::ChildFailed { task, .. } => {
                if !scheduled.contains(task) {
                    return Err(format!("{id}: a result for task {task}, never scheduled"));
                }
                if !answered.insert(*task) {
                    return Err(format!("{id}: task {task} answered twice"));
                }
            }
            Event::ExecutionRetried { .. } => {
                // The failed activity's answer was removed with the failure.
                answered.clear();
            }
            _ => {}
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_store_call_can_fail_or_kill_and_the_workload_still_ends_right() {
    let seeds: u64 = std::env::var("REPRISE_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    // An uninterrupted run: the final states checked below, and how many calls to pick from.
    let clean = run_seed(0, 0)
        .await
        .expect("the workload runs without faults");
    assert!(
        clean.calls > 20,
        "the workload makes {} store calls",
        clean.calls
    );
    let only: Option<u64> = std::env::var("REPRISE_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let list: Vec<u64> = match only {
        Some(seed) => vec![seed],
        None => (1..=seeds).collect(),
    };
    let mut hits: HashMap<&'static str, u32> = HashMap::new();
    for chunk in list.chunks(6) {
        let runs = chunk
            .iter()
            .map(|&seed| tokio::spawn(async move { (seed, run_seed(seed, clean.calls).await) }));
        for run in runs {
            let (seed, result) = run.await.unwrap();
            match result {
                Ok(outcome) => *hits.entry(outcome.hit.unwrap_or("(none)")).or_default() += 1,
                Err(why) => panic!("seed {seed} (REPRISE_SIM_SEED={seed}): {why}"),
            }
        }
    }
    // Every kind of work call was hit by some seed (asked of a long run only: 40 seeds may
    // miss one by chance).
    for call in [
        "claim_orchestrations",
        "commit_turn",
        "claim_activities",
        "complete_activities_and_claim",
    ] {
        if list.len() >= 100 {
            assert!(hits.contains_key(call), "no seed hit {call}: {hits:?}");
        }
    }
    eprintln!(
        "{} seeds over {} store calls; faults by call: {hits:?}",
        list.len(),
        clean.calls
    );
}
