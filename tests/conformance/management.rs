//! Management queries: pages and filters of instances, counts and queue depths, executions
//! and their pruning.

use reprise::engine::{Event, Message, Outbound, ParentLink, StartRequest, Terminal, TurnOutcome};
use reprise::store::{InstanceFilter, PageCursor, QueueDepths, SharedProvider, SystemMetrics};

use super::{
    advance, claim_only, event_message, everything, finished_instance, history, list, list_all,
    listed_ids, payload, schedule_activity, schedule_timer, seqs, start_instance,
    start_instance_with, start_outcome, start_request, turn_commit, LONG_LEASE,
};

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
        statuses: reprise::client::status::stored_statuses(s),
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
            statuses: reprise::client::status::stored_statuses("Running"),
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
    let mut events = 0;
    for id in ["m-run", "m-done", "m-done2", "m-failed", "m-new"] {
        events += history(&p, id, None).await.len() as u64;
    }
    assert_eq!(
        p.system_metrics().await.unwrap(),
        SystemMetrics {
            total: 5,
            running: 2,
            completed: 2,
            failed: 1,
            executions: 5,
            events,
        },
        "every instance is in its first execution (one not started yet)"
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
    let mut work = p
        .claim_activities("W", LONG_LEASE, 2, &*everything(&p).await)
        .await
        .unwrap();
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
                kv: None,
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
