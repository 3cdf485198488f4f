//! The runtime's loops against a recording fake host on in-memory SQLite: the host answers
//! turns and activities from a task of its own, as the JavaScript thread would.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use super::{Host, Registry, Runtime, RuntimeOptions};
use crate::engine::StartRequest;
use crate::store::sqlite::SqliteProvider;
use crate::store::SharedProvider;

/// Forwards every message to the test, which records and answers it.
struct ChannelHost(mpsc::UnboundedSender<Value>);

impl Host for ChannelHost {
    fn send(&self, message: String) -> bool {
        let value = serde_json::from_str(&message).expect("host messages are JSON");
        self.0.send(value).is_ok()
    }
}

/// The orchestration every test runs: one activity `Echo` with the input, then complete with
/// its result. With the generator cache off every activation replays from the start, so the
/// reply always holds the whole command list.
fn reply_for(activation: &Value) -> String {
    let jobs = activation["jobs"].as_array().unwrap();
    let input = jobs[0]["input"].clone();
    let schedule = serde_json::json!({"t": "activity", "task": 1, "name": "Echo", "input": input});
    let mut commands = vec![schedule];
    if let Some(done) = jobs.iter().find(|j| j["t"] == "ok" && j["task"] == 1) {
        commands.push(serde_json::json!({"t": "complete", "output": done["value"].clone()}));
    }
    serde_json::json!({ "commands": commands }).to_string()
}

struct Harness {
    runtime: Arc<Runtime>,
    provider: SharedProvider,
    messages: mpsc::UnboundedReceiver<Value>,
}

async fn harness(options: RuntimeOptions) -> Harness {
    let provider: SharedProvider = SqliteProvider::in_memory().await.unwrap();
    let (tx, messages) = mpsc::unbounded_channel();
    let mut registry = Registry::default();
    registry
        .orchestrations
        .insert("Chain".into(), vec!["1.0.0".into()]);
    registry.activities.insert("Echo".into());
    let options = RuntimeOptions {
        generator_cache_size: 0,
        ..options
    };
    let runtime = Runtime::attach(
        provider.clone(),
        Box::new(ChannelHost(tx)),
        options,
        registry,
    )
    .await
    .unwrap();
    Harness {
        runtime: Arc::new(runtime),
        provider,
        messages,
    }
}

async fn start(provider: &SharedProvider, count: usize) {
    for i in 0..count {
        let start = StartRequest {
            instance_id: format!("i{i}"),
            name: "Chain".into(),
            version: None,
            input: serde_json::value::to_raw_value(&i).unwrap(),
            parent: None,
        };
        assert!(provider.create_instance(&start).await.unwrap());
    }
}

async fn completed(provider: &SharedProvider, count: usize) -> bool {
    for i in 0..count {
        match provider.instance(&format!("i{i}")).await.unwrap() {
            Some(info) if info.status == "Completed" => {}
            _ => return false,
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_events_keep_each_instances_order() {
    let mut h = harness(RuntimeOptions::default()).await;
    h.runtime.set_events(true);
    start(&h.provider, 20).await;
    h.runtime.run();
    let mut events: HashMap<String, Vec<String>> = HashMap::new();
    while !completed(&h.provider, 20).await {
        let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_secs(10), h.messages.recv()).await
        else {
            panic!("the runtime went quiet before every instance completed");
        };
        match message["kind"].as_str().unwrap() {
            "turns" => {
                for a in message["activations"].as_array().unwrap() {
                    let token = a["token"].as_u64().unwrap();
                    h.runtime.complete_turn(token, reply_for(a));
                }
            }
            "activities" => {
                for item in message["items"].as_array().unwrap() {
                    let result = serde_json::json!({ "ok": item["input"] }).to_string();
                    h.runtime
                        .complete_activity(item["id"].as_i64().unwrap(), result);
                }
            }
            "events" => {
                for e in message["events"].as_array().unwrap() {
                    let id = e["instanceId"].as_str().unwrap().to_owned();
                    events
                        .entry(id)
                        .or_default()
                        .push(e["type"].as_str().unwrap().to_owned());
                }
            }
            other => panic!("unexpected message kind {other}"),
        }
    }
    h.runtime.shutdown(Duration::from_secs(5)).await;
    while let Ok(message) = h.messages.try_recv() {
        if message["kind"] == "events" {
            for e in message["events"].as_array().unwrap() {
                let id = e["instanceId"].as_str().unwrap().to_owned();
                events
                    .entry(id)
                    .or_default()
                    .push(e["type"].as_str().unwrap().to_owned());
            }
        }
    }
    let expected = [
        "instanceStarted",
        "activityScheduled",
        "activityStarted",
        "activityCompleted",
        "instanceCompleted",
    ];
    assert_eq!(events.len(), 20);
    for (id, seen) in &events {
        assert_eq!(seen, &expected, "events of {id} in order");
    }
    // The activities were claimed by the commits that scheduled them: the case where an
    // activity can start before its turn's events are sent.
    let m: Value = serde_json::from_str(&h.runtime.metrics_json()).unwrap();
    assert!(m["activitiesClaimedOnCommit"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_reservation_never_overfills() {
    let mut h = harness(RuntimeOptions {
        worker_concurrency: 2,
        orchestration_concurrency: 3,
        ..Default::default()
    })
    .await;
    start(&h.provider, 12).await;
    h.runtime.run();
    let running = Arc::new(AtomicUsize::new(0));
    let (mut most_running, mut most_turns) = (0, 0);
    let mut open_turns = 0usize;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<()>();
    loop {
        if completed(&h.provider, 12).await {
            break;
        }
        tokio::select! {
            message = h.messages.recv() => {
                let message = message.expect("the host channel stays open");
                match message["kind"].as_str().unwrap() {
                    "turns" => {
                        // The turns of one message are all open at once before they are answered.
                        let activations = message["activations"].as_array().unwrap();
                        open_turns += activations.len();
                        most_turns = most_turns.max(open_turns);
                        for a in activations {
                            h.runtime.complete_turn(a["token"].as_u64().unwrap(), reply_for(a));
                            open_turns -= 1;
                        }
                    }
                    "activities" => {
                        for item in message["items"].as_array().unwrap().clone() {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most_running = most_running.max(now);
                            let (runtime, running, done) = (h.runtime.clone(), running.clone(), done_tx.clone());
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                running.fetch_sub(1, Ordering::SeqCst);
                                let result = serde_json::json!({ "ok": item["input"] }).to_string();
                                runtime.complete_activity(item["id"].as_i64().unwrap(), result);
                                let _ = done.send(());
                            });
                        }
                    }
                    _ => {}
                }
            }
            _ = done_rx.recv() => {}
            _ = tokio::time::sleep(Duration::from_secs(10)) => panic!("no progress for 10 s"),
        }
    }
    h.runtime.shutdown(Duration::from_secs(5)).await;
    assert!(
        most_running <= 2,
        "at most workerConcurrency activities ran at once ({most_running})"
    );
    assert_eq!(most_running, 2, "the worker slots were used");
    assert!(
        most_turns <= 3,
        "at most orchestrationConcurrency turns were out at once ({most_turns})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_abandons_what_is_left_at_its_deadline() {
    let mut h = harness(RuntimeOptions::default()).await;
    start(&h.provider, 1).await;
    h.runtime.run();
    // Answer turns; take the activity and never finish it.
    let activity_id = loop {
        let message = tokio::time::timeout(Duration::from_secs(10), h.messages.recv())
            .await
            .expect("work arrives")
            .unwrap();
        match message["kind"].as_str().unwrap() {
            "turns" => {
                for a in message["activations"].as_array().unwrap() {
                    h.runtime
                        .complete_turn(a["token"].as_u64().unwrap(), reply_for(a));
                }
            }
            "activities" => break message["items"][0]["id"].as_i64().unwrap(),
            _ => {}
        }
    };
    h.runtime.shutdown(Duration::from_millis(200)).await;
    let mut aborted = Vec::new();
    while let Ok(message) = h.messages.try_recv() {
        if message["kind"] == "abort" {
            aborted.extend(
                message["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap()),
            );
        }
    }
    assert_eq!(
        aborted,
        vec![activity_id],
        "the host was told to abort the unfinished activity"
    );
    let m: Value = serde_json::from_str(&h.runtime.metrics_json()).unwrap();
    assert_eq!(m["activitiesAbandoned"], 1);
    assert_eq!(m["activitiesCompleted"], 0);
    // Handed back, not failed: the activity is claimable again at once, as the same attempt.
    let again = h
        .provider
        .claim_activities(
            "another",
            30_000,
            10,
            &crate::store::Routing {
                activities: vec!["Echo".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].seq, activity_id);
    assert_eq!(again[0].attempt, 1);
    let info = h.provider.instance("i0").await.unwrap().unwrap();
    assert_eq!(info.status, "Running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_for_an_instance_mid_commit_waits_for_the_commits_events() {
    let mut h = harness(RuntimeOptions::default()).await;
    let inner = &h.runtime.inner;
    let event = |name: &str| serde_json::value::to_raw_value(name).unwrap();
    super::held::hold(inner, "busy");
    super::held::emit_in_order(
        inner,
        vec![
            ("busy".into(), event("started")),
            ("idle".into(), event("other")),
        ],
    );
    super::held::release(inner, "busy", &[event("scheduled")], true);
    // A commit that failed sends none of its own events, but what waited still goes.
    super::held::hold(inner, "busy");
    super::held::emit_in_order(inner, vec![("busy".into(), event("late"))]);
    super::held::release(inner, "busy", &[event("never")], false);
    let mut seen = Vec::new();
    while let Ok(message) = h.messages.try_recv() {
        assert_eq!(message["kind"], "events");
        for e in message["events"].as_array().unwrap() {
            seen.push(e.as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seen, ["other", "scheduled", "started", "late"]);
}
