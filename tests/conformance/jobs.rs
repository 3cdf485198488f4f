//! Jobs: what a running attempt records is fenced by its activity's generation; an emit
//! completes exactly the steps waiting for its event and wakes their runs; the last payload
//! of an event answers later awaits; a concurrency key has one holder at a time, in order.

use reprise::store::{
    JobAwait, JobBegin, JobFence, JobStep, JobWrite, SharedProvider, JOB_WAKE_EVENT,
};

use super::{
    advance, claim, claim_one_activity, claim_only, event_names, instance_ids, schedule_activity,
    start_instance_with, LONG_LEASE,
};

fn step(name: &str, state: &str, value: Option<&str>) -> JobStep {
    JobStep {
        name: name.to_owned(),
        state: state.to_owned(),
        value: value.map(str::to_owned),
        attempts: 1,
        until_ms: None,
        event: None,
        updated_at: 0,
    }
}

/// A run `id` whose attempt (an activity) is claimed: its fence.
async fn running_attempt(p: &SharedProvider, id: &str, lease_ms: i64) -> JobFence {
    start_instance_with(p, id, "Job", |o| {
        schedule_activity(o, 1, "reprise.job:Job", "{}")
    })
    .await;
    let item = claim_one_activity(p, "W", lease_ms).await;
    JobFence {
        instance_id: id.to_owned(),
        seq: item.seq,
        generation: item.generation,
    }
}

fn started_steps(begin: JobBegin) -> Vec<JobStep> {
    match begin {
        JobBegin::Started { steps, .. } => steps,
        other => panic!("expected Started, got {other:?}"),
    }
}

/// Steps, progress and logs are written while the attempt holds its activity, and read back
/// in the order first recorded; once another claim took the activity, nothing is written.
pub async fn job_writes_are_fenced_by_the_attempt(p: SharedProvider) {
    let fence = running_attempt(&p, "run", 200).await;
    assert!(started_steps(p.job_begin(fence.clone(), None).await.unwrap()).is_empty());
    let writes = vec![
        JobWrite::Step(step("b", "done", Some("2"))),
        JobWrite::Step(step("a", "done", Some("1"))),
        JobWrite::Progress {
            value: r#"{"current":1}"#.into(),
        },
        JobWrite::Log {
            level: "info".into(),
            message: "hello".into(),
            data: Some("{}".into()),
            step: None,
        },
    ];
    assert!(p.job_write(fence.clone(), writes).await.unwrap());
    assert!(p
        .job_write(
            fence.clone(),
            vec![JobWrite::Step(step("b", "done", Some("3")))]
        )
        .await
        .unwrap());
    let begin = p.job_begin(fence.clone(), None).await.unwrap();
    let names: Vec<(String, Option<String>)> = started_steps(begin)
        .into_iter()
        .map(|s| (s.name, s.value))
        .collect();
    assert_eq!(
        names,
        vec![
            ("b".into(), Some("3".into())),
            ("a".into(), Some("1".into()))
        ],
        "steps in the order first recorded, the later write of a name replacing the earlier"
    );
    let state = p.job_state("run".into()).await.unwrap();
    assert_eq!(state.progress.as_deref(), Some(r#"{"current":1}"#));
    assert!(state.started_at.is_some());
    assert_eq!(p.job_logs("run".into(), 0, 10).await.unwrap().len(), 1);

    // The lease runs out and another worker claims the attempt: the old fence is void.
    advance(&p, 350).await;
    let again = claim_one_activity(&p, "W2", LONG_LEASE).await;
    assert_ne!(again.generation, fence.generation);
    assert!(!p
        .job_write(
            fence.clone(),
            vec![JobWrite::Step(step("c", "done", Some("4")))]
        )
        .await
        .unwrap());
    assert!(matches!(
        p.job_begin(fence.clone(), None).await.unwrap(),
        JobBegin::LeaseLost
    ));
    assert!(matches!(
        p.job_await(fence, "event:x".into(), "x".into(), None, false)
            .await
            .unwrap(),
        JobAwait::LeaseLost
    ));
    assert_eq!(p.job_state("run".into()).await.unwrap().steps.len(), 2);
}

/// An emit completes every step waiting for its event, wakes exactly those runs, and keeps
/// its payload for later awaits until cleared.
pub async fn emits_complete_waiting_steps_and_keep_their_payload(p: SharedProvider) {
    let one = running_attempt(&p, "one", LONG_LEASE).await;
    let two = running_attempt(&p, "two", LONG_LEASE).await;
    let other = running_attempt(&p, "other", LONG_LEASE).await;
    for fence in [&one, &two] {
        let waiting = p
            .job_await(fence.clone(), "event:go".into(), "go".into(), None, false)
            .await
            .unwrap();
        assert!(matches!(waiting, JobAwait::Waiting));
    }
    let waiting = p
        .job_await(
            other.clone(),
            "event:stop".into(),
            "stop".into(),
            None,
            false,
        )
        .await
        .unwrap();
    assert!(matches!(waiting, JobAwait::Waiting));
    assert_eq!(
        p.job_emit("go".into(), r#"{"n":1}"#.into()).await.unwrap(),
        2
    );
    for id in ["one", "two"] {
        let steps = p.job_state(id.into()).await.unwrap().steps;
        assert_eq!(steps[0].state, "done");
        assert_eq!(steps[0].value.as_deref(), Some(r#"{"n":1}"#));
    }
    let mut woken = claim(&p, "O", LONG_LEASE).await;
    woken.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    assert_eq!(
        instance_ids(&woken),
        vec!["one", "two"],
        "exactly the waiting runs"
    );
    for item in &woken {
        assert_eq!(event_names(item), vec![JOB_WAKE_EVENT.to_owned()]);
    }
    assert_eq!(
        p.job_state("other".into()).await.unwrap().steps[0].state,
        "waiting"
    );
    // A second emit finds nobody waiting; the kept payload answers a new await at once.
    assert_eq!(
        p.job_emit("go".into(), r#"{"n":2}"#.into()).await.unwrap(),
        0
    );
    match p
        .job_await(other.clone(), "event:go".into(), "go".into(), None, false)
        .await
        .unwrap()
    {
        JobAwait::Received { payload } => assert_eq!(payload, r#"{"n":2}"#),
        got => panic!("expected the kept payload, got {got:?}"),
    }
    assert!(p.job_clear_event("go".into()).await.unwrap());
    let waiting = p
        .job_await(
            other.clone(),
            "event:go#2".into(),
            "go".into(),
            Some(1),
            false,
        )
        .await
        .unwrap();
    assert!(matches!(waiting, JobAwait::Waiting));
    // Past its deadline the attempt gives up: the step fails with a timeout.
    let gave_up = p
        .job_await(other, "event:go#2".into(), "go".into(), Some(1), true)
        .await
        .unwrap();
    assert!(matches!(gave_up, JobAwait::TimedOut));
    let steps = p.job_state("other".into()).await.unwrap().steps;
    let timed_out = steps.iter().find(|s| s.name == "event:go#2").unwrap();
    assert_eq!(timed_out.state, "failed");
    assert!(timed_out.value.as_deref().unwrap().contains("ERR_TIMEOUT"));
}

/// A concurrency key has one holder; the others are blocked in the order they asked, and
/// the holder's release wakes the next.
pub async fn a_concurrency_key_has_one_holder_at_a_time(p: SharedProvider) {
    let first = running_attempt(&p, "k1", LONG_LEASE).await;
    let second = running_attempt(&p, "k2", LONG_LEASE).await;
    let third = running_attempt(&p, "k3", LONG_LEASE).await;
    let key = || Some("org".to_owned());
    assert!(matches!(
        p.job_begin(first.clone(), key()).await.unwrap(),
        JobBegin::Started { .. }
    ));
    assert!(matches!(
        p.job_begin(second.clone(), key()).await.unwrap(),
        JobBegin::Blocked
    ));
    assert!(matches!(
        p.job_begin(third.clone(), key()).await.unwrap(),
        JobBegin::Blocked
    ));
    assert!(p.job_state("k2".into()).await.unwrap().started_at.is_none());
    // Asking again keeps the holder (and the place in the queue).
    assert!(matches!(
        p.job_begin(first, key()).await.unwrap(),
        JobBegin::Started { .. }
    ));
    p.job_release("k1".into()).await.unwrap();
    let woken = claim_only(&p, "O", LONG_LEASE, "k2").await;
    assert_eq!(event_names(&woken), vec![JOB_WAKE_EVENT.to_owned()]);
    assert!(matches!(
        p.job_begin(third.clone(), key()).await.unwrap(),
        JobBegin::Blocked
    ));
    assert!(matches!(
        p.job_begin(second, key()).await.unwrap(),
        JobBegin::Started { .. }
    ));
    p.job_release("k2".into()).await.unwrap();
    assert!(matches!(
        p.job_begin(third, key()).await.unwrap(),
        JobBegin::Started { .. }
    ));
}

/// Runs queued at trigger hold the key in that order, whichever attempt begins first.
pub async fn a_concurrency_key_follows_the_trigger_order(p: SharedProvider) {
    let first = running_attempt(&p, "t1", LONG_LEASE).await;
    let second = running_attempt(&p, "t2", LONG_LEASE).await;
    for id in ["t1", "t2"] {
        p.job_queue_key(id.into(), "tenant".into()).await.unwrap();
    }
    let key = || Some("tenant".to_owned());
    assert!(matches!(
        p.job_begin(second, key()).await.unwrap(),
        JobBegin::Blocked
    ));
    assert!(matches!(
        p.job_begin(first, key()).await.unwrap(),
        JobBegin::Started { .. }
    ));
}

/// Forgetting a run's failures (before a retry) keeps its finished steps.
pub async fn reset_forgets_only_failed_steps(p: SharedProvider) {
    let fence = running_attempt(&p, "r", LONG_LEASE).await;
    let writes = vec![
        JobWrite::Step(step("ok", "done", Some("1"))),
        JobWrite::Step(step("bad", "failed", Some(r#"{"message":"x"}"#))),
        JobWrite::Step(step("again", "retrying", Some(r#"{"message":"y"}"#))),
    ];
    assert!(p.job_write(fence, writes).await.unwrap());
    assert_eq!(p.job_reset("r".into()).await.unwrap(), 2);
    let steps = p.job_state("r".into()).await.unwrap().steps;
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].name, "ok");
}
