use super::*;

/// Capacity shared by a dispatcher loop and the shortcuts that claim work along the way (a
/// commit claiming its activities, a completion claiming the instances it woke). Every
/// claim reserves its slots first, under one lock, so two claimers never take the same slot;
/// the reservation is released once the work is counted as in flight.
#[derive(Default)]
pub(super) struct Slots {
    pub(super) reserved: Mutex<usize>,
}

impl Slots {
    /// Reserves up to `wanted` of the slots below `limit` not taken by `in_flight()` or by
    /// other reservations.
    pub(super) fn reserve(
        &self,
        limit: usize,
        in_flight: impl FnOnce() -> usize,
        wanted: usize,
    ) -> usize {
        let mut reserved = self.reserved.lock().unwrap();
        let free = limit.saturating_sub(in_flight() + *reserved).min(wanted);
        *reserved += free;
        free
    }

    pub(super) fn release(&self, n: usize) {
        let mut reserved = self.reserved.lock().unwrap();
        *reserved = reserved.saturating_sub(n);
    }
}

/// No free slot: wait for progress (or a short while) before looking again.
pub(super) async fn wait_for_capacity(inner: &Inner) {
    tokio::select! {
        _ = inner.progress.notified() => {}
        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
    }
}

pub(super) fn reserve_workers(inner: &Inner, wanted: usize) -> usize {
    if stopping(inner) {
        return 0;
    }
    inner.worker_slots.reserve(
        inner.options.worker_concurrency,
        || inner.running.lock().unwrap().len(),
        wanted,
    )
}

pub(super) fn reserve_turns(inner: &Inner, wanted: usize) -> usize {
    if stopping(inner) {
        return 0;
    }
    inner.turn_slots.reserve(
        inner.options.orchestration_concurrency,
        || inner.inflight.lock().unwrap().len(),
        wanted,
    )
}

/// How many of a turn's first activities its commit may claim for this runtime: those this
/// process can run, within free worker slots (reserved until they are running).
pub(super) fn reserve_direct_claims(inner: &Inner, outcome: &TurnOutcome) -> usize {
    let runnable = outcome
        .activities
        .iter()
        .take_while(|a| {
            inner.registry.activities.contains(&a.name)
                && a.session_id.is_none()
                && inner.registry.tags.accepts(a.tag.as_deref())
        })
        .count();
    if runnable == 0 {
        return 0;
    }
    reserve_workers(inner, runnable)
}
