//! The scripted driver: the workload's orchestrations and activities in Rust, answering a
//! runtime's messages as the JavaScript driver would.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::faulty_store::FaultyStore;
use crate::runtime::{Host, Registry, Runtime, RuntimeOptions};

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
pub(super) struct Runs {
    pub(super) by_key: Mutex<HashMap<String, Vec<usize>>>,
    /// Rewinds done so far: a Boom run after a rewind is a new run, not a repeat.
    pub(super) rewinds: AtomicU64,
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
pub(super) async fn start_runtime(
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
