//! Deletion: one instance with its sub-orchestrations, and finished instances in bulk.

use reprise::engine::{Event, ParentLink, StartRequest, Terminal};
use reprise::store::{DeleteFilter, Deletion, InstanceFilter, Removed, SharedProvider};

use super::{
    advance, assert_nothing_claimable, claim_only, claim_work, event_message, finished_instance,
    history, instance, kinds, list, listed_ids, payload, schedule_activity, schedule_timer,
    start_instance, start_instance_with, start_outcome, start_request, turn_commit, LONG_LEASE,
};

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
        Deletion::Deleted(removed) => {
            let mut ids = removed.ids;
            ids.sort();
            assert_eq!(
                (removed.executions, removed.events, removed.queue_messages),
                (1, 3, 3),
                "the root's execution and its 3 events; its activity, its timer and the child's start"
            );
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
        Deletion::Deleted(Removed {
            ids: vec!["ghost".to_owned()],
            executions: 1,
            events: 2,
            queue_messages: 0,
        }),
        "a finished instance needs no force"
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

    let deleted = |removed: Removed| {
        let mut ids = removed.ids;
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
            statuses: vec!["Failed".to_owned()],
            ..Default::default()
        })
        .await
        .unwrap()
        .ids,
        vec!["d-f"]
    );
    // By completion time.
    assert_eq!(
        p.delete_instances(&DeleteFilter {
            completed_before: Some(cut),
            ..Default::default()
        })
        .await
        .unwrap()
        .ids,
        vec!["d-b"]
    );
    // Limit: oldest finish first; the parent takes its running child along.
    assert_eq!(
        p.delete_instances(&DeleteFilter {
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .ids,
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
        .ids
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
