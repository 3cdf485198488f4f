//! The store that fails: wraps the store a runtime uses and injects one fault at the
//! runtime's N-th work call.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::engine::{HistoryRow, Message, RewindPlan, StartRequest};
use crate::store::*;

#[derive(Debug, Clone, Copy)]
pub(super) enum Fault {
    /// The call fails without taking effect.
    FailBefore,
    /// The call takes effect, then fails (its answer is lost).
    FailAfter,
    /// The process dies before the call.
    KillBefore,
    /// The call takes effect, then the process dies.
    KillAfter,
}

/// Wraps the store a runtime uses; counts the runtime's work calls (not its periodic ones,
/// whose number depends on timing) and injects `fault` at call `at`.
pub(super) struct FaultyStore {
    inner: SharedProvider,
    pub(super) calls: AtomicU64,
    at: u64,
    fault: Fault,
    pub(super) dead: AtomicBool,
    pub(super) hit: Mutex<Option<&'static str>>,
}

impl FaultyStore {
    pub(super) fn new(inner: SharedProvider, at: u64, fault: Fault) -> Arc<Self> {
        Arc::new(FaultyStore {
            inner,
            calls: AtomicU64::new(0),
            at,
            fault,
            dead: AtomicBool::new(false),
            hit: Mutex::new(None),
        })
    }

    async fn call<T, F: Future<Output = Result<T>>>(
        &self,
        name: &'static str,
        counted: bool,
        f: impl FnOnce() -> F,
    ) -> Result<T> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        if !counted || self.calls.fetch_add(1, Ordering::SeqCst) != self.at {
            return f().await;
        }
        *self.hit.lock().unwrap() = Some(name);
        let injected = || StoreError::Unavailable(format!("injected fault at {name}"));
        match self.fault {
            Fault::FailBefore => Err(injected()),
            Fault::FailAfter => {
                let _ = f().await;
                Err(injected())
            }
            Fault::KillBefore => {
                self.dead.store(true, Ordering::SeqCst);
                Err(StoreError::Closed)
            }
            Fault::KillAfter => {
                let _ = f().await;
                self.dead.store(true, Ordering::SeqCst);
                Err(StoreError::Closed)
            }
        }
    }
}

#[async_trait]
impl Provider for FaultyStore {
    // Jobs are JavaScript's (their attempts are activities): not part of the simulated
    // workload, so passed through.
    async fn job_begin(&self, fence: JobFence, key: Option<String>) -> Result<JobBegin> {
        self.inner.job_begin(fence, key).await
    }
    async fn job_write(&self, fence: JobFence, writes: Vec<JobWrite>) -> Result<bool> {
        self.inner.job_write(fence, writes).await
    }
    async fn job_await(
        &self,
        fence: JobFence,
        name: String,
        event: String,
        deadline: Option<i64>,
        give_up: bool,
    ) -> Result<JobAwait> {
        self.inner
            .job_await(fence, name, event, deadline, give_up)
            .await
    }
    async fn job_emit(&self, event: String, payload: String) -> Result<u64> {
        self.inner.job_emit(event, payload).await
    }
    async fn job_clear_event(&self, event: String) -> Result<bool> {
        self.inner.job_clear_event(event).await
    }
    async fn job_queue_key(&self, instance_id: String, key: String) -> Result<()> {
        self.inner.job_queue_key(instance_id, key).await
    }
    async fn job_release(&self, instance_id: String) -> Result<()> {
        self.inner.job_release(instance_id).await
    }
    async fn job_reset(&self, instance_id: String) -> Result<u64> {
        self.inner.job_reset(instance_id).await
    }
    async fn job_state(&self, instance_id: String) -> Result<JobState> {
        self.inner.job_state(instance_id).await
    }
    async fn job_logs(&self, id: String, after_seq: i64, limit: u32) -> Result<Vec<JobLog>> {
        self.inner.job_logs(id, after_seq, limit).await
    }

    fn wakers(&self) -> &Arc<Wakers> {
        self.inner.wakers()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn now(&self) -> Result<i64> {
        self.inner.now().await
    }
    async fn shift_clock(&self, by_ms: i64) -> Result<()> {
        self.inner.shift_clock(by_ms).await
    }
    async fn create_instance(&self, start: &StartRequest) -> Result<bool> {
        self.inner.create_instance(start).await
    }
    async fn create_instances(&self, starts: &[StartRequest]) -> Result<Vec<bool>> {
        self.inner.create_instances(starts).await
    }
    async fn enqueue(&self, instance_id: &str, message: &Message) -> Result<()> {
        self.inner.enqueue(instance_id, message).await
    }
    async fn instance(&self, instance_id: &str) -> Result<Option<InstanceInfo>> {
        self.inner.instance(instance_id).await
    }
    async fn history(&self, id: &str, execution_id: Option<u64>) -> Result<Vec<HistoryRow>> {
        self.call("history", true, || self.inner.history(id, execution_id))
            .await
    }
    async fn history_after(&self, id: &str, execution: u64, after: u64) -> Result<Vec<HistoryRow>> {
        self.inner.history_after(id, execution, after).await
    }
    async fn delete_instance(&self, instance_id: &str, force: bool) -> Result<Deletion> {
        self.inner.delete_instance(instance_id, force).await
    }
    async fn rewind_instance(&self, id: &str, plan: &RewindPlan, updated_at: i64) -> Result<bool> {
        self.inner.rewind_instance(id, plan, updated_at).await
    }
    async fn list_instances(&self, filter: &InstanceFilter) -> Result<InstancePage> {
        self.inner.list_instances(filter).await
    }
    async fn list_executions(&self, instance_id: &str) -> Result<Vec<ExecutionInfo>> {
        self.inner.list_executions(instance_id).await
    }
    async fn system_metrics(&self) -> Result<SystemMetrics> {
        self.inner.system_metrics().await
    }
    async fn activity_attempts(&self, instance_id: &str) -> Result<Vec<ActivityAttempt>> {
        self.inner.activity_attempts(instance_id).await
    }
    async fn queue_depths(&self) -> Result<QueueDepths> {
        self.call("queue_depths", false, || self.inner.queue_depths())
            .await
    }

    async fn kv_values(&self, instance_id: &str, key: Option<&str>) -> Result<Vec<KvEntry>> {
        self.call("kv_values", false, || {
            self.inner.kv_values(instance_id, key)
        })
        .await
    }

    async fn instance_stats(&self, instance_id: &str) -> Result<Option<InstanceStats>> {
        self.call("instance_stats", false, || {
            self.inner.instance_stats(instance_id)
        })
        .await
    }
    async fn expire_unknown_events(&self) -> Result<u64> {
        self.call("expire_unknown_events", false, || {
            self.inner.expire_unknown_events()
        })
        .await
    }
    async fn finished_instances(&self, filter: &DeleteFilter) -> Result<Vec<String>> {
        self.inner.finished_instances(filter).await
    }
    async fn prune_executions(
        &self,
        id: &str,
        keep_last: Option<u32>,
        before: Option<i64>,
    ) -> Result<u64> {
        self.inner.prune_executions(id, keep_last, before).await
    }
    async fn attach_runtime(
        &self,
        r: &RuntimeRegistration,
        replace: Option<&str>,
    ) -> Result<Reaped> {
        self.call("attach_runtime", true, || {
            self.inner.attach_runtime(r, replace)
        })
        .await
    }
    async fn detach_runtime(&self, runtime_id: &str) -> Result<()> {
        self.call("detach_runtime", false, || {
            self.inner.detach_runtime(runtime_id)
        })
        .await
    }
    async fn heartbeat(&self, r: &RuntimeRegistration, reap: bool) -> Result<Reaped> {
        self.call("heartbeat", false, || self.inner.heartbeat(r, reap))
            .await
    }
    async fn list_runtimes(&self) -> Result<Vec<RuntimeInfo>> {
        self.call("list_runtimes", true, || self.inner.list_runtimes())
            .await
    }
    async fn claim_orchestrations(
        &self,
        claim: &OrchestrationClaim,
    ) -> Result<Vec<OrchestrationItem>> {
        self.call("claim_orchestrations", true, || {
            self.inner.claim_orchestrations(claim)
        })
        .await
    }
    async fn commit_turn(&self, commit: TurnCommit) -> Result<Vec<ActivityItem>> {
        self.call("commit_turn", true, || self.inner.commit_turn(commit))
            .await
    }
    async fn abandon_orchestration(
        &self,
        id: &str,
        generation: i64,
        delay_ms: i64,
        count_delivery: bool,
    ) -> Result<()> {
        self.call("abandon_orchestration", true, || {
            self.inner
                .abandon_orchestration(id, generation, delay_ms, count_delivery)
        })
        .await
    }
    async fn claim_activities(
        &self,
        owner: &str,
        lease_ms: i64,
        max: usize,
        routing: &Routing,
    ) -> Result<Vec<ActivityItem>> {
        self.call("claim_activities", true, || {
            self.inner.claim_activities(owner, lease_ms, max, routing)
        })
        .await
    }
    async fn unserved_work(&self, live_ms: i64) -> Result<UnservedWork> {
        // Called on the upkeep loop's schedule: not counted, so runs stay reproducible.
        self.call("unserved_work", false, || self.inner.unserved_work(live_ms))
            .await
    }
    async fn last_registered(
        &self,
        kind: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<i64>> {
        self.call("last_registered", true, || {
            self.inner.last_registered(kind, name, version)
        })
        .await
    }
    async fn complete_activities(
        &self,
        outcomes: Vec<(ActivityItem, ActivityResult)>,
    ) -> Result<Vec<bool>> {
        self.call("complete_activities", true, || {
            self.inner.complete_activities(outcomes)
        })
        .await
    }
    async fn complete_activities_and_claim(
        &self,
        outcomes: Vec<(ActivityItem, ActivityResult)>,
        claim: &OrchestrationClaim,
    ) -> Result<(Vec<bool>, Vec<OrchestrationItem>)> {
        self.call("complete_activities_and_claim", true, || {
            self.inner.complete_activities_and_claim(outcomes, claim)
        })
        .await
    }
    async fn retry_activity(&self, item: &ActivityItem, at: i64, next: u32) -> Result<bool> {
        self.call("retry_activity", true, || {
            self.inner.retry_activity(item, at, next)
        })
        .await
    }
    async fn abandon_activity(&self, item: &ActivityItem, delay_ms: i64) -> Result<()> {
        self.call("abandon_activity", true, || {
            self.inner.abandon_activity(item, delay_ms)
        })
        .await
    }
    async fn renew_leases(&self, leases: &[Lease], lease_ms: i64) -> Result<Vec<Lease>> {
        self.call("renew_leases", false, || {
            self.inner.renew_leases(leases, lease_ms)
        })
        .await
    }
    async fn next_due(&self) -> Result<Option<i64>> {
        self.call("next_due", false, || self.inner.next_due()).await
    }
    fn foreign_commit_poll(&self) -> Option<Duration> {
        self.inner.foreign_commit_poll()
    }
}
