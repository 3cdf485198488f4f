//! Wake-ups between processes: notifications stay within a schema, and the listener
//! reconnects.

use std::time::Duration;

use reprise::store::postgres::application_name;
use reprise::store::{Provider, SharedProvider};

use crate::conformance::{
    claim_only, event_message, schedule_activity, start_outcome, start_request, turn_commit,
    LONG_LEASE,
};
use crate::{admin, connect_with, fresh, notified_within, options};

/// A commit on one provider wakes the other providers on the same schema (other
/// processes, as far as the database can tell), and nobody on another schema.
#[tokio::test]
async fn notifications_reach_other_providers_on_the_same_schema_only() {
    let (a1, guard) = fresh("notify").await;
    let a2 = connect_with(&guard.schema, options(&guard.schema)).await;
    let (b, _gb) = fresh("notify_other").await;

    // The runtime's connections can be found by application_name.
    let mut admin = admin().await;
    let listeners: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE application_name = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(application_name(&guard.schema))
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        listeners, 2,
        "both providers' LISTEN connections are named (and the other schema's are not)"
    );

    let watch = a2.wakers().watch("n1");
    let changed = watch.notified();
    tokio::pin!(changed);
    changed.as_mut().enable();
    assert!(a1
        .create_instance(&start_request("n1", "Flow", "null"))
        .await
        .unwrap());
    assert!(
        notified_within(&a2.wakers().orchestrations, 5_000).await,
        "new work wakes the other provider's dispatcher"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(5), changed)
            .await
            .is_ok(),
        "a created instance wakes the other provider's watchers"
    );

    let item = claim_only(&(a1.clone() as SharedProvider), "A", LONG_LEASE, "n1").await;
    let mut outcome = start_outcome(&item);
    schedule_activity(&mut outcome, 1, "Work", "0");
    a1.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    assert!(
        notified_within(&a2.wakers().activities, 5_000).await,
        "a new activity wakes the other provider's workers"
    );

    assert!(
        !notified_within(&b.wakers().orchestrations, 500).await,
        "another schema hears nothing"
    );
    assert!(!notified_within(&b.wakers().activities, 10).await);
}

/// When the LISTEN connection drops, the provider reconnects and signals everything once
/// (notifications sent meanwhile are lost), and notifications flow again afterwards.
#[tokio::test]
async fn listener_reconnect_signals_everything_and_resumes() {
    let (a1, guard) = fresh("relisten").await;
    let a2 = connect_with(&guard.schema, options(&guard.schema)).await;
    let watch = a2.wakers().watch("w");
    let changed = watch.notified();
    tokio::pin!(changed);
    changed.as_mut().enable();

    let mut admin = admin().await;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(application_name(&guard.schema))
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        killed,
        vec![true, true],
        "both providers' LISTEN connections"
    );

    assert!(
        notified_within(&a2.wakers().orchestrations, 10_000).await,
        "a reconnect wakes the dispatcher once"
    );
    assert!(notified_within(&a2.wakers().activities, 1_000).await);
    assert!(
        tokio::time::timeout(Duration::from_secs(1), changed)
            .await
            .is_ok(),
        "a reconnect wakes every watcher"
    );

    // Notifications flow again (the sender's pool lost nothing; the listener is back).
    let mut delivered = false;
    for attempt in 0..20 {
        a1.enqueue(&format!("later{attempt}"), &event_message("e", "1"))
            .await
            .unwrap();
        if notified_within(&a2.wakers().orchestrations, 500).await {
            delivered = true;
            break;
        }
    }
    assert!(delivered, "notifications resume after the reconnect");
}
