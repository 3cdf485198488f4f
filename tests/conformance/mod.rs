//! Provider conformance suite.
//!
//! Every case is a `pub async fn` taking a fresh, empty provider and talking to it only
//! through the `Provider` trait, so each backend runs the very same cases. The cases live in
//! one file per contract (`commit`, `fencing`, `leases`, ...); this file holds the helpers
//! they share. A backend's test file declares `#[macro_use] mod conformance;` and generates
//! its `#[tokio::test]` wrappers with [`conformance_suite!`] (every case) or
//! [`conformance_tests!`] (a chosen list, each case as `contract::case`).
//!
//! Timing-based cases use leases and timers of a few hundred milliseconds and leave wide
//! margins on both sides of every deadline.

pub mod claims;
pub mod commit;
pub mod deletion;
pub mod direct_claims;
pub mod fencing;
pub mod jobs;
pub mod kv;
pub mod leases;
pub mod lifecycle;
pub mod management;
pub mod poison;
pub mod queues;
pub mod rewind;
pub mod routing;
pub mod timers;

use reprise::engine::{
    payload_from_str, ActivityRequest, Event, HistoryRow, Message, Payload, RetryPolicy,
    StartRequest, TaskError, Terminal, TimerRequest, TurnOutcome, FORMAT_VERSION,
};
use std::sync::Arc;

use reprise::store::{
    ActivityItem, InstanceFilter, InstanceInfo, InstancePage, KnownHistories, OrchestrationClaim,
    OrchestrationItem, Routing, SharedProvider, StoreError, TagFilter, TurnCommit,
    ORCHESTRATION_KIND,
};

/// Generates one `#[tokio::test]` per case name. `$factory` is an async fn returning
/// `(SharedProvider, guard)`: the guard (a temp dir, a schema to drop, ...) lives as long
/// as the test.
macro_rules! conformance_tests {
    ($factory:path => $($contract:ident :: $case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (provider, _guard) = $factory().await;
                $crate::conformance::$contract::$case(provider).await;
            }
        )+
    };
}

/// Every conformance case, as `#[tokio::test]`s on providers from `$factory`.
macro_rules! conformance_suite {
    ($factory:path) => {
        conformance_tests!($factory =>
            commit::atomic_turn_commit,
            commit::a_turn_of_thousands_of_rows_commits,
            fencing::fencing_of_stale_generation,
            fencing::a_stale_commit_consumes_and_deletes_nothing,
            leases::lease_expiry_and_renewal,
            queues::per_instance_message_order,
            timers::timer_visibility,
            poison::poison_after_bounded_deliveries,
            queues::events_before_start,
            queues::a_dropped_event_changes_nothing,
            queues::events_for_unknown_instances_expire,
            lifecycle::create_instance_is_idempotent,
            lifecycle::create_instances_in_one_batch,
            lifecycle::concurrent_starts_create_each_id_once,
            lifecycle::terminal_turn_completes_and_cleans_up,
            lifecycle::continue_as_new_starts_a_new_execution,
            lifecycle::cancellation_removes_exactly_the_cancelled_work,
            deletion::deletion_removes_the_tree_and_refuses_running_without_force,
            management::list_instances_pages_stably_over_many_instances,
            management::list_instances_filters,
            management::metrics_and_queue_depths,
            deletion::bulk_delete_removes_only_finished_instances,
            management::prune_executions_keeps_the_current_execution,
            rewind::rewind_puts_a_failed_instance_back_to_work,
            fencing::batched_activity_outcomes_are_fenced_one_by_one,
            fencing::turns_committed_together_are_fenced_one_by_one,
            fencing::a_refused_turn_fails_alone_among_turns_committed_together,
            direct_claims::a_commit_claims_its_first_activities_for_its_runtime,
            direct_claims::completions_may_claim_the_instances_they_wake,
            rewind::a_watch_follows_a_history_rewound_under_it,
            claims::a_claim_reads_history_after_what_the_claimer_knows,
            kv::kv_writes_commit_with_their_turn,
            kv::activity_rows_carry_session_tag_and_orchestration,
            kv::activity_claims_follow_the_tag_filter,
            routing::claims_take_only_the_claimers_names,
            routing::a_fixed_version_routes_to_claimers_of_that_version,
            routing::unserved_work_and_last_registered_follow_the_registry_of_names,
            routing::a_session_belongs_to_one_claimer_at_a_time,
            routing::max_sessions_limits_new_sessions,
            routing::a_dead_owners_session_is_free,
            jobs::job_writes_are_fenced_by_the_attempt,
            jobs::emits_complete_waiting_steps_and_keep_their_payload,
            jobs::a_concurrency_key_has_one_holder_at_a_time,
            jobs::a_concurrency_key_follows_the_trigger_order,
            jobs::reset_forgets_only_failed_steps,
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

/// A claimer that has every orchestration of the store's instances and every name with
/// queued work (and takes every tag): what the cases claim with, unless they test routing.
pub async fn everything(p: &SharedProvider) -> Arc<Routing> {
    // Names no runtime had within a span longer than the clock's: every queued name.
    let work = p.unserved_work(-(1 << 50)).await.expect("unserved_work");
    let page = p
        .list_instances(&InstanceFilter {
            limit: 10_000,
            ..InstanceFilter::default()
        })
        .await
        .expect("list_instances");
    let mut routing = Routing {
        tags: TagFilter::Any,
        ..Routing::default()
    };
    routing.sessions.owner = "conformance".to_owned();
    let mut orchestrations: Vec<String> = page.instances.into_iter().map(|i| i.name).collect();
    for n in work.names {
        if n.kind == ORCHESTRATION_KIND {
            orchestrations.push(n.name);
        } else {
            routing.activities.push(n.name);
        }
    }
    orchestrations.sort();
    orchestrations.dedup();
    routing.orchestrations = orchestrations
        .into_iter()
        .map(|n| (n, Vec::new()))
        .collect();
    Arc::new(routing)
}

/// An orchestration claim for `owner` of up to `max` instances, with [`everything`].
pub async fn claim_for(
    p: &SharedProvider,
    owner: &str,
    lease_ms: i64,
    max: usize,
    known: KnownHistories,
) -> OrchestrationClaim {
    OrchestrationClaim {
        owner: owner.to_owned(),
        lease_ms,
        max,
        known,
        routing: everything(p).await,
    }
}

/// Claims every claimable instance (sorted by id).
pub async fn claim(p: &SharedProvider, owner: &str, lease_ms: i64) -> Vec<OrchestrationItem> {
    let claim = claim_for(p, owner, lease_ms, 100, KnownHistories::none()).await;
    let mut items = p
        .claim_orchestrations(&claim)
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
    p.claim_activities(owner, lease_ms, 100, &*everything(p).await)
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
        first_event_id: item.history_len() + 1,
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
        kv,
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
            kv,
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
        session_id: None,
        tag: None,
    });
    outcome.activities.push(ActivityRequest {
        task,
        name: name.to_owned(),
        input: payload(input),
        retry: None,
        session_id: None,
        tag: None,
        orchestration: "Orchestration".to_owned(),
        orchestration_version: Some("1.0.0".to_owned()),
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
        total_timeout_ms: None,
        jitter: false,
    }
}

fn assert_lease_lost<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::LeaseLost(_)) => {}
        other => panic!("{what}: expected StoreError::LeaseLost, got {other:?}"),
    }
}

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
