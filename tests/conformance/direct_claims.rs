//! Direct claims: activities claimed by the commit that schedules them, and instances
//! claimed by the completions that wake them.

use reprise::store::{
    ActivityResult, DirectClaim, KnownHistories, OrchestrationClaim, SharedProvider, TurnCommit,
};

use super::{
    advance, assert_lease_lost, claim, claim_only, claim_work, deliveries, everything,
    history_kinds, kinds, payload, schedule_activity, start_instance_with, start_outcome,
    start_request, turn_commit, LONG_LEASE,
};

/// A commit with a direct claim returns its first activities already leased (generation 1,
/// first delivery); no other claim returns them while the lease holds; the others are
/// queued as usual; results recorded under the returned items are accepted; a commit that
/// loses its lease claims nothing.
pub async fn a_commit_claims_its_first_activities_for_its_runtime(p: SharedProvider) {
    assert!(p
        .create_instance(&start_request("d", "Flow", "null"))
        .await
        .unwrap());
    let item = claim_only(&p, "A", LONG_LEASE, "d").await;
    let mut outcome = start_outcome(&item);
    schedule_activity(&mut outcome, 1, "One", "1");
    schedule_activity(&mut outcome, 2, "Two", "2");
    schedule_activity(&mut outcome, 3, "Three", "3");
    let commit = TurnCommit {
        claim: Some(DirectClaim {
            owner: "A".to_owned(),
            lease_ms: 300,
            count: 2,
        }),
        ..turn_commit(&item, outcome)
    };
    let claimed = p.commit_turn(commit).await.unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|w| (
                w.task,
                w.name.as_str(),
                w.input.as_str(),
                w.attempt,
                w.deliveries,
                w.generation
            ))
            .collect::<Vec<_>>(),
        vec![(1, "One", "1", 1, 1, 1), (2, "Two", "2", 1, 1, 1)]
    );
    assert!(claimed
        .iter()
        .all(|w| w.instance_id == "d" && w.execution_id == 1));
    let others = claim_work(&p, "B", LONG_LEASE).await;
    assert_eq!(others.iter().map(|w| w.task).collect::<Vec<_>>(), vec![3]);
    assert!(p
        .complete_activity(&claimed[0], ActivityResult::Completed(payload("10")))
        .await
        .unwrap());
    // Task 2's direct lease runs out: another worker may take it, and the first one's
    // result is then refused.
    advance(&p, 450).await;
    let retaken = claim_work(&p, "C", LONG_LEASE).await;
    assert_eq!(
        retaken
            .iter()
            .map(|w| (w.task, w.deliveries))
            .collect::<Vec<_>>(),
        vec![(2, 2)]
    );
    assert!(!p
        .complete_activity(&claimed[1], ActivityResult::Completed(payload("20")))
        .await
        .unwrap());

    // (Its result waits for "d"; hold "d" so only "e" is claimable below.)
    let _held = claim_only(&p, "Z", LONG_LEASE, "d").await;

    // A stale commit claims nothing and writes nothing.
    assert!(p
        .create_instance(&start_request("e", "Flow", "null"))
        .await
        .unwrap());
    let stale = claim_only(&p, "A", 200, "e").await;
    advance(&p, 350).await;
    let _fresh = claim_only(&p, "B", LONG_LEASE, "e").await;
    let mut outcome = start_outcome(&stale);
    schedule_activity(&mut outcome, 1, "One", "1");
    let commit = TurnCommit {
        claim: Some(DirectClaim {
            owner: "A".to_owned(),
            lease_ms: LONG_LEASE,
            count: 1,
        }),
        ..turn_commit(&stale, outcome)
    };
    assert_lease_lost(
        p.commit_turn(commit).await,
        "a stale commit with a direct claim",
    );
    assert!(claim_work(&p, "W", LONG_LEASE).await.is_empty());
}

/// `complete_activities_and_claim` records every outcome and claims at most `max` of the
/// woken instances (a backend may claim none) with their messages and histories, leased to
/// the owner; the rest stay claimable. Returns how many it claimed.
pub async fn completions_may_claim_the_instances_they_wake(p: SharedProvider) -> usize {
    for id in ["x", "y"] {
        start_instance_with(&p, id, "Flow", |o| schedule_activity(o, 1, "Work", "1")).await;
    }
    let work = claim_work(&p, "W", LONG_LEASE).await;
    assert_eq!(work.len(), 2);
    let outcomes = work
        .iter()
        .map(|w| (w.clone(), ActivityResult::Completed(payload("7"))))
        .collect();
    let room = OrchestrationClaim {
        owner: "R".to_owned(),
        lease_ms: LONG_LEASE,
        max: 1,
        known: KnownHistories::none(),
        routing: everything(&p).await,
    };
    let (recorded, claimed) = p
        .complete_activities_and_claim(outcomes, &room)
        .await
        .unwrap();
    assert_eq!(recorded, vec![true, true]);
    assert!(claimed.len() <= 1, "at most max instances are claimed");
    for item in &claimed {
        assert!(["x", "y"].contains(&item.instance_id.as_str()));
        assert_eq!(kinds(item), vec!["ActivityCompleted"]);
        assert_eq!(deliveries(item), vec![1]);
        assert_eq!(
            history_kinds(&item.history),
            vec!["ExecutionStarted", "ActivityScheduled"]
        );
    }
    // The others are left for a dispatcher; the claimed one is leased.
    let rest = claim(&p, "D", LONG_LEASE).await;
    assert_eq!(rest.len(), 2 - claimed.len());
    for item in &rest {
        assert!(claimed.iter().all(|c| c.instance_id != item.instance_id));
    }
    // With no room, nothing is claimed and nothing is lost.
    start_instance_with(&p, "z", "Flow", |o| schedule_activity(o, 1, "Work", "1")).await;
    let work = claim_work(&p, "W", LONG_LEASE).await;
    let none = OrchestrationClaim { max: 0, ..room };
    let (recorded, claimed_none) = p
        .complete_activities_and_claim(
            vec![(work[0].clone(), ActivityResult::Completed(payload("8")))],
            &none,
        )
        .await
        .unwrap();
    assert_eq!((recorded, claimed_none.len()), (vec![true], 0));
    assert_eq!(claim_only(&p, "D", LONG_LEASE, "z").await.messages.len(), 1);
    claimed.len()
}
