//! Fencing: a stale claim writes nothing, and each activity outcome is fenced by its own
//! row's generation.

use reprise::engine::{
    Event, Message, Outbound, ParentLink, StartRequest, TaskError, Terminal, TurnOutcome,
};
use reprise::store::{ActivityResult, Lease, SharedProvider};

use super::{
    advance, assert_lease_lost, assert_nothing_claimable, claim_one_activity, claim_only,
    claim_work, deliveries, event_message, event_names, history, history_kinds, instance, kinds,
    payload, schedule_activity, schedule_timer, seqs, start_instance_with, start_outcome,
    start_request, turn_commit, LONG_LEASE,
};

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

/// Turns committed at the same moment (a store may put them in one statement) are each
/// fenced on their own: the stale ones write nothing and fail alone; the others write all
/// they carry (events, consumed messages, activities, timers, messages to other
/// instances) and get their directly claimed activities.
pub async fn turns_committed_together_are_fenced_one_by_one(p: SharedProvider) {
    const N: usize = 24;
    for i in 0..N {
        assert!(p
            .create_instance(&start_request(&format!("g{i:02}"), "Flow", "1"))
            .await
            .unwrap());
    }
    let items = super::claim(&p, "A", LONG_LEASE).await;
    assert_eq!(items.len(), N);
    let commits: Vec<(String, bool, reprise::store::TurnCommit)> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let stale = i % 4 == 1;
            let mut outcome = start_outcome(item);
            schedule_activity(&mut outcome, 1, "Work", &i.to_string());
            schedule_activity(&mut outcome, 2, "More", &i.to_string());
            schedule_timer(&mut outcome, 3, item.now + 3_600_000);
            outcome.messages.push(Outbound {
                instance_id: "inbox".to_owned(),
                message: event_message(&format!("from-{}", item.instance_id), "0"),
            });
            let mut commit = turn_commit(item, outcome);
            if stale {
                commit.generation -= 1;
            }
            if i % 2 == 0 {
                commit.claim = Some(reprise::store::DirectClaim {
                    owner: "A".to_owned(),
                    lease_ms: LONG_LEASE,
                    count: 1,
                });
            }
            (item.instance_id.clone(), stale, commit)
        })
        .collect();
    let tasks: Vec<_> = commits
        .into_iter()
        .map(|(id, stale, commit)| {
            let p = p.clone();
            let direct = commit.claim.is_some();
            tokio::spawn(async move { (id, stale, direct, p.commit_turn(commit).await) })
        })
        .collect();
    let mut fenced = Vec::new();
    for task in tasks {
        let (id, stale, direct, result) = task.await.unwrap();
        if stale {
            assert_lease_lost(result, &id);
            assert!(
                history(&p, &id, None).await.is_empty(),
                "{id}: a stale turn appends nothing"
            );
            continue;
        }
        let claimed = result.unwrap_or_else(|e| panic!("{id}: {e}"));
        let expected: Vec<(&str, u32)> = if direct { vec![(&id, 1)] } else { vec![] };
        assert_eq!(
            claimed
                .iter()
                .map(|w| (w.instance_id.as_str(), w.task))
                .collect::<Vec<_>>(),
            expected,
            "{id}: directly claimed activities"
        );
        assert_eq!(
            history_kinds(&history(&p, &id, None).await),
            vec![
                "ExecutionStarted",
                "ActivityScheduled",
                "ActivityScheduled",
                "TimerCreated"
            ],
            "{id}"
        );
        fenced.push(id);
    }
    assert_eq!(fenced.len(), N - N / 4);
    // Queued activities: both of each fenced turn, less the directly claimed ones.
    let mut queued: Vec<(String, u32)> = claim_work(&p, "W", LONG_LEASE)
        .await
        .into_iter()
        .map(|w| (w.instance_id, w.task))
        .collect();
    queued.sort();
    let mut expected: Vec<(String, u32)> = Vec::new();
    for (i, id) in (0..N).map(|i| (i, format!("g{i:02}"))) {
        if i % 4 == 1 {
            continue;
        }
        if i % 2 == 1 {
            expected.push((id.clone(), 1));
        }
        expected.push((id, 2));
    }
    expected.sort();
    assert_eq!(queued, expected);
    // The messages sent by the fenced turns, and no other.
    assert!(p
        .create_instance(&start_request("inbox", "Flow", "null"))
        .await
        .unwrap());
    let inbox = claim_only(&p, "B", 3 * LONG_LEASE, "inbox").await;
    let mut senders: Vec<String> = event_names(&inbox)
        .into_iter()
        .filter_map(|n| n.strip_prefix("from-").map(str::to_owned))
        .collect();
    senders.sort();
    assert_eq!(
        senders,
        fenced
            .iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    // A stale turn consumed nothing: its instance's Start is claimable once its lease ends.
    advance(&p, LONG_LEASE + 1).await;
    let again = super::claim(&p, "C", LONG_LEASE).await;
    let ids: Vec<String> = again.iter().map(|i| i.instance_id.clone()).collect();
    let stale: Vec<String> = (0..N)
        .filter(|i| i % 4 == 1)
        .map(|i| format!("g{i:02}"))
        .collect();
    assert_eq!(ids, stale, "only the stale turns' instances have work left");
    assert!(again.iter().all(|i| kinds(i) == vec!["Start"]));
}

/// A turn the database refuses (here: an event id already taken) fails alone, writing
/// nothing, even when committed at the same moment as others.
pub async fn a_refused_turn_fails_alone_among_turns_committed_together(p: SharedProvider) {
    const N: usize = 8;
    for i in 0..N {
        start_instance_with(&p, &format!("r{i}"), "Flow", |_| {}).await;
    }
    for i in 0..N {
        p.enqueue(&format!("r{i}"), &event_message("go", "1"))
            .await
            .unwrap();
    }
    let items = super::claim(&p, "A", LONG_LEASE).await;
    assert_eq!(items.len(), N);
    let tasks: Vec<_> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let mut outcome = TurnOutcome {
                consumed: seqs(item),
                ..Default::default()
            };
            schedule_timer(&mut outcome, 7, item.now + 3_600_000);
            let mut commit = turn_commit(item, outcome);
            if i == 3 {
                commit.first_event_id = 1; // ExecutionStarted's id
            }
            let p = p.clone();
            let id = item.instance_id.clone();
            tokio::spawn(async move { (id, p.commit_turn(commit).await) })
        })
        .collect();
    for task in tasks {
        let (id, result) = task.await.unwrap();
        let kinds = history_kinds(&history(&p, &id, None).await);
        if id == "r3" {
            assert!(
                matches!(result, Err(ref e) if !matches!(e, reprise::store::StoreError::LeaseLost(_))),
                "{id}: {result:?}"
            );
            assert_eq!(kinds, vec!["ExecutionStarted"], "{id} wrote nothing");
        } else {
            result.unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(kinds, vec!["ExecutionStarted", "TimerCreated"], "{id}");
        }
    }
}
