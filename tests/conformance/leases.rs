//! Leases: they exclude others while held, renewals extend them, they expire once renewals
//! stop.

use reprise::store::{ActivityResult, Lease, SharedProvider};

use super::{
    advance, assert_nothing_claimable, claim_one_activity, claim_only, claim_work, deliveries,
    event_message, event_names, payload, schedule_activity, start_outcome, start_request,
    turn_commit, LONG_LEASE,
};

const SHORT_LEASE: i64 = 400;

const RENEW_EVERY: i64 = 130;

/// A lease excludes others while it holds, renewals extend it, it expires once renewals
/// stop; renewals report the leases that are no longer held.
pub async fn lease_expiry_and_renewal(p: SharedProvider) {
    assert!(p
        .create_instance(&start_request("l", "Flow", "null"))
        .await
        .unwrap());
    let started = p.now().await.unwrap();
    let a = claim_only(&p, "A", SHORT_LEASE, "l").await;
    let lease_a = Lease::Instance("l".to_owned(), a.generation);
    for _ in 0..6 {
        advance(&p, RENEW_EVERY).await;
        let lost = p
            .renew_leases(std::slice::from_ref(&lease_a), SHORT_LEASE)
            .await;
        assert_eq!(lost.unwrap(), vec![], "a held lease renews");
        assert_nothing_claimable(&p, "B", "while A renews its lease").await;
    }
    assert!(
        p.now().await.unwrap() - started >= 2 * SHORT_LEASE - 50,
        "renewals carried the lease well past its original expiry"
    );
    advance(&p, SHORT_LEASE + 200).await;
    // A stale renewal neither extends nor keeps the lease of the claim that replaced it.
    let b0 = claim_only(&p, "B0", SHORT_LEASE, "l").await;
    let lost = p
        .renew_leases(std::slice::from_ref(&lease_a), LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(lost, vec![lease_a.clone()]);
    advance(&p, SHORT_LEASE + 200).await;
    let b = claim_only(&p, "B", LONG_LEASE, "l").await;
    assert_ne!(b.generation, a.generation);
    assert_ne!(b.generation, b0.generation);
    let lease_b = Lease::Instance("l".to_owned(), b.generation);
    let unknown = Lease::Instance("no-such-instance".to_owned(), 1);
    let lost = p
        .renew_leases(
            &[lease_a.clone(), lease_b.clone(), unknown.clone()],
            LONG_LEASE,
        )
        .await
        .unwrap();
    assert_eq!(lost, vec![lease_a.clone(), unknown]);
    assert_nothing_claimable(&p, "C", "B holds the lease").await;

    // A lease released by a commit is not held any more: renewing it must not lock again.
    let mut outcome = start_outcome(&b);
    schedule_activity(&mut outcome, 1, "Work", "1");
    p.commit_turn(turn_commit(&b, outcome)).await.unwrap();
    let lost = p
        .renew_leases(std::slice::from_ref(&lease_b), LONG_LEASE)
        .await;
    assert_eq!(lost.unwrap(), vec![lease_b]);
    p.enqueue("l", &event_message("e", "1")).await.unwrap();
    let c = claim_only(&p, "C", LONG_LEASE, "l").await;
    assert_eq!(event_names(&c), vec!["e"]);
    // Same after an abandon.
    p.abandon_orchestration("l", c.generation, 0, true)
        .await
        .unwrap();
    let lease_c = Lease::Instance("l".to_owned(), c.generation);
    let lost = p
        .renew_leases(std::slice::from_ref(&lease_c), LONG_LEASE)
        .await;
    assert_eq!(lost.unwrap(), vec![lease_c]);
    let d = claim_only(&p, "D", LONG_LEASE, "l").await;
    assert_eq!(deliveries(&d), vec![2]);

    // --- activity rows ---
    let started = p.now().await.unwrap();
    let wa = claim_one_activity(&p, "WA", SHORT_LEASE).await;
    let lease_wa = Lease::Activity(wa.seq, wa.generation);
    for _ in 0..6 {
        advance(&p, RENEW_EVERY).await;
        let lost = p
            .renew_leases(std::slice::from_ref(&lease_wa), SHORT_LEASE)
            .await;
        assert_eq!(lost.unwrap(), vec![], "a held activity lease renews");
        assert!(
            claim_work(&p, "WB", LONG_LEASE).await.is_empty(),
            "while WA renews its lease"
        );
    }
    assert!(p.now().await.unwrap() - started >= 2 * SHORT_LEASE - 50);
    advance(&p, SHORT_LEASE + 200).await;
    let wb0 = claim_one_activity(&p, "WB0", SHORT_LEASE).await;
    let lost = p
        .renew_leases(std::slice::from_ref(&lease_wa), LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(
        lost,
        vec![lease_wa.clone()],
        "a stale activity lease does not renew"
    );
    advance(&p, SHORT_LEASE + 200).await;
    let wb = claim_one_activity(&p, "WB", LONG_LEASE).await;
    assert_eq!(wb.seq, wa.seq);
    assert_ne!(wb.generation, wb0.generation);
    assert_eq!(wb.deliveries, 3);
    let lease_wb = Lease::Activity(wb.seq, wb.generation);
    let lost = p
        .renew_leases(&[lease_wb.clone(), lease_wa.clone()], LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(lost, vec![lease_wa]);
    assert!(claim_work(&p, "WC", LONG_LEASE).await.is_empty());

    // Released by an abandon: renewing does not lock it again.
    p.abandon_activity(&wb, 0).await.unwrap();
    let lost = p
        .renew_leases(std::slice::from_ref(&lease_wb), LONG_LEASE)
        .await;
    assert_eq!(lost.unwrap(), vec![lease_wb]);
    let wc = claim_one_activity(&p, "WC", LONG_LEASE).await;
    assert_eq!(wc.deliveries, 4);
    // Completed: the row is gone, its lease is lost.
    assert!(p
        .complete_activity(&wc, ActivityResult::Completed(payload("1")))
        .await
        .unwrap());
    let lease_wc = Lease::Activity(wc.seq, wc.generation);
    let lost = p
        .renew_leases(std::slice::from_ref(&lease_wc), LONG_LEASE)
        .await;
    assert_eq!(lost.unwrap(), vec![lease_wc]);
    assert!(claim_work(&p, "WD", LONG_LEASE).await.is_empty());
}
