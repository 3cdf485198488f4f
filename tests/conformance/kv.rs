//! The per-instance key-value store and what an activity row carries: writes applied in
//! order with the turn (and not at all when the turn is fenced), read back by key, removed
//! with the instance; an activity's session, tag and orchestration returned by its claim,
//! and claims that take only the tags their filter accepts.

use reprise::engine::{ActivityRequest, Event, KvWrite};
use reprise::store::{Deletion, KvEntry, Routing, SharedProvider, TagFilter};

use super::{
    advance, assert_lease_lost, claim_one_activity, claim_only, everything, payload, start_outcome,
    start_request, turn_commit, LONG_LEASE,
};

fn set(key: &str, value: &str) -> KvWrite {
    KvWrite::Set {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

async fn values(p: &SharedProvider, id: &str) -> Vec<(String, String)> {
    p.kv_values(id, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect()
}

pub async fn kv_writes_commit_with_their_turn(p: SharedProvider) {
    assert!(p
        .create_instance(&start_request("kv", "Flow", "null"))
        .await
        .unwrap());
    let stale = claim_only(&p, "A", 200, "kv").await;
    advance(&p, 350).await;
    let item = claim_only(&p, "B", LONG_LEASE, "kv").await;

    let mut fenced = start_outcome(&stale);
    fenced.kv.push(set("lost", "1"));
    assert_lease_lost(
        p.commit_turn(turn_commit(&stale, fenced)).await,
        "a stale claim's turn",
    );
    assert!(
        values(&p, "kv").await.is_empty(),
        "a fenced turn writes no value"
    );

    let mut outcome = start_outcome(&item);
    outcome.kv = vec![
        set("a", "1"),
        set("gone", "x"),
        KvWrite::ClearAll,
        set("b", "2"),
        set("c", "3"),
        set("b", "two"),
        KvWrite::Clear {
            key: "c".to_owned(),
        },
    ];
    outcome.events.push(Event::KvSet {
        key: "b".to_owned(),
        value: "two".to_owned(),
    });
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    assert_eq!(
        values(&p, "kv").await,
        vec![("b".to_owned(), "two".to_owned())],
        "the writes apply in order"
    );
    let one = p.kv_values("kv", Some("b")).await.unwrap();
    assert_eq!(
        one,
        vec![KvEntry {
            key: "b".to_owned(),
            value: "two".to_owned(),
            updated_at: item.now,
        }],
        "a value carries the time of the turn that wrote it"
    );
    assert!(p.kv_values("kv", Some("a")).await.unwrap().is_empty());
    let stats = p.instance_stats("kv").await.unwrap().unwrap();
    assert_eq!((stats.kv_key_count, stats.kv_value_bytes), (1, 3));
    assert!(p.instance_stats("nobody").await.unwrap().is_none());

    match p.delete_instance("kv", true).await.unwrap() {
        Deletion::Deleted(removed) => assert_eq!(removed.ids, vec!["kv".to_owned()]),
        other => panic!("expected a deletion, got {other:?}"),
    }
    assert!(
        values(&p, "kv").await.is_empty(),
        "removed with the instance"
    );
}

/// An activity of orchestration `Flow` 2.1.0, with its session and tag.
fn routed_activity(task: u32, session: Option<&str>, tag: Option<&str>) -> ActivityRequest {
    ActivityRequest {
        task,
        name: "A".to_owned(),
        input: payload("null"),
        retry: None,
        session_id: session.map(str::to_owned),
        tag: tag.map(str::to_owned),
        orchestration: "Flow".to_owned(),
        orchestration_version: Some("2.1.0".to_owned()),
    }
}

pub async fn activity_rows_carry_session_tag_and_orchestration(p: SharedProvider) {
    assert!(p
        .create_instance(&start_request("routed", "Flow", "null"))
        .await
        .unwrap());
    let item = claim_only(&p, "O", LONG_LEASE, "routed").await;
    let mut outcome = start_outcome(&item);
    outcome
        .activities
        .push(routed_activity(1, Some("s-1"), Some("gpu")));
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    let claimed = claim_one_activity(&p, "W", LONG_LEASE).await;
    assert_eq!(
        (
            claimed.session_id.as_deref(),
            claimed.tag.as_deref(),
            claimed.orchestration.as_str(),
            claimed.orchestration_version.as_deref()
        ),
        (Some("s-1"), Some("gpu"), "Flow", Some("2.1.0"))
    );
}

/// A claim takes only the activities its tag filter accepts.
pub async fn activity_claims_follow_the_tag_filter(p: SharedProvider) {
    assert!(p
        .create_instance(&start_request("tagged", "Flow", "null"))
        .await
        .unwrap());
    let item = claim_only(&p, "O", LONG_LEASE, "tagged").await;
    let mut outcome = start_outcome(&item);
    for (task, tag) in [
        (1, None),
        (2, Some("gpu")),
        (3, Some("cpu")),
        (4, Some("big")),
    ] {
        outcome.activities.push(routed_activity(task, None, tag));
    }
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    let claim = |filter: TagFilter| {
        let p = p.clone();
        async move {
            let mut tasks: Vec<u32> = p
                .claim_activities(
                    "W",
                    LONG_LEASE,
                    10,
                    &Routing {
                        tags: filter,
                        ..(*everything(&p).await).clone()
                    },
                )
                .await
                .unwrap()
                .iter()
                .map(|a| a.task)
                .collect();
            tasks.sort();
            tasks
        }
    };
    let listed = |tags: &[&str]| tags.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    assert_eq!(claim(TagFilter::None).await, Vec::<u32>::new());
    assert_eq!(
        claim(TagFilter::Tags(listed(&["gpu", "nope"]))).await,
        vec![2]
    );
    assert_eq!(claim(TagFilter::DefaultOnly).await, vec![1]);
    assert_eq!(
        claim(TagFilter::DefaultAnd(listed(&["cpu"]))).await,
        vec![3]
    );
    assert_eq!(claim(TagFilter::Any).await, vec![4]);
    assert!(TagFilter::DefaultAnd(listed(&["cpu"])).accepts(None));
    assert!(!TagFilter::Tags(listed(&["cpu"])).accepts(None));
    assert!(!TagFilter::DefaultOnly.accepts(Some("cpu")));
}
