//! Rewind (retryInstance): a failed instance is put back to work in one step, and a watch
//! follows a history rewound under it.

use reprise::engine::{plan_rewind, Event, Message, TaskError, Terminal, TurnOutcome};
use reprise::store::{ActivityResult, SharedProvider};

use super::{
    advance, claim_one_activity, claim_only, claim_work, event_ids, history, history_kinds,
    instance, kinds, payload, schedule_activity, schedule_timer, seqs, start_instance_with,
    turn_commit, LONG_LEASE,
};

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

/// Lifecycle event types from a watch step's JSON events.
fn watched_types(step: &reprise::client::watch::WatchStep) -> Vec<String> {
    step.events
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(e.get()).expect("an event is JSON");
            v["type"].as_str().expect("a type").to_owned()
        })
        .collect()
}

/// A watcher whose cursor is past the point a retry rewinds to (it saw a result that the
/// rewind took out to deliver again) notices and goes on from the `ExecutionRetried` event.
pub async fn a_watch_follows_a_history_rewound_under_it(p: SharedProvider) {
    use reprise::client::watch::{watch_step, WatchCursor};
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
