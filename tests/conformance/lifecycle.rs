//! An instance's life: creation (idempotent), completion, continue-as-new, and the
//! cancellation of open work.

use reprise::engine::{Event, Message, Outbound, TaskError, Terminal, TurnOutcome};
use reprise::store::{ActivityResult, SharedProvider};

use super::{
    assert_lease_lost, assert_nothing_claimable, claim, claim_only, claim_work, event_ids,
    event_message, history, history_kinds, instance, instance_ids, kinds, payload,
    schedule_activity, schedule_timer, seqs, start_instance_with, start_outcome, start_request,
    turn_commit, LONG_LEASE,
};

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
    assert_eq!(info.status, "Pending", "stored, never claimed");
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
                kv: None,
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

/// A batch of starts is one transaction: every new id created with its Start message, ids
/// that exist or come twice left alone, one flag per start.
pub async fn create_instances_in_one_batch(p: SharedProvider) {
    assert!(p
        .create_instance(&start_request("old", "Flow", "0"))
        .await
        .unwrap());
    let batch = vec![
        start_request("old", "Flow", "1"),
        start_request("a", "Flow", "2"),
        start_request("b", "Flow", "3"),
        start_request("a", "Flow", "4"),
    ];
    assert_eq!(
        p.create_instances(&batch).await.unwrap(),
        vec![false, true, true, false]
    );
    assert_eq!(p.create_instances(&[]).await.unwrap(), Vec::<bool>::new());
    let items = claim(&p, "A", LONG_LEASE).await;
    assert_eq!(instance_ids(&items), vec!["a", "b", "old"]);
    for item in &items {
        assert_eq!(kinds(item), vec!["Start"]);
        let expected = match item.instance_id.as_str() {
            "old" => "0",
            "a" => "2",
            _ => "3",
        };
        match &item.messages[0].message {
            Message::Start { input, .. } => assert_eq!(input.get(), expected),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Starts made at the same moment (a store may store them in one statement): each id is
/// created once, whichever call wins, with one Start message, and an event raised for an
/// id before its start is delivered with it.
pub async fn concurrent_starts_create_each_id_once(p: SharedProvider) {
    p.enqueue("c0", &event_message("early", "1")).await.unwrap();
    let calls: Vec<_> = (0..30)
        .map(|i| {
            let p = p.clone();
            let id = format!("c{}", i % 10);
            tokio::spawn(async move {
                let created = p
                    .create_instance(&start_request(&id, "Flow", &i.to_string()))
                    .await
                    .unwrap();
                (id, created)
            })
        })
        .collect();
    let mut created = std::collections::BTreeMap::<String, usize>::new();
    for call in calls {
        let (id, was_created) = call.await.unwrap();
        *created.entry(id).or_default() += was_created as usize;
    }
    assert_eq!(created.len(), 10);
    assert!(created.values().all(|n| *n == 1), "{created:?}");
    let items = claim(&p, "A", LONG_LEASE).await;
    assert_eq!(instance_ids(&items).len(), 10);
    for item in &items {
        let expected = if item.instance_id == "c0" {
            vec!["Start", "Event"]
        } else {
            vec!["Start"]
        };
        let mut got = kinds(item);
        got.sort();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(got, want, "{}", item.instance_id);
    }
}
