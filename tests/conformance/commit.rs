//! A turn commits atomically: all of its writes or none.

use reprise::engine::{
    ActivityRequest, Event, Message, Outbound, ParentLink, StartRequest, Terminal, TimerRequest,
    TurnOutcome,
};
use reprise::store::{ActivityItem, ActivityResult, SharedProvider, StoreError, TurnCommit};

use super::{
    assert_nothing_claimable, claim, claim_one_activity, claim_only, claim_work, deliveries,
    event_ids, event_message, event_names, everything, history, history_kinds, instance,
    instance_ids, kinds, payload, retry_policy, schedule_activity, schedule_timer, seqs,
    start_instance, start_instance_with, start_outcome, start_request, turn_commit, LONG_LEASE,
};

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
        session_id: None,
        tag: None,
    });
    outcome.activities.push(ActivityRequest {
        task: 1,
        name: "Charge".to_owned(),
        input: payload(r#"{"amount":5}"#),
        retry: Some(retry_policy()),
        session_id: None,
        tag: None,
        orchestration: "Orchestration".to_owned(),
        orchestration_version: Some("1.0.0".to_owned()),
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
    // Stored, never claimed: Pending (the parent, whose turn ran, is Running).
    assert_eq!(child.status, "Pending");
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

/// A turn of thousands of rows (a fan-out of 5,000 activities: 5,000 events and 5,000
/// activity rows, then their 5,000 results consumed at once) commits whole, past any
/// per-statement limit of the database.
pub async fn a_turn_of_thousands_of_rows_commits(p: SharedProvider) {
    const N: u32 = 5_000;
    start_instance_with(&p, "wide", "Flow", |o| {
        for task in 1..=N {
            schedule_activity(o, task, "Work", &task.to_string());
        }
    })
    .await;
    assert_eq!(history(&p, "wide", None).await.len(), 1 + N as usize);
    let mut done = 0;
    loop {
        let items = p
            .claim_activities("W", LONG_LEASE, 1_000, &*everything(&p).await)
            .await
            .unwrap();
        if items.is_empty() {
            break;
        }
        done += items.len();
        let results = items
            .into_iter()
            .map(|i| {
                let input = i.input.clone();
                (i, ActivityResult::Completed(payload(&input)))
            })
            .collect();
        assert!(p
            .complete_activities(results)
            .await
            .unwrap()
            .iter()
            .all(|r| *r));
    }
    assert_eq!(done, N as usize);
    let item = claim_only(&p, "A", LONG_LEASE, "wide").await;
    assert_eq!(item.messages.len(), N as usize);
    let mut outcome = TurnOutcome {
        consumed: seqs(&item),
        ..Default::default()
    };
    for m in &item.messages {
        if let Message::ActivityCompleted { task, result, .. } = &m.message {
            outcome.events.push(Event::ActivityCompleted {
                task: *task,
                result: result.clone(),
            });
        }
    }
    assert_eq!(outcome.events.len(), N as usize);
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    assert_eq!(history(&p, "wide", None).await.len(), 1 + 2 * N as usize);
    assert_nothing_claimable(&p, "B", "every result was consumed").await;
}
