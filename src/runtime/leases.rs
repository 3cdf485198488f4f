use super::*;

pub(super) fn lease_period(inner: &Inner) -> Duration {
    Duration::from_millis((inner.options.lease_ms / 3).max(10) as u64)
}

/// Fails an activity attempt that ran past its timeout (if that attempt is still running).
pub(super) async fn time_out_activity(inner: &Arc<Inner>, seq: i64, generation: i64) {
    let removed = {
        let mut running = inner.running.lock().unwrap();
        match running.get(&seq) {
            Some(r) if r.item.generation == generation => running.remove(&seq),
            _ => None,
        }
    };
    let Some(r) = removed else { return };
    inner.settling.fetch_add(1, Ordering::SeqCst);
    abort_in_js(inner, vec![seq], "the activity timed out");
    let error = TaskError::with_code(
        format!(
            "activity '{}' timed out after {} ms",
            r.item.name,
            r.timeout.as_millis()
        ),
        ErrorCode::Timeout,
    );
    settle_activities(inner, vec![(r.item, ActivityResult::Failed(error))]).await;
    inner.settling.fetch_sub(1, Ordering::SeqCst);
    inner.progress.notify_waiters();
    inner.provider.wakers().activities.notify_one();
}

/// Renews the leases of in-flight work (so a busy JavaScript thread does not by itself
/// cause a second execution) and times out hung activities.
pub(super) async fn lease_loop(inner: Arc<Inner>) {
    let every = lease_period(&inner);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = inner.stop.notified() => {}
        }
        let mut leases: Vec<Lease> = {
            let lost_turns = inner.lost_turns.lock().unwrap();
            inner
                .inflight
                .lock()
                .unwrap()
                .iter()
                .filter(|(id, _)| !lost_turns.contains(*id))
                .map(|(id, g)| Lease::Instance(id.clone(), *g))
                .collect()
        };
        let mut timed_out = Vec::new();
        {
            let running = inner.running.lock().unwrap();
            for r in running.values() {
                if r.started.elapsed() > r.timeout {
                    timed_out.push((r.item.seq, r.item.generation));
                } else {
                    leases.push(Lease::Activity(r.item.seq, r.item.generation));
                }
            }
        }
        for (seq, generation) in timed_out {
            time_out_activity(&inner, seq, generation).await;
        }
        if leases.is_empty() {
            if stopping(&inner) && inner.inflight.lock().unwrap().is_empty() {
                // Keep renewing while shutdown drains; stop once nothing is left.
                if inner.running.lock().unwrap().is_empty() {
                    return;
                }
            }
            continue;
        }
        match inner
            .provider
            .renew_leases(&leases, inner.options.lease_ms)
            .await
        {
            Ok(lost) => {
                add(
                    &inner.metrics.lease_renewals,
                    leases.len().saturating_sub(lost.len()) as u64,
                );
                // A lease released meanwhile (its commit or result recorded while the renewal
                // ran) is reported too: only work still held here counts as lost.
                for lease in lost {
                    match lease {
                        Lease::Activity(seq, _) => {
                            let removed = inner.running.lock().unwrap().remove(&seq);
                            let canceled = inner.canceled_running.lock().unwrap().remove(&seq);
                            if removed.is_some() {
                                // Shutdown may be waiting for running work to drain.
                                inner.progress.notify_waiters();
                                if !canceled {
                                    inc(&inner.metrics.lease_losses);
                                    warn!(
                                        seq,
                                        "an activity's lease was lost; it may run elsewhere"
                                    );
                                    abort_in_js(&inner, vec![seq], "the activity's lease was lost");
                                }
                            }
                        }
                        Lease::Instance(id, generation) => {
                            if inner.inflight.lock().unwrap().get(&id) == Some(&generation) {
                                inner.lost_turns.lock().unwrap().insert(id);
                            }
                        }
                    }
                }
            }
            Err(e) => {
                inc(&inner.metrics.store_errors);
                // Work goes on; the leases are renewed once the store is back.
                if e.is_unavailable() {
                    debug!(error = %e, "renewing leases failed");
                } else {
                    warn!(error = %e, "renewing leases failed");
                }
            }
        }
    }
}
