//! The orchestrator queue: per-instance message order, and messages that wait for their
//! instance.

use reprise::engine::{Event, Message, TurnOutcome};
use reprise::store::{ActivityResult, SharedProvider, DEFAULT_UNKNOWN_EVENT_TTL_MS};

use super::{
    advance, assert_nothing_claimable, claim, claim_one_activity, claim_only, deliveries,
    event_message, event_names, finished_instance, history, history_kinds, instance, instance_ids,
    kinds, payload, schedule_activity, seqs, start_instance, start_instance_with, start_outcome,
    start_request, turn_commit, LONG_LEASE,
};

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

/// An event for a finished instance is taken and dropped without touching the instance:
/// its `updated_at` (what retention by age reads) and everything else stay as they were.
pub async fn a_dropped_event_changes_nothing(p: SharedProvider) {
    let before = finished_instance(&p, start_request("done", "Flow", "1"), Some("2")).await;
    advance(&p, 5_000).await;
    p.enqueue("done", &event_message("late", "1"))
        .await
        .unwrap();
    let item = claim_only(&p, "A", LONG_LEASE, "done").await;
    assert_eq!(kinds(&item), vec!["Event"]);
    // What the engine commits for a finished execution: the message consumed, nothing else.
    let outcome = TurnOutcome {
        consumed: seqs(&item),
        ..Default::default()
    };
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    assert_nothing_claimable(&p, "B", "the late event was consumed").await;
    let after = instance(&p, "done").await;
    assert_eq!(after.updated_at, before.updated_at, "updated_at moved");
    assert_eq!(format!("{after:?}"), format!("{before:?}"));
}

/// Events for an instance that does not exist wait for it without counting in the queue
/// depths; those older than the unknown-event TTL when it is created are dropped then, and
/// the sweep deletes the expired ones of instances that never came.
pub async fn events_for_unknown_instances_expire(p: SharedProvider) {
    p.enqueue("late", &event_message("old", "1")).await.unwrap();
    p.enqueue("never", &event_message("old", "1"))
        .await
        .unwrap();
    let depths = p.queue_depths().await.unwrap();
    assert_eq!(
        (depths.orchestrator_visible, depths.orchestrator_delayed),
        (0, 0),
        "events of instances that do not exist are not queue depth"
    );
    assert_eq!(
        p.expire_unknown_events().await.unwrap(),
        0,
        "young events stay"
    );

    advance(&p, DEFAULT_UNKNOWN_EVENT_TTL_MS + 1_000).await;
    p.enqueue("late", &event_message("young", "2"))
        .await
        .unwrap();
    assert!(p
        .create_instance(&start_request("late", "Flow", "0"))
        .await
        .unwrap());
    let item = claim_only(&p, "A", LONG_LEASE, "late").await;
    assert_eq!(kinds(&item), vec!["Event", "Start"]);
    assert_eq!(
        event_names(&item),
        vec!["young", "-"],
        "the expired event was dropped"
    );
    let depths = p.queue_depths().await.unwrap();
    assert_eq!(
        depths.orchestrator_visible, 2,
        "an existing instance's messages count"
    );

    assert_eq!(
        p.expire_unknown_events().await.unwrap(),
        1,
        "the sweep takes 'never'"
    );
    assert_eq!(p.expire_unknown_events().await.unwrap(), 0);
    p.create_instance(&start_request("never", "Flow", "0"))
        .await
        .unwrap();
    let item = claim_only(&p, "A", LONG_LEASE, "never").await;
    assert_eq!(kinds(&item), vec!["Start"]);
}
