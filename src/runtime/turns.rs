use super::*;

pub(super) async fn orchestration_loop(inner: Arc<Inner>) {
    let wakers = inner.provider.wakers().clone();
    // How many slots a claim reserves: twice what the last claim found (8 at least, 128 at
    // most). A claim holds its reservation until it returns; reserving every free slot for
    // a claim that finds one instance would leave none to a completion arriving meanwhile,
    // which then cannot claim the instance it woke in its own store call.
    let mut wanted = 8;
    while !stopping(&inner) {
        let slots = reserve_turns(&inner, wanted);
        if slots == 0 {
            wait_for_capacity(&inner).await;
            continue;
        }
        match inner
            .provider
            .claim_orchestrations(&inner.orchestration_claim(slots))
            .await
        {
            Ok(items) if !items.is_empty() => {
                wanted = (items.len() * 2).clamp(8, 128);
                inc(&inner.metrics.claims);
                add(&inner.metrics.claimed_items, items.len() as u64);
                // Fewer than asked: nothing more was claimable. Work that arrives meanwhile
                // leaves a wake-up behind, so waiting here loses none.
                let drained = items.len() < slots;
                dispatch_turns(&inner, items);
                inner.turn_slots.release(slots);
                if drained {
                    idle_wait(&inner, &wakers.orchestrations).await
                }
            }
            Ok(_) => {
                wanted = 8;
                inner.turn_slots.release(slots);
                idle_wait(&inner, &wakers.orchestrations).await
            }
            Err(e) => {
                inner.turn_slots.release(slots);
                store_error_pause(&inner, "claiming orchestrations", &e).await
            }
        }
    }
}

pub(super) enum Prepared {
    Run(Box<Turn>, OrchestrationItem),
    Commit(Box<TurnOutcome>, OrchestrationItem),
    Abandon(OrchestrationItem, i64, bool),
    /// The claim read the history after the cached state, which this turn cannot use:
    /// read the whole history and plan again.
    NeedHistory(OrchestrationItem),
    /// Nothing here has the orchestration (name, version): it fails as not registered
    /// if no runtime has had it for the grace period, else it waits.
    NotRegistered(Box<Turn>, OrchestrationItem, String, Option<String>),
}

pub(super) fn plan_item(inner: &Inner, mut item: OrchestrationItem) -> Prepared {
    // A start message without a version gets the highest registered one.
    let mut missing = None;
    for m in item.messages.iter_mut() {
        if let Message::Start { name, version, .. } = &mut m.message {
            match inner.registry.resolve(name, version.as_deref()) {
                Some(v) => *version = Some(v),
                None => missing = Some((name.clone(), version.clone())),
            }
        }
    }
    let position = (
        item.execution_id,
        item.history_len(),
        item.history.last().map_or(0, |r| r.ts),
    );
    let partial = item.history_from > 1;
    let (incremental, state) = {
        let mut cache = inner.cache.lock().unwrap();
        let current = cache.is_current(&item.instance_id, position);
        // The tail read from a known position is that position's own event: nothing new.
        let state = (current && partial && item.history.len() == 1)
            .then(|| cache.take_state(&item.instance_id, position))
            .flatten();
        (current, state)
    };
    if partial && state.is_none() {
        return Prepared::NeedHistory(item);
    }
    let plan = prepare(TurnInput {
        instance_id: &item.instance_id,
        execution_id: item.execution_id,
        history: if state.is_some() { &[] } else { &item.history },
        state,
        messages: &item.messages,
        now: item.now,
        incremental,
    });
    match plan {
        Plan::NotStarted => Prepared::Abandon(item, 1_000, false),
        Plan::Unsupported(reason) => {
            warn!(instance_id = %item.instance_id, %reason, "instance left for a newer runtime");
            Prepared::Abandon(item, 5_000, false)
        }
        Plan::Commit(outcome) => Prepared::Commit(outcome, item),
        Plan::NeedHistory => Prepared::NeedHistory(item),
        Plan::Run(turn) => {
            if inner
                .registry
                .resolve(&turn.name, turn.version.as_deref())
                .is_none()
            {
                missing = Some((turn.name.clone(), turn.version.clone()));
            }
            if let Some((name, version)) = missing {
                // Claimed as an orphan, or a version no runtime has: it fails only once no
                // live runtime has had it for the grace period (checked in the store).
                if item.now - item.created_at < inner.options.not_registered_grace_ms {
                    debug!(instance_id = %item.instance_id, %name, "orchestration not registered here; waiting");
                    return Prepared::Abandon(item, 1_000, false);
                }
                return Prepared::NotRegistered(turn, item, name, version);
            }
            let worst = item
                .messages
                .iter()
                .map(|m| m.deliveries)
                .max()
                .unwrap_or(0);
            if worst > inner.options.max_deliveries {
                inc(&inner.metrics.poisoned);
                info!(
                    instance_id = %item.instance_id,
                    deliveries = worst,
                    "instance poisoned: a message was delivered too many times without a successful turn; it fails"
                );
                let error = TaskError::with_code(
                    format!(
                        "a message for this instance was delivered {worst} times without a successful turn (poison)"
                    ),
                    ErrorCode::Poison,
                );
                return Prepared::Commit(Box::new(turn.fail(error)), item);
            }
            Prepared::Run(turn, item)
        }
    }
}

/// Fails an instance no runtime can run by the not-registered rule
/// ([`RuntimeOptions::unregistered_for`], read against the registry of names); otherwise
/// it goes back to wait.
async fn fail_unregistered(
    inner: Arc<Inner>,
    turn: Turn,
    item: OrchestrationItem,
    name: String,
    version: Option<String>,
) {
    let last_seen = inner
        .provider
        .last_registered(ORCHESTRATION_KIND, &name, version.as_deref())
        .await;
    let waited = match last_seen {
        Ok(seen) => inner
            .options
            .unregistered_for(item.now, item.created_at, seen),
        Err(_) => None,
    };
    let Some(waited) = waited else {
        debug!(instance_id = %item.instance_id, %name, "orchestration had by a runtime lately; waiting");
        let _ = inner
            .provider
            .abandon_orchestration(&item.instance_id, item.generation, 1_000, false)
            .await;
        finish_inflight(&inner, &item.instance_id);
        return;
    };
    let what = match version {
        Some(v) => format!("orchestration '{name}' version {v}"),
        None => format!("orchestration '{name}'"),
    };
    let error = TaskError::with_code(
        format!("{what} is not registered (no runtime has had it for {waited} ms)"),
        ErrorCode::NotRegistered,
    );
    commit(&inner, item, turn.fail(error), None).await
}

pub(super) fn dispatch_turns(inner: &Arc<Inner>, items: Vec<OrchestrationItem>) {
    let mut activations = Vec::new();
    for item in items {
        add(
            &inner.metrics.history_events_read,
            item.history.len() as u64,
        );
        inner
            .inflight
            .lock()
            .unwrap()
            .insert(item.instance_id.clone(), item.generation);
        match plan_item(inner, item) {
            Prepared::Abandon(item, delay, count) => {
                let inner = inner.clone();
                tokio::spawn(
                    async move {
                        let _ = inner
                            .provider
                            .abandon_orchestration(&item.instance_id, item.generation, delay, count)
                            .await;
                        finish_inflight(&inner, &item.instance_id);
                    }
                    .in_current_span(),
                );
            }
            Prepared::Commit(outcome, item) => {
                let inner = inner.clone();
                tokio::spawn(
                    async move { commit(&inner, item, *outcome, None).await }.in_current_span(),
                );
            }
            Prepared::NeedHistory(item) => {
                let inner = inner.clone();
                tokio::spawn(
                    async move { replan_with_history(inner, item).await }.in_current_span(),
                );
            }
            Prepared::NotRegistered(turn, item, name, version) => {
                let inner = inner.clone();
                tokio::spawn(
                    async move { fail_unregistered(inner, *turn, item, name, version).await }
                        .in_current_span(),
                );
            }
            Prepared::Run(turn, item) => {
                let token = inner.next_token.fetch_add(1, Ordering::Relaxed);
                let (tx, rx) = oneshot::channel();
                inner.turns.lock().unwrap().insert(token, tx);
                if turn.full_replay {
                    inc(&inner.metrics.full_replays);
                }
                add(&inner.metrics.jobs_sent, turn.jobs.len() as u64);
                let keep = {
                    let mut cache = inner.cache.lock().unwrap();
                    cache.begin_turn(&item.instance_id);
                    cache.enabled()
                };
                activations.push(to_json(&Activation {
                    token,
                    instance_id: &item.instance_id,
                    execution_id: item.execution_id,
                    name: &turn.name,
                    version: turn.version.as_deref(),
                    fresh: turn.full_replay,
                    keep,
                    replay_count: turn.replay_count,
                    jobs: &turn.jobs,
                }));
                let span = info_span!(
                    "turn",
                    instance_id = %item.instance_id,
                    execution_id = item.execution_id,
                    orchestration = %turn.name,
                    replaying = turn.full_replay && turn.replay_count > 0,
                );
                let inner = inner.clone();
                tokio::spawn(async move { run_turn(inner, turn, item, rx).await }.instrument(span));
            }
        }
    }
    if activations.is_empty() {
        return;
    }
    add(&inner.metrics.activations, activations.len() as u64);
    inc(&inner.metrics.driver_calls);
    let evict = inner.cache.lock().unwrap().take_evictions();
    if !send(inner, &HostMessage::Turns { evict, activations }) {
        warn!("the JavaScript driver is gone; turns will be retried");
        inner.turns.lock().unwrap().clear();
    }
}

/// Reads the whole history of a claimed instance and plans its turn again.
async fn replan_with_history(inner: Arc<Inner>, mut item: OrchestrationItem) {
    match inner
        .provider
        .history(&item.instance_id, Some(item.execution_id))
        .await
    {
        Ok(history) => {
            item.history = history;
            item.history_from = 1;
            dispatch_turns(&inner, vec![item]);
        }
        Err(e) => {
            warn!(error = %e, instance_id = %item.instance_id, "could not read the history for a turn; it will run again");
            inc(&inner.metrics.store_errors);
            let _ = inner
                .provider
                .abandon_orchestration(&item.instance_id, item.generation, 1_000, false)
                .await;
            finish_inflight(&inner, &item.instance_id);
        }
    }
}

pub(super) async fn run_turn(
    inner: Arc<Inner>,
    mut turn: Box<Turn>,
    item: OrchestrationItem,
    rx: oneshot::Receiver<String>,
) {
    let reply = tokio::time::timeout(Duration::from_millis(inner.options.max_turn_ms), rx).await;
    let reply: Result<TurnReply, String> = match reply {
        Ok(Ok(text)) => {
            serde_json::from_str(&text).map_err(|e| format!("unreadable driver reply: {e}"))
        }
        Ok(Err(_)) => Err("the turn was abandoned".into()),
        Err(_) => Err(format!(
            "the driver did not answer within {} ms",
            inner.options.max_turn_ms
        )),
    };
    let outcome = match reply {
        Ok(TurnReply {
            fault: None,
            commands,
        }) => match turn.finish(commands) {
            Ok(outcome) => {
                let state = turn.into_state();
                return commit(&inner, item, outcome, Some(Some(state))).await;
            }
            Err(e) => {
                if e.code() == ErrorCode::Nondeterminism {
                    inc(&inner.metrics.nondeterminism_errors);
                }
                warn!(error = %e, "turn failed the replay check");
                turn.fail(TaskError::with_code(e.to_string(), e.code()))
            }
        },
        Ok(TurnReply {
            fault: Some(fault), ..
        })
        | Err(fault) => {
            warn!(%fault, "turn abandoned");
            inc(&inner.metrics.turns_abandoned);
            inner
                .cache
                .lock()
                .unwrap()
                .end_turn(&item.instance_id, None, None);
            let _ = inner
                .provider
                .abandon_orchestration(&item.instance_id, item.generation, 1_000, true)
                .await;
            finish_inflight(&inner, &item.instance_id);
            return;
        }
    };
    commit(&inner, item, outcome, Some(None)).await;
}

/// Commits a turn. `driven`: `Some` when the driver processed an activation for it (so its
/// cached generator moved), with the engine's state after the turn when it has one;
/// `None` when the turn was decided by the engine alone.
pub(super) async fn commit(
    inner: &Arc<Inner>,
    item: OrchestrationItem,
    outcome: TurnOutcome,
    driven: Option<Option<ExecutionState>>,
) {
    let history_len = item.history_len() + outcome.events.len() as u64;
    let appended = !outcome.events.is_empty();
    let terminal = outcome.terminal.clone();
    let started = outcome.started.is_some();
    let children = outcome.starts.iter().filter(|s| s.parent.is_some()).count() as u64;
    let canceled: Vec<u32> = outcome.canceled_activities.clone();
    let first_event_id = item.history_len() + 1;
    let events: Vec<Json> = if events_enabled(inner) {
        outcome
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                Lifecycle::of_event(
                    e,
                    &item.instance_id,
                    item.execution_id,
                    first_event_id + i as u64,
                    item.now,
                )
                .to_raw()
            })
            .collect()
    } else {
        Vec::new()
    };
    let direct = reserve_direct_claims(inner, &outcome);
    let claim = (direct > 0).then(|| DirectClaim {
        owner: inner.owner.clone(),
        lease_ms: inner.options.lease_ms,
        count: direct,
    });
    let commit = TurnCommit {
        instance_id: item.instance_id.clone(),
        execution_id: item.execution_id,
        generation: item.generation,
        now: item.now,
        first_event_id,
        outcome,
        claim,
    };
    let holding = !events.is_empty();
    if holding {
        held::hold(inner, &item.instance_id);
    }
    let committed = inner.provider.commit_turn(commit).await;
    if holding {
        held::release(inner, &item.instance_id, &events, committed.is_ok());
    }
    match committed {
        Ok(claimed) => {
            inc(&inner.metrics.turns_committed);
            // The cache learns the new position before the activities this commit claimed
            // can run: their results may wake the instance's next turn at once.
            {
                let mut cache = inner.cache.lock().unwrap();
                if let Some(state) = driven {
                    // Committed events all carry the turn's time.
                    let last_ts = if appended {
                        item.now
                    } else {
                        item.history.last().map_or(0, |r| r.ts)
                    };
                    let advanced =
                        terminal
                            .is_none()
                            .then_some((item.execution_id, history_len, last_ts));
                    cache.end_turn(&item.instance_id, advanced, state);
                } else if appended || terminal.is_some() {
                    // History moved without the driver: its generator (if any) is stale.
                    cache.evict(&item.instance_id);
                }
            }
            if !claimed.is_empty() {
                add(
                    &inner.metrics.activities_claimed_on_commit,
                    claimed.len() as u64,
                );
                dispatch_activities(inner, claimed).await;
            }
            inner.worker_slots.release(direct);
            if started {
                inc(&inner.metrics.orch_starts);
            }
            add(&inner.metrics.suborchestration_calls, children);
            match &terminal {
                Some(Terminal::Completed(_)) => inc(&inner.metrics.orchestrations_completed),
                Some(Terminal::Failed(e)) => inner
                    .metrics
                    .orchestration_failed(FailureCause::of(e.code.as_deref())),
                Some(Terminal::ContinuedAsNew) => inc(&inner.metrics.orch_continue_as_new),
                None => {}
            }
            // Cancelled activities learn of it after the commit that removed them.
            let aborted: Vec<i64> = inner
                .running
                .lock()
                .unwrap()
                .values()
                .filter(|r| {
                    r.item.instance_id == item.instance_id
                        && r.item.execution_id == item.execution_id
                        && (terminal.is_some() || canceled.contains(&r.item.task))
                })
                .map(|r| r.item.seq)
                .collect();
            inner
                .canceled_running
                .lock()
                .unwrap()
                .extend(aborted.iter().copied());
            abort_in_js(
                inner,
                aborted,
                "the orchestration no longer waits for this activity",
            );
        }
        Err(e) => {
            inner.worker_slots.release(direct);
            {
                let mut cache = inner.cache.lock().unwrap();
                if driven.is_some() {
                    cache.end_turn(&item.instance_id, None, None);
                } else {
                    cache.evict(&item.instance_id);
                }
            }
            match e {
                StoreError::LeaseLost(_) => {
                    inc(&inner.metrics.lease_losses);
                    warn!(instance_id = %item.instance_id, "turn commit refused: the instance's lease was lost to another claim");
                }
                e if e.is_unavailable() => {
                    inc(&inner.metrics.store_errors);
                    debug!(error = %e, instance_id = %item.instance_id, "turn commit failed; the turn will run again");
                }
                _ => {
                    inc(&inner.metrics.store_errors);
                    warn!(error = %e, instance_id = %item.instance_id, "turn commit failed; the turn will run again");
                }
            }
            let _ = inner
                .provider
                .abandon_orchestration(&item.instance_id, item.generation, 0, true)
                .await;
        }
    }
    finish_inflight(inner, &item.instance_id);
}

pub(super) fn finish_inflight(inner: &Inner, instance_id: &str) {
    inner.inflight.lock().unwrap().remove(instance_id);
    inner.lost_turns.lock().unwrap().remove(instance_id);
    inner.progress.notify_waiters();
    // Freed capacity may let the dispatcher claim more.
    inner.provider.wakers().orchestrations.notify_one();
}
