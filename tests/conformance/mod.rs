//! Provider conformance suite.
//!
//! Every case is a `pub async fn` taking a fresh, empty provider and talking to it only
//! through the `Provider` trait, so each backend runs the very same cases. A backend's test
//! file declares `#[macro_use] mod conformance;` and generates its `#[tokio::test]` wrappers
//! with [`conformance_suite!`] (every case) or [`conformance_tests!`] (a chosen list).
//!
//! Timing-based cases use leases and timers of a few hundred milliseconds and leave wide
//! margins on both sides of every deadline.

use reprise::engine::{
    payload_from_str, plan_rewind, ActivityRequest, Event, HistoryRow, Message, Outbound,
    ParentLink, Payload, RetryPolicy, StartRequest, TaskError, Terminal, TimerRequest, TurnOutcome,
    FORMAT_VERSION,
};
use reprise::store::{
    ActivityItem, ActivityResult, DeleteFilter, Deletion, DirectClaim, InstanceFilter,
    InstanceInfo, InstancePage, Lease, OrchestrationClaim, OrchestrationItem, PageCursor,
    QueueDepths, SharedProvider, StoreError, SystemMetrics, TurnCommit,
};

/// Generates one `#[tokio::test]` per case name. `$factory` is an async fn returning
/// `(SharedProvider, guard)`: the guard (a temp dir, a schema to drop, ...) lives as long
/// as the test.
macro_rules! conformance_tests {
    ($factory:path => $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (provider, _guard) = $factory().await;
                $crate::conformance::$case(provider).await;
            }
        )+
    };
}

/// Every conformance case, as `#[tokio::test]`s on providers from `$factory`.
macro_rules! conformance_suite {
    ($factory:path) => {
        conformance_tests!($factory =>
            atomic_turn_commit,
            fencing_of_stale_generation,
            a_stale_commit_consumes_and_deletes_nothing,
            lease_expiry_and_renewal,
            per_instance_message_order,
            timer_visibility,
            poison_after_bounded_deliveries,
            events_before_start,
            create_instance_is_idempotent,
            terminal_turn_completes_and_cleans_up,
            continue_as_new_starts_a_new_execution,
            cancellation_removes_exactly_the_cancelled_work,
            deletion_removes_the_tree_and_refuses_running_without_force,
            list_instances_pages_stably_over_many_instances,
            list_instances_filters,
            metrics_and_queue_depths,
            bulk_delete_removes_only_finished_instances,
            prune_executions_keeps_the_current_execution,
            rewind_puts_a_failed_instance_back_to_work,
            batched_activity_outcomes_are_fenced_one_by_one,
            a_commit_claims_its_first_activities_for_its_runtime,
            completions_may_claim_the_instances_they_wake,
            a_watch_follows_a_history_rewound_under_it,
        );
    };
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A long lease: nothing in a case outlives it.
pub const LONG_LEASE: i64 = 60_000;

pub fn payload(json: &str) -> Payload {
    payload_from_str(json).expect("valid JSON")
}

pub fn start_request(instance_id: &str, name: &str, input: &str) -> StartRequest {
    StartRequest {
        instance_id: instance_id.to_owned(),
        name: name.to_owned(),
        version: None,
        input: payload(input),
        parent: None,
    }
}

pub fn event_message(name: &str, data: &str) -> Message {
    Message::Event {
        name: name.to_owned(),
        data: payload(data),
    }
}

/// Moves the store's clock forward: leases, delays and timers run out without waiting, and
/// "not yet" holds however slow the machine is.
pub async fn advance(p: &SharedProvider, ms: i64) {
    p.shift_clock(ms).await.expect("shift_clock");
}

/// Claims every claimable instance (sorted by id).
pub async fn claim(p: &SharedProvider, owner: &str, lease_ms: i64) -> Vec<OrchestrationItem> {
    let mut items = p
        .claim_orchestrations(owner, lease_ms, 100)
        .await
        .expect("claim_orchestrations");
    items.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    items
}

pub fn instance_ids(items: &[OrchestrationItem]) -> Vec<String> {
    items.iter().map(|i| i.instance_id.clone()).collect()
}

/// Claims and asserts that exactly `instance_id` was claimable.
pub async fn claim_only(
    p: &SharedProvider,
    owner: &str,
    lease_ms: i64,
    instance_id: &str,
) -> OrchestrationItem {
    let items = claim(p, owner, lease_ms).await;
    assert_eq!(
        instance_ids(&items),
        vec![instance_id.to_owned()],
        "expected exactly '{instance_id}' to be claimable"
    );
    items.into_iter().next().unwrap()
}

pub async fn assert_nothing_claimable(p: &SharedProvider, owner: &str, why: &str) {
    let items = claim(p, owner, LONG_LEASE).await;
    assert!(
        items.is_empty(),
        "{why}: nothing should be claimable, got {:?}",
        instance_ids(&items)
    );
}

pub async fn claim_work(p: &SharedProvider, owner: &str, lease_ms: i64) -> Vec<ActivityItem> {
    p.claim_activities(owner, lease_ms, 100)
        .await
        .expect("claim_activities")
}

pub async fn claim_one_activity(p: &SharedProvider, owner: &str, lease_ms: i64) -> ActivityItem {
    let mut items = claim_work(p, owner, lease_ms).await;
    assert_eq!(items.len(), 1, "expected exactly one claimable activity");
    items.pop().unwrap()
}

pub fn seqs(item: &OrchestrationItem) -> Vec<i64> {
    item.messages.iter().map(|m| m.seq).collect()
}

pub fn kinds(item: &OrchestrationItem) -> Vec<&'static str> {
    item.messages.iter().map(|m| m.message.kind()).collect()
}

pub fn deliveries(item: &OrchestrationItem) -> Vec<u32> {
    item.messages.iter().map(|m| m.deliveries).collect()
}

/// Names of `Message::Event`s, `-` for other messages.
pub fn event_names(item: &OrchestrationItem) -> Vec<String> {
    item.messages
        .iter()
        .map(|m| match &m.message {
            Message::Event { name, .. } => name.clone(),
            _ => "-".to_owned(),
        })
        .collect()
}

pub fn history_kinds(rows: &[HistoryRow]) -> Vec<&'static str> {
    rows.iter().map(|r| r.event.kind()).collect()
}

pub fn event_ids(rows: &[HistoryRow]) -> Vec<u64> {
    rows.iter().map(|r| r.event_id).collect()
}

pub async fn history(p: &SharedProvider, id: &str, execution: Option<u64>) -> Vec<HistoryRow> {
    p.history(id, execution).await.expect("history")
}

pub async fn instance(p: &SharedProvider, id: &str) -> InstanceInfo {
    p.instance(id)
        .await
        .expect("instance")
        .unwrap_or_else(|| panic!("instance '{id}' should exist"))
}

/// A commit of `outcome` under `item`'s claim, appending after the claimed history.
pub fn turn_commit(item: &OrchestrationItem, outcome: TurnOutcome) -> TurnCommit {
    TurnCommit {
        instance_id: item.instance_id.clone(),
        execution_id: item.execution_id,
        generation: item.generation,
        now: item.now,
        first_event_id: item.history.len() as u64 + 1,
        outcome,
        claim: None,
    }
}

/// The first turn of an execution: `ExecutionStarted` from the claimed Start message,
/// consuming every claimed message.
pub fn start_outcome(item: &OrchestrationItem) -> TurnOutcome {
    let start = item
        .messages
        .iter()
        .map(|m| m.message.clone())
        .find(|m| matches!(m, Message::Start { .. }))
        .expect("a Start message among the claimed messages");
    let Message::Start {
        name,
        version,
        input,
        parent,
        events,
        custom_status,
    } = start
    else {
        unreachable!()
    };
    TurnOutcome {
        events: vec![Event::ExecutionStarted {
            name: name.clone(),
            version: version.clone(),
            input,
            format: FORMAT_VERSION,
            parent,
            events,
            custom_status,
        }],
        consumed: seqs(item),
        started: Some((name, version)),
        ..Default::default()
    }
}

/// Creates an instance and commits its first turn (plus `extra`), leaving nothing queued
/// for it but what `extra` adds.
pub async fn start_instance_with(
    p: &SharedProvider,
    id: &str,
    name: &str,
    extra: impl FnOnce(&mut TurnOutcome),
) {
    assert!(p
        .create_instance(&start_request(id, name, "null"))
        .await
        .expect("create_instance"));
    let item = claim_only(p, "setup", LONG_LEASE, id).await;
    let mut outcome = start_outcome(&item);
    extra(&mut outcome);
    p.commit_turn(turn_commit(&item, outcome))
        .await
        .expect("commit of the first turn");
}

pub async fn start_instance(p: &SharedProvider, id: &str, name: &str) {
    start_instance_with(p, id, name, |_| {}).await
}

/// Adds an activity (event + worker row) to a turn.
pub fn schedule_activity(outcome: &mut TurnOutcome, task: u32, name: &str, input: &str) {
    outcome.events.push(Event::ActivityScheduled {
        task,
        name: name.to_owned(),
        input: payload(input),
        retry: None,
    });
    outcome.activities.push(ActivityRequest {
        task,
        name: name.to_owned(),
        input: payload(input),
        retry: None,
    });
}

/// Adds a timer (event + timer message) to a turn.
pub fn schedule_timer(outcome: &mut TurnOutcome, task: u32, fire_at: i64) {
    outcome.events.push(Event::TimerCreated { task, fire_at });
    outcome.timers.push(TimerRequest { task, fire_at });
}

fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        backoff: reprise::engine::Backoff::Linear,
        initial_delay_ms: 250,
        max_delay_ms: Some(1_000),
        timeout_ms: None,
        jitter: false,
    }
}

fn assert_lease_lost<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::LeaseLost(_)) => {}
        other => panic!("{what}: expected StoreError::LeaseLost, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// 1. Atomic turn commit
// ---------------------------------------------------------------------------------------

fn assert_commit_failed(result: Result<Vec<ActivityItem>, StoreError>) {
    match result {
        Err(StoreError::LeaseLost(e)) => {
            panic!("the lease is held: the failure must not be a lease loss ({e})")
        }
        Err(_) => {}
        Ok(_) => panic!("a commit whose event ids collide with history must fail"),
    }
}

/// After a failed commit in `atomic_turn_commit`: only the first commit's writes are there.
async fn assert_failed_commit_left_no_trace(p: &SharedProvider) {
    let h = history(p, "main", None).await;
    assert_eq!(event_ids(&h), vec![1, 2, 3, 4]);
    assert_eq!(
        history_kinds(&h),
        vec![
            "ExecutionStarted",
            "ActivityScheduled",
            "TimerCreated",
            "CustomStatusSet"
        ]
    );
    let info = instance(p, "main").await;
    assert_eq!(info.status, "Running");
    assert_eq!(info.output, None);
    assert_eq!(info.custom_status.as_deref(), Some(r#""busy""#));
    assert_eq!(info.custom_status_version, 1);
    assert_eq!(info.execution_id, 1);
    assert!(
        p.instance("main:child2").await.unwrap().is_none(),
        "the failed turn's start must not exist"
    );
    assert_eq!(
        p.next_due().await.unwrap(),
        None,
        "the failed turn's timer must not exist"
    );
    assert!(
        claim_work(p, "W2", LONG_LEASE).await.is_empty(),
        "the failed turn's activity must not exist"
    );
}

/// A turn's writes are all-or-nothing: a successful commit shows every write at once, a
/// commit failing part-way (after the fencing update) shows none of them.
pub async fn atomic_turn_commit(p: SharedProvider) {
    start_instance(&p, "other", "Other").await;
    start_instance(&p, "bystander", "Other").await;
    assert!(p
        .create_instance(&start_request("main", "Flow", r#"{"n":1}"#))
        .await
        .unwrap());

    // --- a successful commit: everything becomes visible together ---
    let a = claim_only(&p, "A", LONG_LEASE, "main").await;
    assert_eq!(a.execution_id, 1);
    assert!(a.history.is_empty());
    assert_eq!(kinds(&a), vec!["Start"]);
    let now = p.now().await.unwrap();
    let mut outcome = start_outcome(&a);
    outcome.started = Some(("Flow".to_owned(), Some("2.0".to_owned())));
    outcome.events.push(Event::ActivityScheduled {
        task: 1,
        name: "Charge".to_owned(),
        input: payload(r#"{"amount":5}"#),
        retry: Some(retry_policy()),
    });
    outcome.activities.push(ActivityRequest {
        task: 1,
        name: "Charge".to_owned(),
        input: payload(r#"{"amount":5}"#),
        retry: Some(retry_policy()),
    });
    schedule_timer(&mut outcome, 2, now);
    outcome.events.push(Event::CustomStatusSet {
        value: payload(r#""busy""#),
    });
    outcome.custom_status = Some(payload(r#""busy""#));
    outcome.messages.push(Outbound {
        instance_id: "other".to_owned(),
        message: event_message("ping", "1"),
    });
    outcome.starts.push(StartRequest {
        instance_id: "main:child".to_owned(),
        name: "Child".to_owned(),
        version: Some("1.0".to_owned()),
        input: payload("7"),
        parent: Some(ParentLink {
            instance_id: "main".to_owned(),
            execution_id: 1,
            task: 3,
        }),
    });
    p.commit_turn(turn_commit(&a, outcome))
        .await
        .expect("the first commit succeeds");

    let h = history(&p, "main", None).await;
    assert_eq!(event_ids(&h), vec![1, 2, 3, 4]);
    assert_eq!(
        history_kinds(&h),
        vec![
            "ExecutionStarted",
            "ActivityScheduled",
            "TimerCreated",
            "CustomStatusSet"
        ]
    );
    assert!(
        h.iter().all(|r| r.ts == a.now),
        "rows carry the turn's time"
    );
    let info = instance(&p, "main").await;
    assert_eq!(info.status, "Running");
    assert_eq!(info.name, "Flow");
    assert_eq!(info.version.as_deref(), Some("2.0"));
    assert_eq!(info.execution_id, 1);
    assert_eq!(info.input.as_deref(), Some(r#"{"n":1}"#));
    assert_eq!(info.custom_status.as_deref(), Some(r#""busy""#));
    assert_eq!(info.custom_status_version, 1);
    assert_eq!(info.output, None);
    assert_eq!(info.error, None);
    let child = instance(&p, "main:child").await;
    assert_eq!(child.status, "Running");
    assert_eq!(child.name, "Child");
    assert_eq!(child.version.as_deref(), Some("1.0"));
    assert_eq!(child.input.as_deref(), Some("7"));
    assert_eq!(child.parent_instance_id.as_deref(), Some("main"));

    let work = claim_one_activity(&p, "W", LONG_LEASE).await;
    assert_eq!(work.instance_id, "main");
    assert_eq!(work.execution_id, 1);
    assert_eq!(work.task, 1);
    assert_eq!(work.name, "Charge");
    assert_eq!(work.input, r#"{"amount":5}"#);
    assert_eq!(work.attempt, 1);
    assert_eq!(work.deliveries, 1);
    assert_eq!(work.retry, Some(retry_policy()));

    p.enqueue("main", &event_message("go", "2")).await.unwrap();
    let items = claim(&p, "checker", LONG_LEASE).await;
    assert_eq!(instance_ids(&items), vec!["main", "main:child", "other"]);
    let b = &items[0];
    assert_eq!(kinds(b), vec!["TimerFired", "Event"]);
    assert!(matches!(
        b.messages[0].message,
        Message::TimerFired {
            execution_id: 1,
            task: 2
        }
    ));
    assert_eq!(deliveries(b), vec![1, 1]);
    assert_eq!(b.history.len(), 4);
    match &items[1].messages[..] {
        [m] => match &m.message {
            Message::Start {
                name,
                version,
                input,
                parent,
                ..
            } => {
                assert_eq!(name, "Child");
                assert_eq!(version.as_deref(), Some("1.0"));
                assert_eq!(input.get(), "7");
                assert_eq!(
                    parent,
                    &Some(ParentLink {
                        instance_id: "main".to_owned(),
                        execution_id: 1,
                        task: 3
                    })
                );
            }
            other => panic!("the child's message should be a Start, got {other:?}"),
        },
        other => panic!("the child should have one message, got {other:?}"),
    }
    assert_eq!(event_names(&items[2]), vec!["ping"]);
    for item in &items[1..] {
        p.abandon_orchestration(&item.instance_id, item.generation, 0, false)
            .await
            .unwrap();
    }
    let b = items.into_iter().next().unwrap();

    // --- a commit failing after the fencing update: nothing of it is visible ---
    let now = p.now().await.unwrap();
    let mut failing = TurnOutcome {
        events: vec![
            Event::TimerFired { task: 2 },
            Event::EventRaised {
                name: "go".to_owned(),
                data: payload("2"),
            },
            Event::CustomStatusSet {
                value: payload(r#""finishing""#),
            },
            Event::ExecutionCompleted {
                output: payload(r#""done""#),
            },
        ],
        consumed: seqs(&b),
        terminal: Some(Terminal::Completed(payload(r#""done""#))),
        custom_status: Some(payload(r#""finishing""#)),
        messages: vec![Outbound {
            instance_id: "other".to_owned(),
            message: event_message("pong", "3"),
        }],
        starts: vec![start_request("main:child2", "Child", "8")],
        // The execution ends: its open activity goes.
        canceled_activities: vec![1],
        ..Default::default()
    };
    schedule_activity(&mut failing, 5, "Refund", "{}");
    failing.timers.push(TimerRequest {
        task: 6,
        fire_at: now + LONG_LEASE,
    });
    // Event ids 4.. collide with the stored CustomStatusSet (event 4).
    let failing_commit = |outcome: TurnOutcome| TurnCommit {
        first_event_id: 4,
        ..turn_commit(&b, outcome)
    };
    // Alone.
    assert_commit_failed(p.commit_turn(failing_commit(failing.clone())).await);
    assert_failed_commit_left_no_trace(&p).await;
    // Along with other callers' writes, which are unaffected by it.
    let (b1, b2, b3) = (
        event_message("b1", "1"),
        event_message("b2", "2"),
        event_message("b3", "3"),
    );
    let (result, e1, e2, e3) = tokio::join!(
        p.commit_turn(failing_commit(failing)),
        p.enqueue("bystander", &b1),
        p.enqueue("bystander", &b2),
        p.enqueue("bystander", &b3),
    );
    assert_commit_failed(result);
    e1.unwrap();
    e2.unwrap();
    e3.unwrap();

    assert_failed_commit_left_no_trace(&p).await;
    // The lock is still held by the failed commit's claim (its release was rolled back),
    // the outbound message was not sent, the concurrent enqueues were kept.
    let items = claim(&p, "C", LONG_LEASE).await;
    assert_eq!(
        instance_ids(&items),
        vec!["bystander", "main:child", "other"]
    );
    // (Concurrent enqueues have no defined order among themselves.)
    let mut names = event_names(&items[0]);
    names.sort();
    assert_eq!(names, vec!["b1", "b2", "b3"]);
    assert_eq!(kinds(&items[1]), vec!["Start"]);
    assert_eq!(event_names(&items[2]), vec!["ping"]);

    // The worker row survived the failed commit's (rolled back) deletion.
    assert!(p
        .complete_activity(&work, ActivityResult::Completed(payload("true")))
        .await
        .unwrap());

    // The consumed messages are still there; a correct commit under the same claim works.
    p.abandon_orchestration("main", b.generation, 0, true)
        .await
        .unwrap();
    let d = claim_only(&p, "D", LONG_LEASE, "main").await;
    assert_eq!(d.history.len(), 4);
    assert_eq!(&seqs(&d)[..2], &seqs(&b)[..]);
    assert_eq!(kinds(&d), vec!["TimerFired", "Event", "ActivityCompleted"]);
    assert_eq!(deliveries(&d), vec![2, 2, 1]);
    let outcome = TurnOutcome {
        events: vec![
            Event::TimerFired { task: 2 },
            Event::EventRaised {
                name: "go".to_owned(),
                data: payload("2"),
            },
            Event::ActivityCompleted {
                task: 1,
                result: payload("true"),
            },
            Event::ExecutionCompleted {
                output: payload(r#""done""#),
            },
        ],
        consumed: seqs(&d),
        terminal: Some(Terminal::Completed(payload(r#""done""#))),
        ..Default::default()
    };
    p.commit_turn(turn_commit(&d, outcome)).await.unwrap();
    assert_eq!(
        event_ids(&history(&p, "main", None).await),
        vec![1, 2, 3, 4, 5, 6, 7, 8]
    );
    let info = instance(&p, "main").await;
    assert_eq!(info.status, "Completed");
    assert_eq!(info.output.as_deref(), Some(r#""done""#));
}

// ---------------------------------------------------------------------------------------
// 2. Fencing of a stale generation
// ---------------------------------------------------------------------------------------

/// Once a lease expired and another owner claimed, the old claim writes nothing.
pub async fn fencing_of_stale_generation(p: SharedProvider) {
    assert!(p
        .create_instance(&start_request("f", "Flow", "1"))
        .await
        .unwrap());
    let a = claim_only(&p, "A", 200, "f").await;
    assert_nothing_claimable(&p, "B", "while A's lease holds").await;
    advance(&p, 350).await;
    let b = claim_only(&p, "B", LONG_LEASE, "f").await;
    assert_ne!(
        b.generation, a.generation,
        "a new claim moves the generation"
    );
    assert_eq!(seqs(&b), seqs(&a));
    assert_eq!(deliveries(&b), vec![2]);

    let mut stale = start_outcome(&a);
    stale.events.push(Event::CustomStatusSet {
        value: payload(r#""A""#),
    });
    stale.custom_status = Some(payload(r#""A""#));
    schedule_activity(&mut stale, 1, "FromA", "0");
    stale.messages.push(Outbound {
        instance_id: "f".to_owned(),
        message: event_message("fromA", "0"),
    });
    assert_lease_lost(
        p.commit_turn(turn_commit(&a, stale)).await,
        "commit under a stale generation",
    );
    assert!(history(&p, "f", None).await.is_empty());
    let info = instance(&p, "f").await;
    assert_eq!(info.custom_status, None);
    assert_eq!(info.custom_status_version, 0);
    assert!(claim_work(&p, "W", LONG_LEASE).await.is_empty());
    assert_nothing_claimable(&p, "C", "B's lease is untouched by A's failed commit").await;

    let mut fresh = start_outcome(&b);
    fresh.events.push(Event::CustomStatusSet {
        value: payload(r#""B""#),
    });
    fresh.custom_status = Some(payload(r#""B""#));
    p.commit_turn(turn_commit(&b, fresh))
        .await
        .expect("the current generation commits");
    let h = history(&p, "f", None).await;
    assert_eq!(
        history_kinds(&h),
        vec!["ExecutionStarted", "CustomStatusSet"]
    );
    match &h[1].event {
        Event::CustomStatusSet { value } => assert_eq!(value.get(), r#""B""#),
        other => panic!("unexpected {other:?}"),
    }
    let info = instance(&p, "f").await;
    assert_eq!(info.custom_status.as_deref(), Some(r#""B""#));
    assert_eq!(info.custom_status_version, 1);

    // A stale abandon neither releases nor delays anything.
    p.enqueue("f", &event_message("e", "1")).await.unwrap();
    p.abandon_orchestration("f", a.generation, LONG_LEASE, true)
        .await
        .unwrap();
    let c = claim_only(&p, "C", LONG_LEASE, "f").await;
    assert_eq!(event_names(&c), vec!["e"]);
    assert_eq!(deliveries(&c), vec![1]);
    let mut outcome = TurnOutcome {
        events: vec![Event::EventRaised {
            name: "e".to_owned(),
            data: payload("1"),
        }],
        consumed: seqs(&c),
        ..Default::default()
    };
    schedule_activity(&mut outcome, 1, "Work", r#""x""#);
    p.commit_turn(turn_commit(&c, outcome)).await.unwrap();

    // --- activities ---
    let wa = claim_one_activity(&p, "WA", 200).await;
    assert!(claim_work(&p, "WB", LONG_LEASE).await.is_empty());
    advance(&p, 350).await;
    let wb = claim_one_activity(&p, "WB", LONG_LEASE).await;
    assert_eq!(wb.seq, wa.seq);
    assert_ne!(wb.generation, wa.generation);
    assert_eq!(wb.deliveries, 2);

    assert!(!p
        .complete_activity(&wa, ActivityResult::Completed(payload(r#""stale""#)))
        .await
        .unwrap());
    assert!(!p
        .complete_activity(&wa, ActivityResult::Failed(TaskError::new("stale")))
        .await
        .unwrap());
    let now = p.now().await.unwrap();
    assert!(!p.retry_activity(&wa, now, 2).await.unwrap());
    p.abandon_activity(&wa, 0).await.unwrap();
    assert!(
        claim_work(&p, "WC", LONG_LEASE).await.is_empty(),
        "a stale abandon must not release WB's lease"
    );
    assert_nothing_claimable(&p, "C", "a stale completion enqueues nothing").await;

    assert!(p
        .complete_activity(&wb, ActivityResult::Completed(payload(r#""fresh""#)))
        .await
        .unwrap());
    assert!(
        !p.complete_activity(&wb, ActivityResult::Completed(payload(r#""again""#)))
            .await
            .unwrap(),
        "an activity completes once"
    );
    let d = claim_only(&p, "D", LONG_LEASE, "f").await;
    match &d.messages[..] {
        [m] => match &m.message {
            Message::ActivityCompleted {
                execution_id,
                task,
                result,
            } => {
                assert_eq!((*execution_id, *task), (1, 1));
                assert_eq!(result.get(), r#""fresh""#);
            }
            other => panic!("expected ActivityCompleted, got {other:?}"),
        },
        other => panic!("expected one message, got {other:?}"),
    }
}

/// A commit under a stale generation changes nothing, including rows the live claim does
/// not hold: messages of other instances and messages that arrived after the live claim
/// (consumed), the execution's queued activities and timers (canceled), outbound messages,
/// child starts and the instance's status.
pub async fn a_stale_commit_consumes_and_deletes_nothing(p: SharedProvider) {
    assert!(p
        .create_instance(&start_request("s", "Flow", "null"))
        .await
        .unwrap());
    let first = claim_only(&p, "A", LONG_LEASE, "s").await;
    let fire_at = first.now + 10 * LONG_LEASE;
    let mut outcome = start_outcome(&first);
    schedule_activity(&mut outcome, 1, "One", "1");
    schedule_activity(&mut outcome, 2, "Two", "2");
    schedule_timer(&mut outcome, 3, fire_at);
    p.commit_turn(turn_commit(&first, outcome)).await.unwrap();

    // Another instance with a visible message, held by its own claim meanwhile.
    assert!(p
        .create_instance(&start_request("other", "Flow", "null"))
        .await
        .unwrap());
    let o = claim_only(&p, "O", LONG_LEASE, "other").await;
    p.commit_turn(turn_commit(&o, start_outcome(&o)))
        .await
        .unwrap();
    p.enqueue("other", &event_message("x", "1")).await.unwrap();
    let o = claim_only(&p, "O", LONG_LEASE, "other").await;
    let other_seqs = seqs(&o);

    // A's claim goes stale; B holds the instance now. e2 arrives after B's claim.
    p.enqueue("s", &event_message("e1", "1")).await.unwrap();
    let a = claim_only(&p, "A", 200, "s").await;
    advance(&p, 350).await;
    let b = claim_only(&p, "B", LONG_LEASE, "s").await;
    assert_eq!(event_names(&b), vec!["e1"]);
    p.enqueue("s", &event_message("e2", "2")).await.unwrap();
    let before = p.queue_depths().await.unwrap();
    assert_eq!(
        (
            before.orchestrator_visible,
            before.orchestrator_delayed,
            before.worker_visible
        ),
        (3, 1, 2),
        "x, e1, e2 visible; the timer delayed; both activities queued"
    );

    let mut stale = TurnOutcome {
        events: vec![Event::EventRaised {
            name: "e1".to_owned(),
            data: payload("1"),
        }],
        consumed: seqs(&a).into_iter().chain(other_seqs.clone()).collect(),
        canceled_activities: vec![1, 2],
        canceled_timers: vec![3],
        terminal: Some(Terminal::Completed(payload(r#""stale""#))),
        ..Default::default()
    };
    stale.messages.push(Outbound {
        instance_id: "other".to_owned(),
        message: event_message("fromStale", "0"),
    });
    // Once as a plain turn, once as a turn that also starts a child (a backend may commit
    // those two differently).
    let mut with_child = stale.clone();
    with_child.starts.push(StartRequest {
        parent: Some(ParentLink {
            instance_id: "s".to_owned(),
            execution_id: 1,
            task: 4,
        }),
        ..start_request("s-child", "Child", "null")
    });
    for (what, outcome) in [("plain", stale), ("starting a child", with_child)] {
        assert_lease_lost(
            p.commit_turn(turn_commit(&a, outcome)).await,
            &format!("commit under a stale generation ({what})"),
        );
        assert_eq!(
            p.queue_depths().await.unwrap(),
            before,
            "the stale commit ({what}) removed or added queue rows"
        );
    }

    assert_eq!(
        p.next_due().await.unwrap(),
        Some(fire_at),
        "the timer is still queued"
    );
    assert!(
        p.instance("s-child").await.unwrap().is_none(),
        "no child started"
    );
    let info = instance(&p, "s").await;
    assert_eq!(info.status, "Running");
    assert_eq!(info.output, None);
    assert_eq!(
        history_kinds(&history(&p, "s", None).await),
        vec![
            "ExecutionStarted",
            "ActivityScheduled",
            "ActivityScheduled",
            "TimerCreated"
        ]
    );
    let mut work = claim_work(&p, "W", LONG_LEASE).await;
    work.sort_by_key(|w| w.task);
    assert_eq!(work.iter().map(|w| w.task).collect::<Vec<_>>(), vec![1, 2]);
    p.abandon_orchestration("other", o.generation, 0, false)
        .await
        .unwrap();
    let o = claim_only(&p, "O", LONG_LEASE, "other").await;
    assert_eq!(
        event_names(&o),
        vec!["x"],
        "x kept, nothing from the stale turn"
    );
    assert_eq!(seqs(&o), other_seqs);

    // B, the live claim, still commits what it holds; e2 waits for the next turn.
    let fresh = TurnOutcome {
        events: vec![Event::EventRaised {
            name: "e1".to_owned(),
            data: payload("1"),
        }],
        consumed: seqs(&b),
        ..Default::default()
    };
    p.commit_turn(turn_commit(&b, fresh)).await.unwrap();
    let c = claim_only(&p, "C", LONG_LEASE, "s").await;
    assert_eq!(event_names(&c), vec!["e2"]);
}

/// The `kind` to write over the queued messages of instance "u" and the one to find there,
/// for [`unreadable_rows_set_their_instance_aside`]: an unknown kind makes a row unreadable.
pub fn unreadable_kind_swap(unreadable: bool) -> (&'static str, &'static str) {
    if unreadable {
        ("NoSuchKind", "Event")
    } else {
        ("Event", "NoSuchKind")
    }
}

/// An instance with a queued row this version cannot read is set aside for a minute: the
/// claim goes on with the other instances, does not retry it at once (even once the row is
/// readable again), and takes it after the minute. `set_unreadable(true)` makes the queued
/// messages of instance "u" unreadable, `false` restores them (run by the backend's test).
pub async fn unreadable_rows_set_their_instance_aside<F, Fut>(p: SharedProvider, set_unreadable: F)
where
    F: Fn(bool) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for id in ["u", "ok"] {
        start_instance(&p, id, "Flow").await;
    }
    for id in ["u", "ok"] {
        p.enqueue(id, &event_message("e", "1")).await.unwrap();
    }
    set_unreadable(true).await;
    // "ok" stays claimed past the minute below.
    let items = claim(&p, "A", 10 * LONG_LEASE).await;
    assert_eq!(
        instance_ids(&items),
        vec!["ok"],
        "the readable instance is claimed"
    );
    set_unreadable(false).await;
    assert_nothing_claimable(&p, "A", "u is set aside even though readable again").await;
    advance(&p, 59_000).await;
    assert_nothing_claimable(&p, "A", "u is set aside for a minute").await;
    advance(&p, 2_000).await;
    let u = claim_only(&p, "A", LONG_LEASE, "u").await;
    assert_eq!(event_names(&u), vec!["e"]);
}

// ---------------------------------------------------------------------------------------
// 3. Lease expiry and renewal
// ---------------------------------------------------------------------------------------

const SHORT_LEASE: i64 = 400;
const RENEW_EVERY: i64 = 130;

/// A lease excludes others while it holds, renewals extend it, it expires once renewals
/// stop; renewals report the leases that are no longer held.
pub async fn lease_expiry_and_renewal(p: SharedProvider) {
    assert!(p
        .create_instance(&start_request("l", "Flow", "null"))
        .await
        .unwrap());
    let started = p.now().await.unwrap();
    let a = claim_only(&p, "A", SHORT_LEASE, "l").await;
    let lease_a = Lease::Instance("l".to_owned(), a.generation);
    for _ in 0..6 {
        advance(&p, RENEW_EVERY).await;
        let lost = p
            .renew_leases(std::slice::from_ref(&lease_a), SHORT_LEASE)
            .await;
        assert_eq!(lost.unwrap(), vec![], "a held lease renews");
        assert_nothing_claimable(&p, "B", "while A renews its lease").await;
    }
    assert!(
        p.now().await.unwrap() - started >= 2 * SHORT_LEASE - 50,
        "renewals carried the lease well past its original expiry"
    );
    advance(&p, SHORT_LEASE + 200).await;
    // A stale renewal neither extends nor keeps the lease of the claim that replaced it.
    let b0 = claim_only(&p, "B0", SHORT_LEASE, "l").await;
    let lost = p
        .renew_leases(std::slice::from_ref(&lease_a), LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(lost, vec![lease_a.clone()]);
    advance(&p, SHORT_LEASE + 200).await;
    let b = claim_only(&p, "B", LONG_LEASE, "l").await;
    assert_ne!(b.generation, a.generation);
    assert_ne!(b.generation, b0.generation);
    let lease_b = Lease::Instance("l".to_owned(), b.generation);
    let unknown = Lease::Instance("no-such-instance".to_owned(), 1);
    let lost = p
        .renew_leases(
            &[lease_a.clone(), lease_b.clone(), unknown.clone()],
            LONG_LEASE,
        )
        .await
        .unwrap();
    assert_eq!(lost, vec![lease_a.clone(), unknown]);
    assert_nothing_claimable(&p, "C", "B holds the lease").await;

    // A lease released by a commit is not held any more: renewing it must not lock again.
    let mut outcome = start_outcome(&b);
    schedule_activity(&mut outcome, 1, "Work", "1");
    p.commit_turn(turn_commit(&b, outcome)).await.unwrap();
    let lost = p
        .renew_leases(std::slice::from_ref(&lease_b), LONG_LEASE)
        .await;
    assert_eq!(lost.unwrap(), vec![lease_b]);
    p.enqueue("l", &event_message("e", "1")).await.unwrap();
    let c = claim_only(&p, "C", LONG_LEASE, "l").await;
    assert_eq!(event_names(&c), vec!["e"]);
    // Same after an abandon.
    p.abandon_orchestration("l", c.generation, 0, true)
        .await
        .unwrap();
    let lease_c = Lease::Instance("l".to_owned(), c.generation);
    let lost = p
        .renew_leases(std::slice::from_ref(&lease_c), LONG_LEASE)
        .await;
    assert_eq!(lost.unwrap(), vec![lease_c]);
    let d = claim_only(&p, "D", LONG_LEASE, "l").await;
    assert_eq!(deliveries(&d), vec![2]);

    // --- activity rows ---
    let started = p.now().await.unwrap();
    let wa = claim_one_activity(&p, "WA", SHORT_LEASE).await;
    let lease_wa = Lease::Activity(wa.seq, wa.generation);
    for _ in 0..6 {
        advance(&p, RENEW_EVERY).await;
        let lost = p
            .renew_leases(std::slice::from_ref(&lease_wa), SHORT_LEASE)
            .await;
        assert_eq!(lost.unwrap(), vec![], "a held activity lease renews");
        assert!(
            claim_work(&p, "WB", LONG_LEASE).await.is_empty(),
            "while WA renews its lease"
        );
    }
    assert!(p.now().await.unwrap() - started >= 2 * SHORT_LEASE - 50);
    advance(&p, SHORT_LEASE + 200).await;
    let wb0 = claim_one_activity(&p, "WB0", SHORT_LEASE).await;
    let lost = p
        .renew_leases(std::slice::from_ref(&lease_wa), LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(
        lost,
        vec![lease_wa.clone()],
        "a stale activity lease does not renew"
    );
    advance(&p, SHORT_LEASE + 200).await;
    let wb = claim_one_activity(&p, "WB", LONG_LEASE).await;
    assert_eq!(wb.seq, wa.seq);
    assert_ne!(wb.generation, wb0.generation);
    assert_eq!(wb.deliveries, 3);
    let lease_wb = Lease::Activity(wb.seq, wb.generation);
    let lost = p
        .renew_leases(&[lease_wb.clone(), lease_wa.clone()], LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(lost, vec![lease_wa]);
    assert!(claim_work(&p, "WC", LONG_LEASE).await.is_empty());

    // Released by an abandon: renewing does not lock it again.
    p.abandon_activity(&wb, 0).await.unwrap();
    let lost = p
        .renew_leases(std::slice::from_ref(&lease_wb), LONG_LEASE)
        .await;
    assert_eq!(lost.unwrap(), vec![lease_wb]);
    let wc = claim_one_activity(&p, "WC", LONG_LEASE).await;
    assert_eq!(wc.deliveries, 4);
    // Completed: the row is gone, its lease is lost.
    assert!(p
        .complete_activity(&wc, ActivityResult::Completed(payload("1")))
        .await
        .unwrap());
    let lease_wc = Lease::Activity(wc.seq, wc.generation);
    let lost = p
        .renew_leases(std::slice::from_ref(&lease_wc), LONG_LEASE)
        .await;
    assert_eq!(lost.unwrap(), vec![lease_wc]);
    assert!(claim_work(&p, "WD", LONG_LEASE).await.is_empty());
}

// ---------------------------------------------------------------------------------------
// 4. Per-instance message order
// ---------------------------------------------------------------------------------------

/// A claim returns an instance's messages in enqueue order, whatever path enqueued them.
pub async fn per_instance_message_order(p: SharedProvider) {
    start_instance_with(&p, "o", "Flow", |o| schedule_activity(o, 1, "Work", "0")).await;
    start_instance(&p, "x", "Flow").await;
    let work = claim_one_activity(&p, "W", LONG_LEASE).await;

    p.enqueue("o", &event_message("e1", "1")).await.unwrap();
    p.enqueue("x", &event_message("noise1", "0")).await.unwrap();
    p.enqueue("o", &event_message("e2", "2")).await.unwrap();
    assert!(p
        .complete_activity(&work, ActivityResult::Completed(payload("42")))
        .await
        .unwrap());
    p.enqueue("o", &event_message("e3", "3")).await.unwrap();
    p.enqueue("x", &event_message("noise2", "0")).await.unwrap();
    p.enqueue("o", &event_message("e4", "4")).await.unwrap();
    p.enqueue("o", &event_message("e5", "5")).await.unwrap();

    let items = claim(&p, "C", LONG_LEASE).await;
    assert_eq!(instance_ids(&items), vec!["o", "x"]);
    let o = &items[0];
    assert_eq!(
        kinds(o),
        vec![
            "Event",
            "Event",
            "ActivityCompleted",
            "Event",
            "Event",
            "Event"
        ]
    );
    assert_eq!(event_names(o), vec!["e1", "e2", "-", "e3", "e4", "e5"]);
    let data: Vec<String> = o
        .messages
        .iter()
        .map(|m| match &m.message {
            Message::Event { data, .. } => data.get().to_owned(),
            Message::ActivityCompleted { result, .. } => result.get().to_owned(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(data, vec!["1", "2", "42", "3", "4", "5"]);
    assert!(
        o.messages.windows(2).all(|w| w[0].seq < w[1].seq),
        "ascending seq: {:?}",
        seqs(o)
    );
    assert_eq!(event_names(&items[1]), vec!["noise1", "noise2"]);

    // Order holds across a redelivery too.
    p.abandon_orchestration("o", o.generation, 0, true)
        .await
        .unwrap();
    let again = claim_only(&p, "D", LONG_LEASE, "o").await;
    assert_eq!(seqs(&again), seqs(o));
}

// ---------------------------------------------------------------------------------------
// 5. Timer visibility
// ---------------------------------------------------------------------------------------

/// A timer is a `TimerFired` message invisible until `fire_at`; `next_due` reports it.
pub async fn timer_visibility(p: SharedProvider) {
    assert!(p
        .create_instance(&start_request("t", "Flow", "null"))
        .await
        .unwrap());
    let a = claim_only(&p, "A", LONG_LEASE, "t").await;
    let now = p.now().await.unwrap();
    let fire_at = now + 10_000;
    let later = now + 10 * LONG_LEASE;
    let mut outcome = start_outcome(&a);
    schedule_timer(&mut outcome, 1, fire_at);
    schedule_timer(&mut outcome, 2, later);
    p.commit_turn(turn_commit(&a, outcome)).await.unwrap();

    assert_eq!(p.next_due().await.unwrap(), Some(fire_at));
    let items = claim(&p, "B", LONG_LEASE).await;
    assert!(
        items.is_empty(),
        "a timer is not claimable before it fires, got {:?}",
        instance_ids(&items)
    );
    advance(&p, 9_000).await;
    let items = claim(&p, "B", LONG_LEASE).await;
    assert!(items.is_empty(), "a timer is not claimable before it fires");
    assert_eq!(p.next_due().await.unwrap(), Some(fire_at));

    advance(&p, 1_050).await;
    assert_eq!(
        p.next_due().await.unwrap(),
        Some(later),
        "only the later timer is still in the future"
    );
    let b = claim_only(&p, "B", LONG_LEASE, "t").await;
    assert!(b.now >= fire_at);
    match &b.messages[..] {
        [m] => {
            assert!(matches!(
                m.message,
                Message::TimerFired {
                    execution_id: 1,
                    task: 1
                }
            ));
            assert_eq!(m.deliveries, 1);
        }
        other => panic!("expected the one fired timer, got {other:?}"),
    }

    // Canceling the later timer removes it.
    let outcome = TurnOutcome {
        events: vec![
            Event::TimerFired { task: 1 },
            Event::TaskCanceled { task: 2 },
        ],
        consumed: seqs(&b),
        canceled_timers: vec![2],
        ..Default::default()
    };
    p.commit_turn(turn_commit(&b, outcome)).await.unwrap();
    assert_eq!(p.next_due().await.unwrap(), None);
    assert_nothing_claimable(&p, "C", "every timer is consumed or canceled").await;
}

// ---------------------------------------------------------------------------------------
// 6. Poison after bounded deliveries
// ---------------------------------------------------------------------------------------

/// Deliveries count claims that ended without a turn, so a runtime can poison a message
/// after a bound; abandons that do not count give the delivery back.
pub async fn poison_after_bounded_deliveries(p: SharedProvider) {
    const N: u32 = 4;
    assert!(p
        .create_instance(&start_request("p", "Flow", "null"))
        .await
        .unwrap());
    for i in 1..=N {
        let item = claim_only(&p, "A", LONG_LEASE, "p").await;
        assert_eq!(deliveries(&item), vec![i]);
        p.abandon_orchestration("p", item.generation, 0, true)
            .await
            .unwrap();
    }
    for _ in 0..3 {
        let item = claim_only(&p, "A", LONG_LEASE, "p").await;
        assert_eq!(deliveries(&item), vec![N + 1]);
        p.abandon_orchestration("p", item.generation, 0, false)
            .await
            .unwrap();
    }

    // A message arriving while the instance is claimed was not delivered by that claim:
    // giving the claim's delivery back leaves it at zero, so its first delivery counts 1.
    let item = claim_only(&p, "A", LONG_LEASE, "p").await;
    assert_eq!(deliveries(&item), vec![N + 1]);
    p.enqueue("p", &event_message("late", "1")).await.unwrap();
    p.abandon_orchestration("p", item.generation, 0, false)
        .await
        .unwrap();
    let item = claim_only(&p, "A", LONG_LEASE, "p").await;
    assert_eq!(kinds(&item), vec!["Start", "Event"]);
    assert_eq!(deliveries(&item), vec![N + 1, 1]);

    // An abandon with a delay hides the messages until then.
    let before = p.now().await.unwrap();
    p.abandon_orchestration("p", item.generation, 10_000, true)
        .await
        .unwrap();
    let due = p.next_due().await.unwrap().expect("the delayed messages");
    assert!(due >= before + 10_000, "due {due}, abandoned at {before}");
    let items = claim(&p, "B", LONG_LEASE).await;
    assert!(items.is_empty(), "abandoned messages wait for the delay");
    advance(&p, 9_000).await;
    assert!(claim(&p, "B", LONG_LEASE).await.is_empty(), "still waiting");
    advance(&p, 1_100).await;
    let item = claim_only(&p, "B", LONG_LEASE, "p").await;
    assert_eq!(deliveries(&item), vec![N + 2, 2]);

    // --- activities ---
    let mut outcome = start_outcome(&item);
    schedule_activity(&mut outcome, 1, "Flaky", "0");
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();

    let w1 = claim_one_activity(&p, "W", 200).await;
    assert_eq!((w1.deliveries, w1.attempt), (1, 1));
    advance(&p, 350).await;
    let w2 = claim_one_activity(&p, "W", LONG_LEASE).await;
    assert_eq!((w2.seq, w2.deliveries, w2.attempt), (w1.seq, 2, 1));
    p.abandon_activity(&w2, 0).await.unwrap();
    let w3 = claim_one_activity(&p, "W", LONG_LEASE).await;
    assert_eq!((w3.deliveries, w3.attempt), (3, 1));
    let before = p.now().await.unwrap();
    p.abandon_activity(&w3, 10_000).await.unwrap();
    assert!(p.next_due().await.unwrap().unwrap() >= before + 10_000);
    let work = claim_work(&p, "W", LONG_LEASE).await;
    assert!(work.is_empty(), "an abandoned activity waits for the delay");
    advance(&p, 9_000).await;
    assert!(
        claim_work(&p, "W", LONG_LEASE).await.is_empty(),
        "still waiting"
    );
    advance(&p, 1_100).await;
    let w4 = claim_one_activity(&p, "W", LONG_LEASE).await;
    assert_eq!((w4.deliveries, w4.attempt), (4, 1));

    // A retry is a new attempt: deliveries start over.
    let visible_at = p.now().await.unwrap() + 10_000;
    assert!(p.retry_activity(&w4, visible_at, 2).await.unwrap());
    assert_eq!(p.next_due().await.unwrap(), Some(visible_at));
    let work = claim_work(&p, "W", LONG_LEASE).await;
    assert!(work.is_empty(), "a retry waits for its visible_at");
    advance(&p, 9_000).await;
    assert!(
        claim_work(&p, "W", LONG_LEASE).await.is_empty(),
        "still waiting"
    );
    advance(&p, 1_100).await;
    let w5 = claim_one_activity(&p, "W", LONG_LEASE).await;
    assert_eq!(w5.seq, w1.seq);
    assert_eq!((w5.deliveries, w5.attempt), (1, 2));
    assert_eq!(w5.task, 1);
    assert_eq!(w5.name, "Flaky");
}

// ---------------------------------------------------------------------------------------
// 7. Events before start
// ---------------------------------------------------------------------------------------

/// Messages for an instance that does not exist wait for it.
pub async fn events_before_start(p: SharedProvider) {
    p.enqueue("early", &event_message("hello", r#"{"x":1}"#))
        .await
        .unwrap();
    assert_nothing_claimable(&p, "A", "the instance does not exist yet").await;
    assert!(p.instance("early").await.unwrap().is_none());
    assert!(history(&p, "early", None).await.is_empty());

    assert!(p
        .create_instance(&start_request("early", "Flow", "5"))
        .await
        .unwrap());
    let item = claim_only(&p, "A", LONG_LEASE, "early").await;
    assert_eq!(kinds(&item), vec!["Event", "Start"]);
    assert_eq!(deliveries(&item), vec![1, 1]);
    match &item.messages[0].message {
        Message::Event { name, data } => {
            assert_eq!(name, "hello");
            assert_eq!(data.get(), r#"{"x":1}"#);
        }
        other => panic!("unexpected {other:?}"),
    }
    match &item.messages[1].message {
        Message::Start { name, input, .. } => {
            assert_eq!(name, "Flow");
            assert_eq!(input.get(), "5");
        }
        other => panic!("unexpected {other:?}"),
    }
    let mut outcome = start_outcome(&item);
    outcome.events.push(Event::EventRaised {
        name: "hello".to_owned(),
        data: payload(r#"{"x":1}"#),
    });
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    assert_eq!(
        history_kinds(&history(&p, "early", None).await),
        vec!["ExecutionStarted", "EventRaised"]
    );
    assert_nothing_claimable(&p, "B", "both messages were consumed").await;
}

// ---------------------------------------------------------------------------------------
// 8. create_instance is idempotent
// ---------------------------------------------------------------------------------------

pub async fn create_instance_is_idempotent(p: SharedProvider) {
    assert!(p
        .create_instance(&start_request("dup", "Flow", "1"))
        .await
        .unwrap());
    assert!(!p
        .create_instance(&start_request("dup", "Other", "2"))
        .await
        .unwrap());
    let info = instance(&p, "dup").await;
    assert_eq!(info.name, "Flow");
    assert_eq!(info.input.as_deref(), Some("1"));
    assert_eq!(info.status, "Running");
    assert_eq!(info.execution_id, 1);

    let item = claim_only(&p, "A", LONG_LEASE, "dup").await;
    assert_eq!(kinds(&item), vec!["Start"], "one Start message only");
    match &item.messages[0].message {
        Message::Start { name, input, .. } => {
            assert_eq!(name, "Flow");
            assert_eq!(input.get(), "1");
        }
        other => panic!("unexpected {other:?}"),
    }
    p.commit_turn(turn_commit(&item, start_outcome(&item)))
        .await
        .unwrap();

    // Also once the instance runs: no new Start.
    assert!(!p
        .create_instance(&start_request("dup", "Flow", "3"))
        .await
        .unwrap());
    assert_nothing_claimable(&p, "B", "a repeated create enqueues nothing").await;
    let info = instance(&p, "dup").await;
    assert_eq!(info.input.as_deref(), Some("1"));
    assert_eq!(info.execution_id, 1);
    assert_eq!(history(&p, "dup", None).await.len(), 1);
}

// ---------------------------------------------------------------------------------------
// 9. Terminal turn
// ---------------------------------------------------------------------------------------

/// Completing sets the status and output and deletes the open work the turn lists (the
/// execution's, no other instance's with the same task numbers).
pub async fn terminal_turn_completes_and_cleans_up(p: SharedProvider) {
    let now = p.now().await.unwrap();
    let done_fire = now + 20_000;
    let keep_fire = now + 30_000;
    start_instance_with(&p, "done", "Flow", |o| {
        schedule_activity(o, 1, "Work", "1");
        schedule_timer(o, 2, done_fire);
    })
    .await;
    start_instance_with(&p, "keep", "Flow", |o| {
        schedule_activity(o, 1, "Work", "2");
        schedule_timer(o, 2, keep_fire);
    })
    .await;
    assert_eq!(p.next_due().await.unwrap(), Some(done_fire));
    let mut work = claim_work(&p, "W", LONG_LEASE).await;
    work.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    assert_eq!(
        work.iter()
            .map(|w| w.instance_id.as_str())
            .collect::<Vec<_>>(),
        vec!["done", "keep"]
    );

    p.enqueue("done", &event_message("finish", "true"))
        .await
        .unwrap();
    let item = claim_only(&p, "A", LONG_LEASE, "done").await;
    let outcome = TurnOutcome {
        events: vec![
            Event::EventRaised {
                name: "finish".to_owned(),
                data: payload("true"),
            },
            Event::ExecutionCompleted {
                output: payload(r#"{"ok":true}"#),
            },
        ],
        consumed: seqs(&item),
        terminal: Some(Terminal::Completed(payload(r#"{"ok":true}"#))),
        // A terminal turn lists the execution's open work for deletion.
        canceled_activities: vec![1],
        canceled_timers: vec![2],
        ..Default::default()
    };
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();

    let info = instance(&p, "done").await;
    assert_eq!(info.status, "Completed");
    assert_eq!(info.output.as_deref(), Some(r#"{"ok":true}"#));
    assert_eq!(info.error, None);
    assert_eq!(info.error_code, None);
    assert_eq!(info.execution_id, 1);
    assert_eq!(
        history_kinds(&history(&p, "done", None).await),
        vec![
            "ExecutionStarted",
            "ActivityScheduled",
            "TimerCreated",
            "EventRaised",
            "ExecutionCompleted"
        ]
    );
    assert_eq!(
        p.next_due().await.unwrap(),
        Some(keep_fire),
        "the completed execution's timer is deleted, the other instance's is not"
    );
    assert!(
        !p.complete_activity(&work[0], ActivityResult::Completed(payload("1")))
            .await
            .unwrap(),
        "the completed execution's worker row is deleted"
    );
    assert!(p
        .complete_activity(&work[1], ActivityResult::Completed(payload("2")))
        .await
        .unwrap());
    let other = claim_only(&p, "B", LONG_LEASE, "keep").await;
    assert_eq!(kinds(&other), vec!["ActivityCompleted"]);

    // Failing records the error.
    assert!(p
        .create_instance(&start_request("fails", "Flow", "null"))
        .await
        .unwrap());
    let item = claim_only(&p, "A", LONG_LEASE, "fails").await;
    let error = TaskError::with_code("boom", "E_BAD");
    let mut outcome = start_outcome(&item);
    outcome.events.push(Event::ExecutionFailed {
        error: error.clone(),
        by_engine: false,
    });
    outcome.terminal = Some(Terminal::Failed(error));
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    let info = instance(&p, "fails").await;
    assert_eq!(info.status, "Failed");
    assert_eq!(info.error.as_deref(), Some("boom"));
    assert_eq!(info.error_code.as_deref(), Some("E_BAD"));
    assert_eq!(info.output, None);
}

// ---------------------------------------------------------------------------------------
// 10. Continue-as-new
// ---------------------------------------------------------------------------------------

/// Continue-as-new starts execution 2 with an empty history; execution 1's history stays
/// readable and the open work the turn lists is deleted.
pub async fn continue_as_new_starts_a_new_execution(p: SharedProvider) {
    let now = p.now().await.unwrap();
    assert!(p
        .create_instance(&start_request("can", "Flow", r#"{"round":1}"#))
        .await
        .unwrap());
    let a = claim_only(&p, "A", LONG_LEASE, "can").await;
    let mut outcome = start_outcome(&a);
    schedule_activity(&mut outcome, 1, "Work", "1");
    schedule_timer(&mut outcome, 2, now + 20_000);
    p.commit_turn(turn_commit(&a, outcome)).await.unwrap();

    p.enqueue("can", &event_message("next", "1")).await.unwrap();
    let b = claim_only(&p, "A", LONG_LEASE, "can").await;
    assert_eq!(b.execution_id, 1);
    assert_eq!(b.history.len(), 3);
    let outcome = TurnOutcome {
        events: vec![
            Event::EventRaised {
                name: "next".to_owned(),
                data: payload("1"),
            },
            Event::ContinuedAsNew {
                input: payload(r#"{"round":2}"#),
                version: None,
                events: vec![],
            },
        ],
        consumed: seqs(&b),
        terminal: Some(Terminal::ContinuedAsNew),
        canceled_activities: vec![1],
        canceled_timers: vec![2],
        messages: vec![Outbound {
            instance_id: "can".to_owned(),
            message: Message::Start {
                name: "Flow".to_owned(),
                version: None,
                input: payload(r#"{"round":2}"#),
                parent: None,
                events: vec![],
                custom_status: None,
            },
        }],
        ..Default::default()
    };
    p.commit_turn(turn_commit(&b, outcome)).await.unwrap();

    let info = instance(&p, "can").await;
    assert_eq!(info.execution_id, 2);
    assert_eq!(info.status, "Running");
    assert_eq!(info.output, None);
    assert!(
        history(&p, "can", None).await.is_empty(),
        "the new execution has no history yet"
    );
    assert!(history(&p, "can", Some(2)).await.is_empty());
    let old = history(&p, "can", Some(1)).await;
    assert_eq!(event_ids(&old), vec![1, 2, 3, 4, 5]);
    assert_eq!(
        history_kinds(&old),
        vec![
            "ExecutionStarted",
            "ActivityScheduled",
            "TimerCreated",
            "EventRaised",
            "ContinuedAsNew"
        ]
    );
    assert_eq!(
        p.next_due().await.unwrap(),
        None,
        "execution 1's timer is gone"
    );
    assert!(
        claim_work(&p, "W", LONG_LEASE).await.is_empty(),
        "execution 1's activity is gone"
    );

    let c = claim_only(&p, "A", LONG_LEASE, "can").await;
    assert_eq!(c.execution_id, 2);
    assert!(c.history.is_empty());
    assert_eq!(kinds(&c), vec!["Start"]);
    match &c.messages[0].message {
        Message::Start { input, .. } => assert_eq!(input.get(), r#"{"round":2}"#),
        other => panic!("unexpected {other:?}"),
    }

    // A commit for the old execution is fenced even under the current generation.
    let mut stale = turn_commit(&c, start_outcome(&c));
    stale.execution_id = 1;
    stale.first_event_id = 6;
    assert_lease_lost(
        p.commit_turn(stale).await,
        "commit for a finished execution",
    );
    assert_eq!(history(&p, "can", Some(1)).await.len(), 5);

    p.commit_turn(turn_commit(&c, start_outcome(&c)))
        .await
        .unwrap();
    let new = history(&p, "can", None).await;
    assert_eq!(event_ids(&new), vec![1]);
    match &new[0].event {
        Event::ExecutionStarted { input, .. } => assert_eq!(input.get(), r#"{"round":2}"#),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(event_ids(&history(&p, "can", Some(2)).await), vec![1]);
    assert_eq!(history(&p, "can", Some(1)).await.len(), 5);
    assert_eq!(instance(&p, "can").await.execution_id, 2);
}

// ---------------------------------------------------------------------------------------
// 11. Cancellation
// ---------------------------------------------------------------------------------------

/// A turn that cancels race losers removes exactly their queued rows: the cancelled
/// activity's late result is refused, the other activity and timer stay; a `Cancel`
/// message for an instance is delivered like any other.
pub async fn cancellation_removes_exactly_the_cancelled_work(p: SharedProvider) {
    let far = p.now().await.unwrap() + 600_000;
    start_instance_with(&p, "racer", "Race", |o| {
        schedule_activity(o, 1, "Slow", "1");
        schedule_activity(o, 2, "Other", "2");
        schedule_timer(o, 3, far);
        schedule_timer(o, 4, far + 1);
    })
    .await;
    let mut running = claim_work(&p, "W", LONG_LEASE).await;
    running.sort_by_key(|a| a.task);
    assert_eq!(
        running.iter().map(|a| a.task).collect::<Vec<_>>(),
        vec![1, 2]
    );
    p.enqueue("racer", &event_message("go", "true"))
        .await
        .unwrap();
    let item = claim_only(&p, "O", LONG_LEASE, "racer").await;
    let outcome = TurnOutcome {
        events: vec![
            Event::TaskCanceled { task: 1 },
            Event::TaskCanceled { task: 3 },
        ],
        consumed: seqs(&item),
        canceled_activities: vec![1],
        canceled_timers: vec![3],
        ..Default::default()
    };
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    let late = ActivityResult::Completed(payload("\"late\""));
    assert!(
        !p.complete_activity(&running[0], late).await.unwrap(),
        "a cancelled activity's result is dropped"
    );
    assert!(
        p.complete_activity(&running[1], ActivityResult::Completed(payload("2")))
            .await
            .unwrap(),
        "the other activity is untouched"
    );
    assert_eq!(
        p.next_due().await.unwrap(),
        Some(far + 1),
        "only the cancelled timer is gone"
    );
    p.enqueue(
        "racer",
        &Message::Cancel {
            reason: "stop".to_owned(),
        },
    )
    .await
    .unwrap();
    let item = claim_only(&p, "O", LONG_LEASE, "racer").await;
    assert_eq!(kinds(&item), vec!["ActivityCompleted", "Cancel"]);
    match &item.messages[..] {
        [completed, cancel] => {
            assert!(
                matches!(
                    &completed.message,
                    Message::ActivityCompleted { execution_id: 1, task: 2, result }
                        if result.get() == "2"
                ),
                "{:?}",
                completed.message
            );
            assert!(
                matches!(&cancel.message, Message::Cancel { reason } if reason == "stop"),
                "{:?}",
                cancel.message
            );
        }
        other => panic!("expected two messages, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// 12. Deletion
// ---------------------------------------------------------------------------------------

/// Deleting removes the instance, its sub-orchestrations, their histories and everything
/// queued for them; a running instance needs `force`; an unknown id is reported, and
/// messages queued for it are removed.
pub async fn deletion_removes_the_tree_and_refuses_running_without_force(p: SharedProvider) {
    start_instance(&p, "bystander", "Other").await;
    let later = p.now().await.unwrap() + 600_000;
    let parent_link = ParentLink {
        instance_id: "root".to_owned(),
        execution_id: 1,
        task: 2,
    };
    start_instance_with(&p, "root", "Root", |o| {
        schedule_activity(o, 1, "Work", "1");
        schedule_timer(o, 3, later);
        o.starts.push(StartRequest {
            parent: Some(parent_link.clone()),
            ..start_request("root:1:2", "Child", "null")
        });
    })
    .await;
    assert_eq!(
        p.delete_instance("root", false).await.unwrap(),
        Deletion::Running,
        "a running instance is refused without force"
    );
    assert_eq!(instance(&p, "root").await.status, "Running");
    assert_eq!(history(&p, "root", None).await.len(), 3);
    assert_eq!(
        instance(&p, "root:1:2").await.parent_instance_id.as_deref(),
        Some("root")
    );

    match p.delete_instance("root", true).await.unwrap() {
        Deletion::Deleted(mut ids) => {
            ids.sort();
            assert_eq!(ids, vec!["root".to_owned(), "root:1:2".to_owned()]);
        }
        other => panic!("expected the tree to be deleted, got {other:?}"),
    }
    assert!(p.instance("root").await.unwrap().is_none());
    assert!(p.instance("root:1:2").await.unwrap().is_none());
    assert!(history(&p, "root", Some(1)).await.is_empty());
    assert!(
        claim_work(&p, "W", LONG_LEASE).await.is_empty(),
        "its activity is gone"
    );
    assert_eq!(p.next_due().await.unwrap(), None, "its timer is gone");
    assert_nothing_claimable(&p, "O", "the child's start message is gone").await;
    assert_eq!(
        instance(&p, "bystander").await.status,
        "Running",
        "others are untouched"
    );

    p.enqueue("ghost", &event_message("early", "1"))
        .await
        .unwrap();
    assert_eq!(
        p.delete_instance("ghost", false).await.unwrap(),
        Deletion::NotFound
    );
    assert!(p
        .create_instance(&start_request("ghost", "G", "null"))
        .await
        .unwrap());
    let item = claim_only(&p, "O", LONG_LEASE, "ghost").await;
    assert_eq!(
        kinds(&item),
        vec!["Start"],
        "the early message was removed with the id"
    );
    let mut outcome = start_outcome(&item);
    outcome.terminal = Some(Terminal::Completed(payload("1")));
    outcome.events.push(Event::ExecutionCompleted {
        output: payload("1"),
    });
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    assert_eq!(
        p.delete_instance("ghost", false).await.unwrap(),
        Deletion::Deleted(vec!["ghost".to_owned()]),
        "a finished instance needs no force"
    );
}

// ---------------------------------------------------------------------------------------
// 13. Management queries and bulk actions
// ---------------------------------------------------------------------------------------

/// Creates an instance, starts it and ends it in the same turn: Completed with `output`,
/// or Failed when `output` is `None`.
pub async fn finished_instance(
    p: &SharedProvider,
    start: StartRequest,
    output: Option<&str>,
) -> InstanceInfo {
    let id = start.instance_id.clone();
    assert!(p.create_instance(&start).await.expect("create_instance"));
    let item = claim_only(p, "setup", LONG_LEASE, &id).await;
    let mut outcome = start_outcome(&item);
    match output {
        Some(out) => {
            outcome.events.push(Event::ExecutionCompleted {
                output: payload(out),
            });
            outcome.terminal = Some(Terminal::Completed(payload(out)));
        }
        None => {
            let error = TaskError::with_code("broken", "ERR_BROKEN");
            outcome.events.push(Event::ExecutionFailed {
                error: error.clone(),
                by_engine: false,
            });
            outcome.terminal = Some(Terminal::Failed(error));
        }
    }
    p.commit_turn(turn_commit(&item, outcome))
        .await
        .expect("commit of the only turn");
    instance(p, &id).await
}

pub async fn list(p: &SharedProvider, filter: InstanceFilter) -> InstancePage {
    p.list_instances(&filter).await.expect("list_instances")
}

pub fn listed_ids(page: &InstancePage) -> Vec<String> {
    page.instances
        .iter()
        .map(|i| i.instance_id.clone())
        .collect()
}

/// Every id of a filter's result, following the cursors.
pub async fn list_all(p: &SharedProvider, filter: InstanceFilter) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = list(
            p,
            InstanceFilter {
                cursor,
                ..filter.clone()
            },
        )
        .await;
        ids.extend(listed_ids(&page));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return ids,
        }
    }
}

/// Pages of 100 over 1,000 instances give every id once, in `(created_at, instance_id)`
/// order; instances created between page reads never shift a page already read (the
/// cursor is a key, not an offset).
pub async fn list_instances_pages_stably_over_many_instances(p: SharedProvider) {
    let originals: Vec<String> = (0..1000).map(|i| format!("i-{i:04}")).collect();
    for id in &originals {
        assert!(p
            .create_instance(&start_request(id, "Bulk", "null"))
            .await
            .unwrap());
    }
    let all = InstanceFilter {
        limit: 100,
        ..Default::default()
    };
    let mut pages: Vec<(Option<PageCursor>, Vec<String>)> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<PageCursor> = None;
    let mut inserted = 0;
    loop {
        let page = list(
            &p,
            InstanceFilter {
                cursor: cursor.clone(),
                ..all.clone()
            },
        )
        .await;
        let ids = listed_ids(&page);
        pages.push((cursor.clone(), ids.clone()));
        seen.extend(ids);
        // Writers keep creating instances while the reader pages.
        for _ in 0..3 {
            let id = format!("z-{inserted:04}");
            inserted += 1;
            assert!(p
                .create_instance(&start_request(&id, "Late", "null"))
                .await
                .unwrap());
        }
        match page.next_cursor {
            Some(c) => {
                assert_eq!(
                    Some(c.instance_id.as_str()),
                    page.instances.last().map(|i| i.instance_id.as_str()),
                    "the cursor is the page's last row"
                );
                cursor = Some(c);
            }
            None => break,
        }
    }
    // Ten full pages of originals (3 late ids created after each), then the 30 late ids
    // that existed when the eleventh page was read; 3 more were created after it.
    assert_eq!(
        pages.iter().map(|(_, ids)| ids.len()).collect::<Vec<_>>(),
        std::iter::repeat_n(100, 10)
            .chain([30])
            .collect::<Vec<usize>>(),
        "page sizes"
    );
    assert_eq!(inserted, 33);
    assert_eq!(seen.len(), 1030);
    assert_eq!(
        &seen[..1000],
        &originals[..],
        "every original id exactly once, in creation order"
    );
    let late = &seen[1000..];
    let unique: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no id twice");
    assert_eq!(
        late.to_vec(),
        (0..30).map(|i| format!("z-{i:04}")).collect::<Vec<_>>(),
        "the late ids, in creation order"
    );
    // Re-reading any page from its cursor gives the very same rows.
    for (i, (cursor, ids)) in pages.iter().enumerate().take(10) {
        let again = list(
            &p,
            InstanceFilter {
                cursor: cursor.clone(),
                ..all.clone()
            },
        )
        .await;
        assert_eq!(&listed_ids(&again), ids, "page {i} changed");
    }
    let total = list_all(&p, all.clone()).await;
    assert_eq!(total.len(), 1000 + inserted);
    let order: Vec<(i64, String)> = {
        let mut rows = Vec::new();
        let mut cursor = None;
        loop {
            let page = list(
                &p,
                InstanceFilter {
                    cursor,
                    ..all.clone()
                },
            )
            .await;
            rows.extend(
                page.instances
                    .iter()
                    .map(|i| (i.created_at, i.instance_id.clone())),
            );
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        rows
    };
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "strictly ordered by (created_at, instance_id)"
    );
    // A limit of 1 walks one row at a time.
    let first = list(
        &p,
        InstanceFilter {
            limit: 1,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(listed_ids(&first), vec!["i-0000".to_owned()]);
    assert_eq!(
        first.next_cursor,
        Some(PageCursor {
            created_at: first.instances[0].created_at,
            instance_id: "i-0000".to_owned(),
        })
    );
}

/// Each filter narrows the result: status, name, creation window, parent.
pub async fn list_instances_filters(p: SharedProvider) {
    let done = finished_instance(
        &p,
        start_request("f-done", "Alpha", r#"{"n":1}"#),
        Some("1"),
    )
    .await;
    assert_eq!(done.status, "Completed");
    advance(&p, 5).await;
    let t1 = p.now().await.unwrap();
    advance(&p, 5).await;
    finished_instance(&p, start_request("f-failed", "Beta", "null"), None).await;
    start_instance(&p, "f-run", "Alpha").await;
    advance(&p, 5).await;
    let t2 = p.now().await.unwrap();
    advance(&p, 5).await;
    let link = |task| ParentLink {
        instance_id: "f-run".to_owned(),
        execution_id: 1,
        task,
    };
    for (id, task) in [("f-run:1:1", 1), ("f-run:1:2", 2)] {
        assert!(p
            .create_instance(&StartRequest {
                parent: Some(link(task)),
                ..start_request(id, "Kid", "null")
            })
            .await
            .unwrap());
    }
    let by = |f: InstanceFilter| list_all(&p, InstanceFilter { limit: 2, ..f });
    let status = |s: &str| InstanceFilter {
        status: Some(s.to_owned()),
        ..Default::default()
    };
    assert_eq!(by(status("Completed")).await, vec!["f-done"]);
    assert_eq!(by(status("Failed")).await, vec!["f-failed"]);
    assert_eq!(
        by(status("Running")).await,
        vec!["f-run", "f-run:1:1", "f-run:1:2"]
    );
    assert_eq!(
        by(InstanceFilter {
            name: Some("Alpha".to_owned()),
            ..Default::default()
        })
        .await,
        vec!["f-done", "f-run"]
    );
    assert_eq!(
        by(InstanceFilter {
            created_after: Some(t1),
            created_before: Some(t2),
            ..Default::default()
        })
        .await,
        vec!["f-failed", "f-run"]
    );
    assert_eq!(
        by(InstanceFilter {
            created_after: Some(t2),
            ..Default::default()
        })
        .await,
        vec!["f-run:1:1", "f-run:1:2"]
    );
    assert_eq!(
        by(InstanceFilter {
            created_before: Some(t1),
            ..Default::default()
        })
        .await,
        vec!["f-done"]
    );
    assert_eq!(
        by(InstanceFilter {
            parent_id: Some("f-run".to_owned()),
            ..Default::default()
        })
        .await,
        vec!["f-run:1:1", "f-run:1:2"]
    );
    assert_eq!(
        by(InstanceFilter {
            status: Some("Running".to_owned()),
            name: Some("Alpha".to_owned()),
            ..Default::default()
        })
        .await,
        vec!["f-run"]
    );
    assert!(by(status("Nope")).await.is_empty());
    // The rows carry the instance's fields.
    let page = list(&p, status("Completed")).await;
    let info = &page.instances[0];
    assert_eq!(info.name, "Alpha");
    assert_eq!(info.input.as_deref(), Some(r#"{"n":1}"#));
    assert_eq!(info.output.as_deref(), Some("1"));
    assert_eq!(info.created_at, done.created_at);
    assert!(page.next_cursor.is_none());
    let kid = &list(
        &p,
        InstanceFilter {
            parent_id: Some("f-run".to_owned()),
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .instances[0];
    assert_eq!(kid.parent_instance_id.as_deref(), Some("f-run"));
}

/// Instance counts by status, and queue rows by state: visible, delayed (timers, retries),
/// running (leased).
pub async fn metrics_and_queue_depths(p: SharedProvider) {
    assert_eq!(p.system_metrics().await.unwrap(), SystemMetrics::default());
    assert_eq!(p.queue_depths().await.unwrap(), QueueDepths::default());
    let far = p.now().await.unwrap() + 600_000;
    start_instance_with(&p, "m-run", "Run", |o| {
        schedule_activity(o, 1, "A", "1");
        schedule_activity(o, 2, "B", "2");
        schedule_activity(o, 3, "C", "3");
        schedule_timer(o, 4, far);
    })
    .await;
    finished_instance(&p, start_request("m-done", "Done", "null"), Some("1")).await;
    finished_instance(&p, start_request("m-done2", "Done", "null"), Some("2")).await;
    finished_instance(&p, start_request("m-failed", "Fail", "null"), None).await;
    p.create_instance(&start_request("m-new", "New", "null"))
        .await
        .unwrap();
    p.enqueue("m-new", &event_message("e", "1")).await.unwrap();
    assert_eq!(
        p.system_metrics().await.unwrap(),
        SystemMetrics {
            total: 5,
            running: 2,
            completed: 2,
            failed: 1,
        }
    );
    assert_eq!(
        p.queue_depths().await.unwrap(),
        QueueDepths {
            orchestrator_visible: 2,
            orchestrator_delayed: 1,
            worker_visible: 3,
            worker_running: 0,
            worker_delayed: 0,
        }
    );
    let mut work = p.claim_activities("W", LONG_LEASE, 2).await.unwrap();
    assert_eq!(work.len(), 2);
    let retried = work.pop().unwrap();
    assert!(p.retry_activity(&retried, far, 2).await.unwrap());
    assert_eq!(
        p.queue_depths().await.unwrap(),
        QueueDepths {
            orchestrator_visible: 2,
            orchestrator_delayed: 1,
            worker_visible: 1,
            worker_running: 1,
            worker_delayed: 1,
        }
    );
}

/// Bulk deletion picks finished instances only (by ids, status, completion time, limit),
/// takes their sub-orchestrations along and never touches a running instance.
pub async fn bulk_delete_removes_only_finished_instances(p: SharedProvider) {
    start_instance(&p, "d-run", "Run").await;
    finished_instance(&p, start_request("d-a", "A", "null"), Some("1")).await;
    finished_instance(&p, start_request("d-b", "B", "null"), Some("1")).await;
    advance(&p, 5).await;
    let cut = p.now().await.unwrap();
    advance(&p, 5).await;
    finished_instance(&p, start_request("d-c", "C", "null"), Some("1")).await;
    finished_instance(&p, start_request("d-f", "F", "null"), None).await;
    // A finished parent whose child still runs: the child goes with it.
    finished_instance(&p, start_request("d-parent", "P", "null"), Some("1")).await;
    assert!(p
        .create_instance(&StartRequest {
            parent: Some(ParentLink {
                instance_id: "d-parent".to_owned(),
                execution_id: 1,
                task: 1,
            }),
            ..start_request("d-parent:1:1", "Kid", "null")
        })
        .await
        .unwrap());

    let deleted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    // By ids: the running one and an unknown one are skipped.
    let ids = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        deleted(
            p.delete_instances(&DeleteFilter {
                ids: ids(&["d-a", "d-run", "d-unknown"]),
                ..Default::default()
            })
            .await
            .unwrap()
        ),
        vec!["d-a"]
    );
    assert!(p.instance("d-a").await.unwrap().is_none());
    assert_eq!(instance(&p, "d-run").await.status, "Running");
    // By status.
    assert_eq!(
        p.delete_instances(&DeleteFilter {
            status: Some("Failed".to_owned()),
            ..Default::default()
        })
        .await
        .unwrap(),
        vec!["d-f"]
    );
    // By completion time.
    assert_eq!(
        p.delete_instances(&DeleteFilter {
            completed_before: Some(cut),
            ..Default::default()
        })
        .await
        .unwrap(),
        vec!["d-b"]
    );
    // Limit: oldest finish first; the parent takes its running child along.
    assert_eq!(
        p.delete_instances(&DeleteFilter {
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap(),
        vec!["d-c"]
    );
    assert_eq!(
        deleted(p.delete_instances(&DeleteFilter::default()).await.unwrap()),
        vec!["d-parent", "d-parent:1:1"]
    );
    assert!(p.instance("d-parent:1:1").await.unwrap().is_none());
    assert!(history(&p, "d-parent", Some(1)).await.is_empty());
    assert_nothing_claimable(&p, "O", "the child's start message is gone").await;
    assert!(p
        .delete_instances(&DeleteFilter::default())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        listed_ids(
            &list(
                &p,
                InstanceFilter {
                    limit: 10,
                    ..Default::default()
                }
            )
            .await
        ),
        vec!["d-run"]
    );
}

/// One continue-as-new turn of the claimed execution, then the first turn of the next one.
async fn continue_as_new(p: &SharedProvider, id: &str) {
    p.enqueue(id, &event_message("next", "1")).await.unwrap();
    let item = claim_only(p, "A", LONG_LEASE, id).await;
    let outcome = TurnOutcome {
        events: vec![
            Event::EventRaised {
                name: "next".to_owned(),
                data: payload("1"),
            },
            Event::ContinuedAsNew {
                input: payload("null"),
                version: None,
                events: vec![],
            },
        ],
        consumed: seqs(&item),
        terminal: Some(Terminal::ContinuedAsNew),
        messages: vec![Outbound {
            instance_id: id.to_owned(),
            message: Message::Start {
                name: "Loop".to_owned(),
                version: None,
                input: payload("null"),
                parent: None,
                events: vec![],
                custom_status: None,
            },
        }],
        ..Default::default()
    };
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    let item = claim_only(p, "A", LONG_LEASE, id).await;
    p.commit_turn(turn_commit(&item, start_outcome(&item)))
        .await
        .unwrap();
}

/// Executions are listed with their event counts; pruning removes old executions' history
/// (all but the last `keep_last`, those finished before a time), never the current one.
pub async fn prune_executions_keeps_the_current_execution(p: SharedProvider) {
    start_instance(&p, "loop", "Loop").await;
    for _ in 0..3 {
        advance(&p, 5).await;
        continue_as_new(&p, "loop").await;
    }
    let executions = p.list_executions("loop").await.unwrap();
    assert_eq!(
        executions
            .iter()
            .map(|e| e.execution_id)
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        executions.iter().map(|e| e.event_count).collect::<Vec<_>>(),
        vec![3, 3, 3, 1]
    );
    for e in &executions {
        assert!(e.first_event_at.unwrap() <= e.last_event_at.unwrap());
    }
    assert!(p.list_executions("nobody").await.unwrap().is_empty());
    let end_of_2 = executions[1].last_event_at.unwrap();

    assert_eq!(
        p.prune_executions("loop", None, Some(executions[0].first_event_at.unwrap()))
            .await
            .unwrap(),
        0,
        "nothing finished before the first event"
    );
    assert_eq!(
        p.prune_executions("loop", Some(3), Some(end_of_2 + 1))
            .await
            .unwrap(),
        1,
        "execution 1 only: 2 is among the last 3"
    );
    assert!(history(&p, "loop", Some(1)).await.is_empty());
    assert_eq!(history(&p, "loop", Some(2)).await.len(), 3);
    assert_eq!(
        p.prune_executions("loop", Some(2), None).await.unwrap(),
        1,
        "execution 2; 3 and 4 are the last 2"
    );
    assert_eq!(history(&p, "loop", Some(3)).await.len(), 3);
    assert_eq!(p.prune_executions("loop", None, None).await.unwrap(), 1);
    assert_eq!(p.prune_executions("loop", Some(0), None).await.unwrap(), 0);
    let left = p.list_executions("loop").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].execution_id, 4);
    assert_eq!(
        history(&p, "loop", None).await.len(),
        1,
        "the current one stays"
    );
    assert_eq!(p.prune_executions("nobody", None, None).await.unwrap(), 0);

    // The current execution counts even before it has history.
    p.enqueue("loop", &event_message("next", "1"))
        .await
        .unwrap();
    let item = claim_only(&p, "A", LONG_LEASE, "loop").await;
    let outcome = TurnOutcome {
        events: vec![Event::ContinuedAsNew {
            input: payload("null"),
            version: None,
            events: vec![],
        }],
        consumed: seqs(&item),
        terminal: Some(Terminal::ContinuedAsNew),
        ..Default::default()
    };
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    let last = p.list_executions("loop").await.unwrap();
    assert_eq!(
        last.iter()
            .map(|e| (e.execution_id, e.event_count))
            .collect::<Vec<_>>(),
        vec![(4, 2), (5, 0)]
    );
    assert_eq!(last[1].first_event_at, None);
}

// ---------------------------------------------------------------------------------------
// Rewind (retryInstance)
// ---------------------------------------------------------------------------------------

/// A failed instance is rewound in one step: the failure leaves its history, the failed
/// activity is queued again (the succeeded one is not), its timer is queued again for its
/// due time, the custom status goes back, and a second rewind of the same plan is refused.
pub async fn rewind_puts_a_failed_instance_back_to_work(p: SharedProvider) {
    let fire_at = p.now().await.unwrap() + 20_000;
    start_instance_with(&p, "r", "Flow", |o| {
        schedule_activity(o, 1, "A", "1");
        schedule_activity(o, 2, "B", "2");
        schedule_timer(o, 3, fire_at);
    })
    .await;
    let mut work = claim_work(&p, "W", LONG_LEASE).await;
    work.sort_by_key(|w| w.task);
    assert!(p
        .complete_activity(&work[0], ActivityResult::Completed(payload("10")))
        .await
        .unwrap());
    let item = claim_only(&p, "A", LONG_LEASE, "r").await;
    let outcome = TurnOutcome {
        events: vec![
            Event::ActivityCompleted {
                task: 1,
                result: payload("10"),
            },
            Event::CustomStatusSet {
                value: payload(r#""halfway""#),
            },
        ],
        consumed: seqs(&item),
        custom_status: Some(payload(r#""halfway""#)),
        ..Default::default()
    };
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    assert!(p
        .complete_activity(&work[1], ActivityResult::Failed(TaskError::new("B broke")))
        .await
        .unwrap());
    let item = claim_only(&p, "A", LONG_LEASE, "r").await;
    let error = TaskError::new("B broke");
    let outcome = TurnOutcome {
        events: vec![
            Event::ActivityFailed {
                task: 2,
                error: error.clone(),
            },
            Event::CustomStatusSet {
                value: payload(r#""failing""#),
            },
            Event::ExecutionFailed {
                error: error.clone(),
                by_engine: false,
            },
        ],
        consumed: seqs(&item),
        terminal: Some(Terminal::Failed(error)),
        custom_status: Some(payload(r#""failing""#)),
        canceled_timers: vec![3],
        ..Default::default()
    };
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    assert_eq!(instance(&p, "r").await.status, "Failed");
    assert_eq!(
        p.next_due().await.unwrap(),
        None,
        "the timer went with the failure"
    );

    let failed_history = history(&p, "r", None).await;
    let plan = plan_rewind(1, &failed_history).expect("a plan");
    // A sub-orchestration result queued while the instance was failed is withdrawn (the
    // retry re-delivers results from each child's state).
    p.enqueue(
        "r",
        &Message::ChildFailed {
            execution_id: 1,
            task: 9,
            error: TaskError::new("stale"),
        },
    )
    .await
    .unwrap();
    let updated_at = instance(&p, "r").await.updated_at;
    assert!(
        !p.rewind_instance("r", &plan, updated_at - 1).await.unwrap(),
        "a plan made from an older instance row is refused"
    );
    assert_eq!(instance(&p, "r").await.status, "Failed");
    assert!(p.rewind_instance("r", &plan, updated_at).await.unwrap());

    let info = instance(&p, "r").await;
    assert_eq!(info.status, "Running");
    assert_eq!(
        (info.error, info.error_code, info.output),
        (None, None, None)
    );
    assert_eq!(info.custom_status.as_deref(), Some(r#""halfway""#));
    assert_eq!(info.custom_status_version, 3);
    assert_eq!(
        history_kinds(&history(&p, "r", None).await),
        vec![
            "ExecutionStarted",
            "ActivityScheduled",
            "ActivityScheduled",
            "TimerCreated",
            "ActivityCompleted",
            "CustomStatusSet"
        ]
    );
    let tail = p.history_after("r", 1, 4).await.unwrap();
    assert_eq!(event_ids(&tail), vec![5, 6], "history after an event id");
    assert!(p.history_after("r", 1, 6).await.unwrap().is_empty());
    assert!(p.history_after("r", 2, 0).await.unwrap().is_empty());
    let again = claim_one_activity(&p, "W", LONG_LEASE).await;
    assert_eq!(
        (again.task, again.name.as_str(), again.attempt),
        (2, "B", 1)
    );
    let item = claim_only(&p, "A", LONG_LEASE, "r").await;
    assert_eq!(kinds(&item), vec!["Retry"]);
    assert_eq!(p.next_due().await.unwrap(), Some(fire_at));

    let updated_at = instance(&p, "r").await.updated_at;
    assert!(
        !p.rewind_instance("r", &plan, updated_at).await.unwrap(),
        "a running instance is not rewound again"
    );
    assert!(!p
        .rewind_instance("nobody", &plan, updated_at)
        .await
        .unwrap());
}

// ---------------------------------------------------------------------------------------
// Batched activity outcomes
// ---------------------------------------------------------------------------------------

/// `complete_activities` records a batch in order, each outcome fenced by its own row's
/// generation: a row whose lease was taken over, or that was removed, records nothing.
pub async fn batched_activity_outcomes_are_fenced_one_by_one(p: SharedProvider) {
    start_instance_with(&p, "b", "Flow", |o| {
        schedule_activity(o, 1, "One", "1");
        schedule_activity(o, 2, "Two", "2");
        schedule_activity(o, 3, "Three", "3");
    })
    .await;
    let mut work = claim_work(&p, "W", 200).await;
    work.sort_by_key(|w| w.task);
    assert_eq!(work.len(), 3);
    // Task 2's lease expires and another worker takes it: the first claim is stale.
    let keep = [&work[0], &work[2]].map(|w| Lease::Activity(w.seq, w.generation));
    assert!(p.renew_leases(&keep, LONG_LEASE).await.unwrap().is_empty());
    advance(&p, 350).await;
    let retaken = claim_work(&p, "V", LONG_LEASE).await;
    assert_eq!(
        retaken.iter().map(|w| w.task).collect::<Vec<_>>(),
        vec![2],
        "only task 2 is claimed again"
    );
    let recorded = p
        .complete_activities(vec![
            (
                work[2].clone(),
                ActivityResult::Failed(TaskError::new("three broke")),
            ),
            (
                work[1].clone(),
                ActivityResult::Completed(payload("\"stale\"")),
            ),
            (work[0].clone(), ActivityResult::Completed(payload("10"))),
        ])
        .await
        .unwrap();
    assert_eq!(recorded, vec![true, false, true]);
    let item = claim_only(&p, "A", LONG_LEASE, "b").await;
    assert_eq!(
        kinds(&item),
        vec!["ActivityFailed", "ActivityCompleted"],
        "in the batch's order"
    );
    let tasks: Vec<u32> = item
        .messages
        .iter()
        .map(|m| match &m.message {
            Message::ActivityFailed { task, .. } | Message::ActivityCompleted { task, .. } => *task,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(tasks, vec![3, 1]);
    assert!(
        p.complete_activities(vec![(
            retaken[0].clone(),
            ActivityResult::Completed(payload("2"))
        )])
        .await
        .unwrap()[0]
    );
    assert!(p.complete_activities(vec![]).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// Activities claimed by the commit that schedules them
// ---------------------------------------------------------------------------------------

/// A commit with a direct claim returns its first activities already leased (generation 1,
/// first delivery); no other claim returns them while the lease holds; the others are
/// queued as usual; results recorded under the returned items are accepted; a commit that
/// loses its lease claims nothing.
pub async fn a_commit_claims_its_first_activities_for_its_runtime(p: SharedProvider) {
    assert!(p
        .create_instance(&start_request("d", "Flow", "null"))
        .await
        .unwrap());
    let item = claim_only(&p, "A", LONG_LEASE, "d").await;
    let mut outcome = start_outcome(&item);
    schedule_activity(&mut outcome, 1, "One", "1");
    schedule_activity(&mut outcome, 2, "Two", "2");
    schedule_activity(&mut outcome, 3, "Three", "3");
    let commit = TurnCommit {
        claim: Some(DirectClaim {
            owner: "A".to_owned(),
            lease_ms: 300,
            count: 2,
        }),
        ..turn_commit(&item, outcome)
    };
    let claimed = p.commit_turn(commit).await.unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|w| (
                w.task,
                w.name.as_str(),
                w.input.as_str(),
                w.attempt,
                w.deliveries,
                w.generation
            ))
            .collect::<Vec<_>>(),
        vec![(1, "One", "1", 1, 1, 1), (2, "Two", "2", 1, 1, 1)]
    );
    assert!(claimed
        .iter()
        .all(|w| w.instance_id == "d" && w.execution_id == 1));
    let others = claim_work(&p, "B", LONG_LEASE).await;
    assert_eq!(others.iter().map(|w| w.task).collect::<Vec<_>>(), vec![3]);
    assert!(p
        .complete_activity(&claimed[0], ActivityResult::Completed(payload("10")))
        .await
        .unwrap());
    // Task 2's direct lease runs out: another worker may take it, and the first one's
    // result is then refused.
    advance(&p, 450).await;
    let retaken = claim_work(&p, "C", LONG_LEASE).await;
    assert_eq!(
        retaken
            .iter()
            .map(|w| (w.task, w.deliveries))
            .collect::<Vec<_>>(),
        vec![(2, 2)]
    );
    assert!(!p
        .complete_activity(&claimed[1], ActivityResult::Completed(payload("20")))
        .await
        .unwrap());

    // (Its result waits for "d"; hold "d" so only "e" is claimable below.)
    let _held = claim_only(&p, "Z", LONG_LEASE, "d").await;

    // A stale commit claims nothing and writes nothing.
    assert!(p
        .create_instance(&start_request("e", "Flow", "null"))
        .await
        .unwrap());
    let stale = claim_only(&p, "A", 200, "e").await;
    advance(&p, 350).await;
    let _fresh = claim_only(&p, "B", LONG_LEASE, "e").await;
    let mut outcome = start_outcome(&stale);
    schedule_activity(&mut outcome, 1, "One", "1");
    let commit = TurnCommit {
        claim: Some(DirectClaim {
            owner: "A".to_owned(),
            lease_ms: LONG_LEASE,
            count: 1,
        }),
        ..turn_commit(&stale, outcome)
    };
    assert_lease_lost(
        p.commit_turn(commit).await,
        "a stale commit with a direct claim",
    );
    assert!(claim_work(&p, "W", LONG_LEASE).await.is_empty());
}

// ---------------------------------------------------------------------------------------
// Completions that claim the instances they wake
// ---------------------------------------------------------------------------------------

/// `complete_activities_and_claim` records every outcome and claims at most `max` of the
/// woken instances (a backend may claim none) with their messages and histories, leased to
/// the owner; the rest stay claimable. Returns how many it claimed.
pub async fn completions_may_claim_the_instances_they_wake(p: SharedProvider) -> usize {
    for id in ["x", "y"] {
        start_instance_with(&p, id, "Flow", |o| schedule_activity(o, 1, "Work", "1")).await;
    }
    let work = claim_work(&p, "W", LONG_LEASE).await;
    assert_eq!(work.len(), 2);
    let outcomes = work
        .iter()
        .map(|w| (w.clone(), ActivityResult::Completed(payload("7"))))
        .collect();
    let room = OrchestrationClaim {
        owner: "R".to_owned(),
        lease_ms: LONG_LEASE,
        max: 1,
    };
    let (recorded, claimed) = p
        .complete_activities_and_claim(outcomes, &room)
        .await
        .unwrap();
    assert_eq!(recorded, vec![true, true]);
    assert!(claimed.len() <= 1, "at most max instances are claimed");
    for item in &claimed {
        assert!(["x", "y"].contains(&item.instance_id.as_str()));
        assert_eq!(kinds(item), vec!["ActivityCompleted"]);
        assert_eq!(deliveries(item), vec![1]);
        assert_eq!(
            history_kinds(&item.history),
            vec!["ExecutionStarted", "ActivityScheduled"]
        );
    }
    // The others are left for a dispatcher; the claimed one is leased.
    let rest = claim(&p, "D", LONG_LEASE).await;
    assert_eq!(rest.len(), 2 - claimed.len());
    for item in &rest {
        assert!(claimed.iter().all(|c| c.instance_id != item.instance_id));
    }
    // With no room, nothing is claimed and nothing is lost.
    start_instance_with(&p, "z", "Flow", |o| schedule_activity(o, 1, "Work", "1")).await;
    let work = claim_work(&p, "W", LONG_LEASE).await;
    let none = OrchestrationClaim { max: 0, ..room };
    let (recorded, claimed_none) = p
        .complete_activities_and_claim(
            vec![(work[0].clone(), ActivityResult::Completed(payload("8")))],
            &none,
        )
        .await
        .unwrap();
    assert_eq!((recorded, claimed_none.len()), (vec![true], 0));
    assert_eq!(claim_only(&p, "D", LONG_LEASE, "z").await.messages.len(), 1);
    claimed.len()
}

// ---------------------------------------------------------------------------------------
// Watching across a rewind
// ---------------------------------------------------------------------------------------

/// Lifecycle event types from a watch step's JSON events.
fn watched_types(step: &reprise::store::watch::WatchStep) -> Vec<String> {
    step.events
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(e).expect("an event is JSON");
            v["type"].as_str().expect("a type").to_owned()
        })
        .collect()
}

/// A watcher whose cursor is past the point a retry rewinds to (it saw a result that the
/// rewind took out to deliver again) notices and goes on from the `ExecutionRetried` event.
pub async fn a_watch_follows_a_history_rewound_under_it(p: SharedProvider) {
    use reprise::store::watch::{watch_step, WatchCursor};
    start_instance_with(&p, "w", "Flow", |o| {
        schedule_activity(o, 1, "A", "1");
        schedule_activity(o, 2, "B", "2");
    })
    .await;
    let mut work = claim_work(&p, "W", LONG_LEASE).await;
    work.sort_by_key(|w| w.task);
    // A's result arrives in a turn of its own that decides nothing.
    assert!(p
        .complete_activity(&work[0], ActivityResult::Completed(payload("1")))
        .await
        .unwrap());
    let item = claim_only(&p, "A", LONG_LEASE, "w").await;
    let outcome = TurnOutcome {
        events: vec![Event::ActivityCompleted {
            task: 1,
            result: payload("1"),
        }],
        consumed: seqs(&item),
        ..Default::default()
    };
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();

    let mut cursor = WatchCursor::default();
    let step = watch_step(p.as_ref(), "w", &mut cursor).await.unwrap();
    assert_eq!(
        watched_types(&step),
        vec![
            "instanceStarted",
            "activityScheduled",
            "activityScheduled",
            "activityCompleted",
            "activityStarted"
        ],
        "B is running under W's lease"
    );
    assert_eq!(cursor.event_id, 4);

    // B fails the execution in the next turn; before the watcher looks again, the instance is
    // retried (A's result, event 4, is taken out to be delivered again) and runs on.
    advance(&p, 5).await;
    assert!(p
        .complete_activity(&work[1], ActivityResult::Failed(TaskError::new("B broke")))
        .await
        .unwrap());
    let item = claim_only(&p, "A", LONG_LEASE, "w").await;
    let error = TaskError::new("B broke");
    let outcome = TurnOutcome {
        events: vec![
            Event::ActivityFailed {
                task: 2,
                error: error.clone(),
            },
            Event::ExecutionFailed {
                error: error.clone(),
                by_engine: false,
            },
        ],
        consumed: seqs(&item),
        terminal: Some(Terminal::Failed(error)),
        ..Default::default()
    };
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    let plan = plan_rewind(1, &history(&p, "w", None).await).unwrap();
    assert_eq!(plan.truncate_from, 4, "A's result goes back to the queue");
    let updated_at = instance(&p, "w").await.updated_at;
    assert!(p.rewind_instance("w", &plan, updated_at).await.unwrap());
    advance(&p, 5).await;
    let mut work = claim_work(&p, "W", LONG_LEASE).await;
    assert_eq!(
        work.iter()
            .map(|w| (w.task, w.name.as_str()))
            .collect::<Vec<_>>(),
        vec![(2, "B")],
        "the rewind queues B again, not A"
    );
    let item = claim_only(&p, "A", LONG_LEASE, "w").await;
    assert_eq!(kinds(&item), vec!["Retry", "ActivityCompleted"]);
    let retried = match &item.messages[0].message {
        Message::Retry { error, removed } => Event::ExecutionRetried {
            error: error.clone(),
            removed: *removed,
        },
        other => panic!("unexpected {other:?}"),
    };
    let outcome = TurnOutcome {
        events: vec![
            retried,
            Event::ActivityCompleted {
                task: 1,
                result: payload("1"),
            },
        ],
        consumed: seqs(&item),
        ..Default::default()
    };
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    assert!(p
        .complete_activity(&work.remove(0), ActivityResult::Completed(payload("2")))
        .await
        .unwrap());

    let step = watch_step(p.as_ref(), "w", &mut cursor).await.unwrap();
    assert_eq!(
        watched_types(&step),
        vec!["instanceRetried", "activityCompleted"],
        "the watch goes on from the retry, not from its stale event id"
    );
    assert_eq!(cursor.event_id, 5);
}
