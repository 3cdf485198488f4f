'use strict';

// Prometheus text exposition (format 0.0.4) of a runtime's metrics snapshot.

/** Snapshot keys that are gauges (current values); every other key is a counter. */
const GAUGES = new Set([
  'inflight_turns',
  'running_activities',
  'cached_generators',
  'queue_orchestrator_visible',
  'queue_orchestrator_delayed',
  'queue_worker_visible',
  'queue_worker_running',
  'queue_worker_delayed',
  'queue_depth_age_ms',
]);

const HELP = {
  driver_calls: 'Calls into the JavaScript driver (each carries a batch of activations)',
  activations: 'Orchestration turns handed to the driver',
  jobs_sent: 'Jobs (start, results, events) sent to the driver',
  full_replays: 'Activations that replayed an execution from its start',
  turns_committed: 'Orchestration turns committed',
  turns_abandoned: 'Orchestration turns abandoned (driver fault, timeout) and retried',
  orchestrations_completed: 'Executions that completed',
  orchestrations_failed: 'Executions that failed',
  nondeterminism_errors: 'Replays that did not match history',
  activity_batches: 'Batches of activities handed to JavaScript',
  activities_started: 'Activity attempts started',
  activities_completed: 'Activities that completed',
  activities_failed: 'Activities that failed for good',
  activity_retries: 'Failed activity attempts scheduled again',
  activities_abandoned: 'Activities abandoned at shutdown (they run again later)',
  poisoned: 'Messages or activities quarantined after too many deliveries',
  lease_renewals: 'Leases renewed while their work ran (instances and activities)',
  lease_losses: 'Leases lost (expired and taken over, or fenced)',
  store_errors: 'Store operations that failed and were retried',
  claims: 'Claims that returned work',
  claimed_items: 'Instances claimed (claimed_items / claims is the mean claim batch)',
  activity_claims: 'Activity claims that returned work',
  activity_claimed_items: 'Activities claimed (activity_claimed_items / activity_claims is the mean batch)',
  activities_claimed_on_commit: 'Activities claimed by the commit that scheduled them (no separate claim)',
  turns_claimed_on_completion: 'Instances claimed by the store call that recorded the activity results waking them (SQLite)',
  store_transactions: 'Write transactions of the SQLite writer',
  store_operations: 'Store operations those transactions carried (mean write batch = operations / transactions)',
  queue_orchestrator_visible: 'Orchestrator messages visible now (all processes)',
  queue_orchestrator_delayed: 'Orchestrator messages visible later: timers, abandoned messages',
  queue_worker_visible: 'Activities claimable now',
  queue_worker_running: 'Activities under a lease, in any process',
  queue_worker_delayed: 'Activities waiting out a retry delay',
  queue_depth_age_ms: 'Age of the queue_* readings (read every metricsIntervalMs, default 5 s)',
  inflight_turns: 'Orchestration turns in flight',
  running_activities: 'Activities running in this process',
  cached_generators: 'Live generators kept between turns',
};

/**
 * Renders `snapshot` (from `runtime.metricsSnapshot()`) as Prometheus text, each metric
 * named `<prefix><key>` (counters get `_total`), with optional constant `labels`.
 */
function prometheusText(snapshot, { prefix = 'reprise_', labels = {} } = {}) {
  const labelText = Object.entries(labels)
    .map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
  const suffix = labelText ? `{${labelText}}` : '';
  const lines = [];
  for (const key of Object.keys(snapshot).sort()) {
    const gauge = GAUGES.has(key);
    const name = `${prefix}${key}${gauge ? '' : '_total'}`;
    if (HELP[key]) lines.push(`# HELP ${name} ${HELP[key]}`);
    lines.push(`# TYPE ${name} ${gauge ? 'gauge' : 'counter'}`);
    lines.push(`${name}${suffix} ${Number(snapshot[key])}`);
  }
  return `${lines.join('\n')}\n`;
}

module.exports = { prometheusText };
