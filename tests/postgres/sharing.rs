//! Many processes on one database: schemas share nothing, concurrent claimers never share
//! work, and the store's clock is the database's.

use std::collections::HashSet;
use std::time::Duration;

use reprise::store::postgres::PostgresOptions;
use reprise::store::{KnownHistories, Provider, SharedProvider};

use crate::conformance::{
    claim_for, claim_only, event_message, everything, kinds, schedule_activity, start_outcome,
    start_request, turn_commit, LONG_LEASE,
};
use crate::{admin, connect_with, fresh, options};

/// Two schemas share nothing: instances, ids, queues.
#[tokio::test]
async fn schemas_are_isolated() {
    let (a, _ga) = fresh("iso_a").await;
    let (b, _gb) = fresh("iso_b").await;
    let (a, b): (SharedProvider, SharedProvider) = (a, b);

    assert!(a
        .create_instance(&start_request("same", "InA", "1"))
        .await
        .unwrap());
    assert!(b.instance("same").await.unwrap().is_none());
    assert!(b
        .claim_orchestrations(&claim_for(&b, "B", LONG_LEASE, 100, KnownHistories::none()).await)
        .await
        .unwrap()
        .is_empty());
    assert!(
        b.create_instance(&start_request("same", "InB", "2"))
            .await
            .unwrap(),
        "the id is free in the other schema"
    );
    a.enqueue("same", &event_message("onlyA", "1"))
        .await
        .unwrap();

    let ia = claim_only(&a, "A", LONG_LEASE, "same").await;
    assert_eq!(kinds(&ia), vec!["Start", "Event"]);
    assert_eq!(ia.name, "InA");
    let ib = claim_only(&b, "B", LONG_LEASE, "same").await;
    assert_eq!(kinds(&ib), vec!["Start"]);
    assert_eq!(ib.name, "InB");

    let mut outcome = start_outcome(&ia);
    schedule_activity(&mut outcome, 1, "Work", "0");
    a.commit_turn(turn_commit(&ia, outcome)).await.unwrap();
    assert!(b
        .claim_activities("W", LONG_LEASE, 100, &*everything(&b).await)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        a.claim_activities("W", LONG_LEASE, 100, &*everything(&a).await)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(b.history("same", None).await.unwrap().is_empty());
    assert_eq!(a.history("same", None).await.unwrap().len(), 2);
}

/// Claimers on two pools over one schema, racing, never get the same instance or activity.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_providers_claiming_concurrently_never_share_work() {
    const N: usize = 240;
    let (p1, guard) = fresh("concurrent_claims").await;
    let small = PostgresOptions {
        pool_size: 4,
        ..options(&guard.schema)
    };
    let p2 = connect_with(&guard.schema, small).await;
    let providers: [SharedProvider; 2] = [p1, p2];
    for i in 0..N {
        assert!(providers[i % 2]
            .create_instance(&start_request(&format!("i{i:03}"), "Flow", "null"))
            .await
            .unwrap());
    }

    // Every claimer commits the first turn (with one activity) of what it claimed.
    let mut claimers = tokio::task::JoinSet::new();
    for c in 0..6 {
        let p = providers[c % 2].clone();
        claimers.spawn(async move {
            let owner = format!("C{c}");
            let mut mine = Vec::new();
            loop {
                let items = p
                    .claim_orchestrations(
                        &claim_for(&p, &owner, LONG_LEASE, 7, KnownHistories::none()).await,
                    )
                    .await
                    .unwrap();
                if items.is_empty() {
                    break;
                }
                for item in items {
                    let mut outcome = start_outcome(&item);
                    schedule_activity(&mut outcome, 1, "Work", "0");
                    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
                    mine.push(item.instance_id);
                }
            }
            mine
        });
    }
    let mut seen = HashSet::new();
    while let Some(mine) = claimers.join_next().await {
        for id in mine.unwrap() {
            assert!(seen.insert(id.clone()), "instance '{id}' was claimed twice");
        }
    }
    assert_eq!(seen.len(), N, "every instance was claimed");

    let mut workers = tokio::task::JoinSet::new();
    for c in 0..6 {
        let p = providers[c % 2].clone();
        workers.spawn(async move {
            let owner = format!("W{c}");
            let mut mine = Vec::new();
            loop {
                let items = p
                    .claim_activities(&owner, LONG_LEASE, 5, &*everything(&p).await)
                    .await
                    .unwrap();
                if items.is_empty() {
                    break;
                }
                mine.extend(items.into_iter().map(|i| i.seq));
            }
            mine
        });
    }
    let mut seqs = HashSet::new();
    while let Some(mine) = workers.join_next().await {
        for seq in mine.unwrap() {
            assert!(seqs.insert(seq), "activity {seq} was claimed twice");
        }
    }
    assert_eq!(seqs.len(), N, "every activity was claimed");
    drop(guard);
}

/// The store's clock is the database's.
#[tokio::test]
async fn the_clock_is_the_databases() {
    let (p, _guard) = fresh("clock").await;
    let mut admin = admin().await;
    let db: i64 =
        sqlx::query_scalar("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    let store = p.now().await.unwrap();
    assert!((store - db).abs() < 2_000, "store {store} vs database {db}");
    assert_eq!(
        p.foreign_commit_poll(),
        Some(Duration::from_millis(
            PostgresOptions::default().poll_interval_ms
        )),
        "polling stays as a fallback, at the configured interval"
    );
}
