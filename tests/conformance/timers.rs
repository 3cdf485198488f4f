//! Timers: invisible until they fire.

use reprise::engine::{Event, Message, TurnOutcome};
use reprise::store::SharedProvider;

use super::{
    advance, assert_nothing_claimable, claim, claim_only, instance_ids, schedule_timer, seqs,
    start_outcome, start_request, turn_commit, LONG_LEASE,
};

/// A timer is a `TimerFired` message invisible until `fire_at`; `next_due` reports it.
pub async fn timer_visibility(p: SharedProvider) {
    assert!(p
        .create_instance(&start_request("t", "Flow", "null"))
        .await
        .unwrap());
    let a = claim_only(&p, "A", LONG_LEASE, "t").await;
    let now = p.now().await.unwrap();
    let fire_at = now + 10_000;
    let later = now + 10 * LONG_LEASE;
    let mut outcome = start_outcome(&a);
    schedule_timer(&mut outcome, 1, fire_at);
    schedule_timer(&mut outcome, 2, later);
    p.commit_turn(turn_commit(&a, outcome)).await.unwrap();

    assert_eq!(p.next_due().await.unwrap(), Some(fire_at));
    let items = claim(&p, "B", LONG_LEASE).await;
    assert!(
        items.is_empty(),
        "a timer is not claimable before it fires, got {:?}",
        instance_ids(&items)
    );
    advance(&p, 9_000).await;
    let items = claim(&p, "B", LONG_LEASE).await;
    assert!(items.is_empty(), "a timer is not claimable before it fires");
    assert_eq!(p.next_due().await.unwrap(), Some(fire_at));

    advance(&p, 1_050).await;
    assert_eq!(
        p.next_due().await.unwrap(),
        Some(later),
        "only the later timer is still in the future"
    );
    let b = claim_only(&p, "B", LONG_LEASE, "t").await;
    assert!(b.now >= fire_at);
    match &b.messages[..] {
        [m] => {
            assert!(matches!(
                m.message,
                Message::TimerFired {
                    execution_id: 1,
                    task: 1
                }
            ));
            assert_eq!(m.deliveries, 1);
        }
        other => panic!("expected the one fired timer, got {other:?}"),
    }

    // Canceling the later timer removes it.
    let outcome = TurnOutcome {
        events: vec![
            Event::TimerFired { task: 1 },
            Event::TaskCanceled { task: 2 },
        ],
        consumed: seqs(&b),
        canceled_timers: vec![2],
        ..Default::default()
    };
    p.commit_turn(turn_commit(&b, outcome)).await.unwrap();
    assert_eq!(p.next_due().await.unwrap(), None);
    assert_nothing_claimable(&p, "C", "every timer is consumed or canceled").await;
}
