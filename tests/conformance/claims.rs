//! What a claim reads of an instance's history: all of it, or only what follows the part
//! the claimer says it holds.

use reprise::store::{ActivityResult, KnownHistories, OrchestrationClaim, SharedProvider};

use super::{
    claim_for, claim_one_activity, claim_work, event_ids, everything, history_kinds, payload,
    schedule_activity, start_instance_with, LONG_LEASE,
};

/// With `KnownHistories`, a claim returns the known execution's events from the last known
/// one on (that one again, to check it is unchanged); an instance known in another
/// execution, or not known, comes with its whole history; a known length past the end
/// returns nothing, and the item says where it read from. Completions that claim the
/// instances they wake read the same way.
pub async fn a_claim_reads_history_after_what_the_claimer_knows(p: SharedProvider) {
    for id in ["k", "other", "past", "unknown"] {
        start_instance_with(&p, id, "Flow", |o| schedule_activity(o, 1, "Work", "1")).await;
    }
    let known = KnownHistories::new(|id| match id {
        "k" => Some((1, 2)),
        "other" => Some((2, 2)),
        "past" => Some((1, 9)),
        _ => None,
    });
    let work = claim_work(&p, "W", LONG_LEASE).await;
    assert_eq!(work.len(), 4);
    let outcomes = work
        .into_iter()
        .map(|w| (w, ActivityResult::Completed(payload("7"))))
        .collect();
    assert_eq!(
        p.complete_activities(outcomes).await.unwrap(),
        vec![true; 4]
    );
    let mut items = p
        .claim_orchestrations(&claim_for(&p, "C", LONG_LEASE, 100, known).await)
        .await
        .unwrap();
    items.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    let read: Vec<(&str, u64, Vec<u64>, u64)> = items
        .iter()
        .map(|i| {
            (
                i.instance_id.as_str(),
                i.history_from,
                event_ids(&i.history),
                i.history_len(),
            )
        })
        .collect();
    assert_eq!(
        read,
        vec![
            ("k", 2, vec![2], 2),
            ("other", 1, vec![1, 2], 2),
            ("past", 9, vec![], 8),
            ("unknown", 1, vec![1, 2], 2),
        ]
    );
    assert_eq!(history_kinds(&items[0].history), vec!["ActivityScheduled"]);

    // The same through a completion that claims what it wakes.
    start_instance_with(&p, "woken", "Flow", |o| {
        schedule_activity(o, 1, "Work", "1")
    })
    .await;
    let work = claim_one_activity(&p, "W", LONG_LEASE).await;
    let claim = OrchestrationClaim {
        owner: "R".to_owned(),
        lease_ms: LONG_LEASE,
        max: 10,
        known: KnownHistories::new(|id| (id == "woken").then_some((1, 2))),
        routing: everything(&p).await,
    };
    let (recorded, claimed) = p
        .complete_activities_and_claim(
            vec![(work, ActivityResult::Completed(payload("8")))],
            &claim,
        )
        .await
        .unwrap();
    assert_eq!(recorded, vec![true]);
    // A backend that does not claim here leaves it to the dispatcher.
    for item in &claimed {
        assert_eq!(item.instance_id, "woken");
        assert_eq!((item.history_from, event_ids(&item.history)), (2, vec![2]));
    }
}
