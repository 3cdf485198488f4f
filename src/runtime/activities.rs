use super::*;

pub(super) async fn activity_loop(inner: Arc<Inner>) {
    let wakers = inner.provider.wakers().clone();
    // As for turns: reserve twice what the last claim found, so that a commit claiming its
    // own activities meanwhile still finds free slots.
    let mut wanted = 8;
    while !stopping(&inner) {
        let slots = reserve_workers(&inner, wanted);
        if slots == 0 {
            wait_for_capacity(&inner).await;
            continue;
        }
        match inner
            .provider
            .claim_activities(
                &inner.owner,
                inner.options.lease_ms,
                slots,
                &inner.routing(),
            )
            .await
        {
            Ok(items) if !items.is_empty() => {
                wanted = (items.len() * 2).clamp(8, 256);
                inc(&inner.metrics.activity_claims);
                add(&inner.metrics.activity_claimed_items, items.len() as u64);
                // As for turns: fewer than asked means nothing more was claimable.
                let drained = items.len() < slots;
                dispatch_activities(&inner, items).await;
                inner.worker_slots.release(slots);
                if drained {
                    idle_wait(&inner, &wakers.activities).await
                }
            }
            Ok(_) => {
                wanted = 8;
                inner.worker_slots.release(slots);
                idle_wait(&inner, &wakers.activities).await
            }
            Err(e) => {
                inner.worker_slots.release(slots);
                store_error_pause(&inner, "claiming activities", &e).await
            }
        }
    }
}

pub(super) async fn dispatch_activities(inner: &Arc<Inner>, items: Vec<ActivityItem>) {
    let mut deliveries = Vec::with_capacity(items.len());
    let mut started_events = Vec::new();
    let mut refused = Vec::new();
    for item in items {
        if !inner.registry.activities.contains(&item.name) {
            // Claimed as an orphan: it fails only by the not-registered rule, read against
            // the registry of names.
            let mut waited = None;
            if now_ms() - item.created_at >= inner.options.not_registered_grace_ms {
                let seen = inner
                    .provider
                    .last_registered(ACTIVITY_KIND, &item.name, None)
                    .await;
                if let (Ok(seen), Ok(now)) = (seen, inner.provider.now().await) {
                    waited = inner.options.unregistered_for(now, item.created_at, seen);
                }
            }
            if let Some(waited) = waited {
                let error = TaskError::with_code(
                    format!(
                        "activity '{}' is not registered (no runtime has had it for {waited} ms)",
                        item.name
                    ),
                    ErrorCode::NotRegistered,
                );
                refused.push((item, Some(error)));
            } else {
                refused.push((item, None));
            }
            continue;
        }
        if item.deliveries > inner.options.max_deliveries {
            inc(&inner.metrics.poisoned);
            info!(
                instance_id = %item.instance_id,
                activity = %item.name,
                deliveries = item.deliveries,
                "activity poisoned: delivered too many times without finishing; it fails"
            );
            let error = TaskError::with_code(
                format!(
                    "activity '{}' was delivered {} times without finishing (poison)",
                    item.name, item.deliveries
                ),
                ErrorCode::Poison,
            );
            refused.push((item, Some(error)));
            continue;
        }
        let input = RawValue::from_string(item.input.clone())
            .unwrap_or_else(|_| crate::engine::null_payload());
        deliveries.push(to_json(&ActivityDelivery {
            id: item.seq,
            instance_id: &item.instance_id,
            execution_id: item.execution_id,
            task: item.task,
            name: &item.name,
            input: &input,
            attempt: item.attempt,
            orchestration_name: &item.orchestration,
            orchestration_version: item.orchestration_version.as_deref(),
            session_id: item.session_id.as_deref(),
            tag: item.tag.as_deref(),
        }));
        let timeout = match &item.retry {
            Some(r) => {
                r.attempt_timeout(inner.options.activity_timeout_ms, item.created_at, now_ms())
            }
            None => inner.options.activity_timeout_ms,
        };
        let timeout = Duration::from_millis(timeout);
        if timeout < lease_period(inner) {
            // Shorter than the lease keeper's tick: give it its own timer.
            let (inner, seq, generation) = (inner.clone(), item.seq, item.generation);
            tokio::spawn(
                async move {
                    tokio::time::sleep(timeout).await;
                    time_out_activity(&inner, seq, generation).await;
                }
                .in_current_span(),
            );
        }
        if events_enabled(inner) {
            started_events.push((
                item.instance_id.clone(),
                activity_event("activityStarted", &item, item.attempt).to_raw(),
            ));
        }
        inner
            .provider
            .wakers()
            .instance_progressed(&item.instance_id);
        inner.running.lock().unwrap().insert(
            item.seq,
            RunningActivity {
                item,
                started: Instant::now(),
                timeout,
            },
        );
    }
    if !deliveries.is_empty() {
        add(&inner.metrics.activities_started, deliveries.len() as u64);
        inc(&inner.metrics.activity_batches);
        if !send(inner, &HostMessage::Activities { items: deliveries }) {
            warn!("the JavaScript side is gone; activities will run again later");
        }
        held::emit_in_order(inner, started_events);
    }
    for (item, error) in refused {
        match error {
            None => {
                // Waiting for code that knows the name is not a failed delivery: put the row
                // back as the same attempt with its delivery count reset.
                let _ = inner
                    .provider
                    .retry_activity(&item, now_ms() + 1_000, item.attempt)
                    .await;
            }
            Some(error) => {
                let _ = inner
                    .provider
                    .complete_activity(&item, ActivityResult::Failed(error))
                    .await;
            }
        }
    }
}

pub(super) fn parse_activity_result(text: &str) -> ActivityResult {
    #[derive(serde::Deserialize)]
    struct Settled {
        #[serde(default)]
        ok: Option<Payload>,
        #[serde(default)]
        err: Option<TaskError>,
    }
    match serde_json::from_str::<Settled>(text) {
        Ok(Settled { err: Some(e), .. }) => ActivityResult::Failed(e),
        Ok(Settled { ok, .. }) => {
            ActivityResult::Completed(ok.unwrap_or_else(crate::engine::null_payload))
        }
        Err(e) => ActivityResult::Failed(TaskError::with_code(
            format!("the activity's result could not be read: {e}"),
            ErrorCode::InvalidArgument,
        )),
    }
}

/// Most activity outcomes recorded in one store call.
pub(super) const MAX_OUTCOME_BATCH: usize = 256;

pub(super) async fn completion_loop(
    inner: Arc<Inner>,
    mut rx: mpsc::UnboundedReceiver<(i64, String)>,
) {
    while let Some(first) = rx.recv().await {
        // Whatever else has settled meanwhile goes in the same store call (no waiting for more).
        let mut settled = vec![first];
        while settled.len() < MAX_OUTCOME_BATCH {
            match rx.try_recv() {
                Ok(next) => settled.push(next),
                Err(_) => break,
            }
        }
        let mut outcomes = Vec::with_capacity(settled.len());
        for (id, text) in settled {
            let removed = {
                let mut running = inner.running.lock().unwrap();
                let removed = running.remove(&id);
                if removed.is_some() {
                    inner.settling.fetch_add(1, Ordering::SeqCst);
                }
                removed
            };
            // Not running: abandoned (shutdown or lost lease), not ours to record.
            if let Some(running) = removed {
                outcomes.push((running.item, parse_activity_result(&text)));
            }
        }
        if outcomes.is_empty() {
            continue;
        }
        let inner = inner.clone();
        tokio::spawn(
            async move {
                let n = outcomes.len();
                settle_activities(&inner, outcomes).await;
                inner.settling.fetch_sub(n, Ordering::SeqCst);
                // A dispatcher short of slots waits for this.
                inner.progress.notify_waiters();
            }
            .in_current_span(),
        );
    }
}

/// Schedules a failed attempt again if its policy allows; `false` when the failure is final.
pub(super) async fn retry_if_allowed(
    inner: &Inner,
    item: &ActivityItem,
    error: &TaskError,
) -> bool {
    let Some(policy) = item
        .retry
        .as_ref()
        .filter(|p| item.attempt < p.max_attempts)
    else {
        return false;
    };
    let mut delay = policy.delay_before(item.attempt + 1);
    if policy.jitter && delay > 0 {
        delay = rand::random_range(delay / 2..=delay);
    }
    let retry_at = now_ms().saturating_add(delay.min(i64::MAX as u64) as i64);
    if policy.out_of_time(item.created_at, retry_at) {
        info!(
            instance_id = %item.instance_id,
            activity = %item.name,
            attempt = item.attempt,
            total_timeout_ms = policy.total_timeout_ms,
            "activity attempt failed and the retry would start after the total timeout; it fails"
        );
        return false;
    }
    inc(&inner.metrics.activity_retries);
    info!(
        instance_id = %item.instance_id,
        activity = %item.name,
        attempt = item.attempt,
        next_attempt = item.attempt + 1,
        max_attempts = policy.max_attempts,
        delay_ms = delay,
        error = %error.message,
        "activity attempt failed; retrying"
    );
    // (Policies are checked in JavaScript, delays at most 100 years, but one stored by an
    // older version may ask for more: `retry_at` saturates rather than overflow.)
    // Like a result, a retry finished while the store is unreachable is recorded once it is
    // back: giving the row up would run the failed attempt again.
    let mut pause = Duration::from_millis(100);
    let recorded = loop {
        match inner
            .provider
            .retry_activity(item, retry_at, item.attempt + 1)
            .await
        {
            Err(e) if e.is_unavailable() && !stopping(inner) => {
                inc(&inner.metrics.store_errors);
                debug!(error = %e, "the store is unreachable; the activity retry is kept until it returns");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = inner.stop.notified() => {}
                }
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            other => break other,
        }
    };
    match recorded {
        Ok(true) => {
            inner
                .provider
                .wakers()
                .instance_progressed(&item.instance_id);
            if events_enabled(inner) {
                let mut l = activity_event("activityRetried", item, item.attempt + 1);
                l.retry_at = Some(retry_at);
                l.error = Some(error);
                emit_events(inner, &[l.to_raw()]);
            }
        }
        Ok(false) => {
            if !inner.canceled_running.lock().unwrap().remove(&item.seq) {
                inc(&inner.metrics.lease_losses);
            }
        }
        Err(e) => {
            inc(&inner.metrics.store_errors);
            warn!(error = %e, "recording an activity retry failed");
        }
    }
    true
}

/// Retries what its policy allows and records the other outcomes in one store call.
pub(super) async fn settle_activities(
    inner: &Arc<Inner>,
    outcomes: Vec<(ActivityItem, ActivityResult)>,
) {
    let mut finals = Vec::with_capacity(outcomes.len());
    for (item, result) in outcomes {
        if let ActivityResult::Failed(error) = &result {
            if retry_if_allowed(inner, &item, error).await {
                continue;
            }
        }
        finals.push((item, result));
    }
    let failed: Vec<Option<FailureCause>> = finals
        .iter()
        .map(|(_, r)| match r {
            ActivityResult::Failed(e) => Some(FailureCause::of(e.code.as_deref())),
            ActivityResult::Completed(_) => None,
        })
        .collect();
    if finals.is_empty() {
        return;
    }
    // Kept to give the rows back if the store call fails (without copying their inputs).
    let items: Vec<ActivityItem> = finals
        .iter()
        .map(|(item, _)| ActivityItem {
            seq: item.seq,
            generation: item.generation,
            instance_id: item.instance_id.clone(),
            execution_id: item.execution_id,
            task: item.task,
            name: item.name.clone(),
            input: String::new(),
            attempt: item.attempt,
            retry: None,
            deliveries: item.deliveries,
            created_at: item.created_at,
            orchestration: String::new(),
            orchestration_version: None,
            session_id: None,
            tag: None,
        })
        .collect();
    // Results that finish while the store is unreachable are kept and recorded once it is
    // back (fenced as always: a lease taken over meanwhile records nothing), rather than
    // thrown away and run again. Given up only when the runtime stops.
    let mut pause = Duration::from_millis(100);
    let results: Vec<ActivityResult> = finals.iter().map(|(_, r)| r.clone()).collect();
    let mut attempt = finals;
    loop {
        match record_outcomes(inner, attempt, &items, &failed).await {
            Ok(()) => return,
            Err(e) if e.is_unavailable() && !stopping(inner) => {
                inc(&inner.metrics.store_errors);
                debug!(error = %e, activities = items.len(), "the store is unreachable; activity results are kept until it returns");
                // The store reads an item's identity, never its input.
                attempt = items.iter().cloned().zip(results.iter().cloned()).collect();
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = inner.stop.notified() => {}
                }
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                inc(&inner.metrics.store_errors);
                warn!(error = %e, activities = items.len(), "recording activity results failed; they will run again");
                for item in &items {
                    let _ = inner.provider.abandon_activity(item, 1_000).await;
                }
                return;
            }
        }
    }
}

/// One attempt at recording final outcomes (claiming the instances they wake on the way).
async fn record_outcomes(
    inner: &Arc<Inner>,
    finals: Vec<(ActivityItem, ActivityResult)>,
    items: &[ActivityItem],
    failed: &[Option<FailureCause>],
) -> Result<(), StoreError> {
    // The instances these results wake may be claimed in the same store call, within free
    // turn slots (reserved until the turns are in flight).
    let slots = reserve_turns(inner, finals.len());
    let claim = inner.orchestration_claim(slots);
    let settled = inner
        .provider
        .complete_activities_and_claim(finals, &claim)
        .await;
    let settled = match settled {
        Ok((recorded, claimed)) => {
            // A result refused (lease lost, or the activity cancelled meanwhile) is not an
            // outcome of this runtime's.
            let mut canceled = inner.canceled_running.lock().unwrap();
            for ((recorded, failed), item) in recorded.iter().zip(failed).zip(items) {
                let was_canceled = canceled.remove(&item.seq);
                match (recorded, failed) {
                    (false, _) if was_canceled => {}
                    (false, _) => {
                        inc(&inner.metrics.lease_losses);
                        inc(&inner.metrics.activity_infra_errors);
                    }
                    (true, Some(cause)) => inner.metrics.activity_failed(*cause),
                    (true, None) => inc(&inner.metrics.activities_completed),
                }
            }
            drop(canceled);
            if !claimed.is_empty() {
                inc(&inner.metrics.claims);
                add(&inner.metrics.claimed_items, claimed.len() as u64);
                add(
                    &inner.metrics.turns_claimed_on_completion,
                    claimed.len() as u64,
                );
                dispatch_turns(inner, claimed);
            }
            Ok(())
        }
        Err(e) => Err(e),
    };
    inner.turn_slots.release(slots);
    settled
}
