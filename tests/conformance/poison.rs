//! Poison: deliveries are counted so a runtime can give up on a message, and an unreadable
//! row sets only its instance aside.

use reprise::store::SharedProvider;

use super::{
    advance, assert_nothing_claimable, claim, claim_one_activity, claim_only, claim_work,
    deliveries, event_message, event_names, instance_ids, kinds, schedule_activity, start_instance,
    start_outcome, start_request, turn_commit, LONG_LEASE,
};

/// Deliveries count claims that ended without a turn, so a runtime can poison a message
/// after a bound; abandons that do not count give the delivery back.
pub async fn poison_after_bounded_deliveries(p: SharedProvider) {
    const N: u32 = 4;
    assert!(p
        .create_instance(&start_request("p", "Flow", "null"))
        .await
        .unwrap());
    for i in 1..=N {
        let item = claim_only(&p, "A", LONG_LEASE, "p").await;
        assert_eq!(deliveries(&item), vec![i]);
        p.abandon_orchestration("p", item.generation, 0, true)
            .await
            .unwrap();
    }
    for _ in 0..3 {
        let item = claim_only(&p, "A", LONG_LEASE, "p").await;
        assert_eq!(deliveries(&item), vec![N + 1]);
        p.abandon_orchestration("p", item.generation, 0, false)
            .await
            .unwrap();
    }

    // A message arriving while the instance is claimed was not delivered by that claim:
    // giving the claim's delivery back leaves it at zero, so its first delivery counts 1.
    let item = claim_only(&p, "A", LONG_LEASE, "p").await;
    assert_eq!(deliveries(&item), vec![N + 1]);
    p.enqueue("p", &event_message("late", "1")).await.unwrap();
    p.abandon_orchestration("p", item.generation, 0, false)
        .await
        .unwrap();
    let item = claim_only(&p, "A", LONG_LEASE, "p").await;
    assert_eq!(kinds(&item), vec!["Start", "Event"]);
    assert_eq!(deliveries(&item), vec![N + 1, 1]);

    // An abandon with a delay hides the messages until then.
    let before = p.now().await.unwrap();
    p.abandon_orchestration("p", item.generation, 10_000, true)
        .await
        .unwrap();
    let due = p.next_due().await.unwrap().expect("the delayed messages");
    assert!(due >= before + 10_000, "due {due}, abandoned at {before}");
    let items = claim(&p, "B", LONG_LEASE).await;
    assert!(items.is_empty(), "abandoned messages wait for the delay");
    advance(&p, 9_000).await;
    assert!(claim(&p, "B", LONG_LEASE).await.is_empty(), "still waiting");
    advance(&p, 1_100).await;
    let item = claim_only(&p, "B", LONG_LEASE, "p").await;
    assert_eq!(deliveries(&item), vec![N + 2, 2]);

    // --- activities ---
    let mut outcome = start_outcome(&item);
    schedule_activity(&mut outcome, 1, "Flaky", "0");
    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();

    let w1 = claim_one_activity(&p, "W", 200).await;
    assert_eq!((w1.deliveries, w1.attempt), (1, 1));
    advance(&p, 350).await;
    let w2 = claim_one_activity(&p, "W", LONG_LEASE).await;
    assert_eq!((w2.seq, w2.deliveries, w2.attempt), (w1.seq, 2, 1));
    p.abandon_activity(&w2, 0).await.unwrap();
    let w3 = claim_one_activity(&p, "W", LONG_LEASE).await;
    assert_eq!((w3.deliveries, w3.attempt), (3, 1));
    let before = p.now().await.unwrap();
    p.abandon_activity(&w3, 10_000).await.unwrap();
    assert!(p.next_due().await.unwrap().unwrap() >= before + 10_000);
    let work = claim_work(&p, "W", LONG_LEASE).await;
    assert!(work.is_empty(), "an abandoned activity waits for the delay");
    advance(&p, 9_000).await;
    assert!(
        claim_work(&p, "W", LONG_LEASE).await.is_empty(),
        "still waiting"
    );
    advance(&p, 1_100).await;
    let w4 = claim_one_activity(&p, "W", LONG_LEASE).await;
    assert_eq!((w4.deliveries, w4.attempt), (4, 1));

    // A retry is a new attempt: deliveries start over.
    let visible_at = p.now().await.unwrap() + 10_000;
    assert!(p.retry_activity(&w4, visible_at, 2).await.unwrap());
    assert_eq!(p.next_due().await.unwrap(), Some(visible_at));
    let work = claim_work(&p, "W", LONG_LEASE).await;
    assert!(work.is_empty(), "a retry waits for its visible_at");
    advance(&p, 9_000).await;
    assert!(
        claim_work(&p, "W", LONG_LEASE).await.is_empty(),
        "still waiting"
    );
    advance(&p, 1_100).await;
    let w5 = claim_one_activity(&p, "W", LONG_LEASE).await;
    assert_eq!(w5.seq, w1.seq);
    assert_eq!((w5.deliveries, w5.attempt), (1, 2));
    assert_eq!(w5.task, 1);
    assert_eq!(w5.name, "Flaky");
}

/// The `kind` to write over the queued messages of instance "u" and the one to find there,
/// for [`unreadable_rows_set_their_instance_aside`]: an unknown kind makes a row unreadable.
pub fn unreadable_kind_swap(unreadable: bool) -> (&'static str, &'static str) {
    if unreadable {
        ("NoSuchKind", "Event")
    } else {
        ("Event", "NoSuchKind")
    }
}

/// An instance with a queued row this version cannot read is set aside for a minute: the
/// claim goes on with the other instances, does not retry it at once (even once the row is
/// readable again), and takes it after the minute. `set_unreadable(true)` makes the queued
/// messages of instance "u" unreadable, `false` restores them (run by the backend's test).
pub async fn unreadable_rows_set_their_instance_aside<F, Fut>(p: SharedProvider, set_unreadable: F)
where
    F: Fn(bool) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for id in ["u", "ok"] {
        start_instance(&p, id, "Flow").await;
    }
    for id in ["u", "ok"] {
        p.enqueue(id, &event_message("e", "1")).await.unwrap();
    }
    set_unreadable(true).await;
    // "ok" stays claimed past the minute below.
    let items = claim(&p, "A", 10 * LONG_LEASE).await;
    assert_eq!(
        instance_ids(&items),
        vec!["ok"],
        "the readable instance is claimed"
    );
    set_unreadable(false).await;
    assert_nothing_claimable(&p, "A", "u is set aside even though readable again").await;
    advance(&p, 59_000).await;
    assert_nothing_claimable(&p, "A", "u is set aside for a minute").await;
    advance(&p, 2_000).await;
    let u = claim_only(&p, "A", LONG_LEASE, "u").await;
    assert_eq!(event_names(&u), vec!["e"]);
}
