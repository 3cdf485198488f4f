'use strict';

// Metrics: the one table naming every key of `runtime.metricsSnapshot()` (camelCase, as the
// native layer produces them) with its Prometheus name (`reprise_` + snake_case, `_total` for
// counters), its type and its help text; and the Prometheus text exposition (format 0.0.4).

const { InvalidArgumentError } = require('./errors');
const { checkOptionsObject, describe } = require('./json');

/** Every metric, in the order the guide lists them. A test holds this table to the snapshot. */
const METRICS = [
  { key: 'driverCalls', name: 'reprise_driver_calls_total', type: 'counter', help: 'Calls into the JavaScript driver (each carries a batch of activations)' },
  { key: 'activations', name: 'reprise_activations_total', type: 'counter', help: 'Orchestration turns handed to the driver' },
  { key: 'jobsSent', name: 'reprise_jobs_sent_total', type: 'counter', help: 'Jobs (start, results, events) sent to the driver' },
  { key: 'fullReplays', name: 'reprise_full_replays_total', type: 'counter', help: 'Activations that replayed an execution from its start' },
  { key: 'turnsCommitted', name: 'reprise_turns_committed_total', type: 'counter', help: 'Orchestration turns committed' },
  { key: 'turnsAbandoned', name: 'reprise_turns_abandoned_total', type: 'counter', help: 'Orchestration turns abandoned (driver fault, timeout) and retried' },
  { key: 'orchestrationsCompleted', name: 'reprise_orchestrations_completed_total', type: 'counter', help: 'Executions that completed' },
  { key: 'orchestrationsFailed', name: 'reprise_orchestrations_failed_total', type: 'counter', help: 'Executions that failed' },
  { key: 'nondeterminismErrors', name: 'reprise_nondeterminism_errors_total', type: 'counter', help: 'Replays that did not match history' },
  { key: 'activityBatches', name: 'reprise_activity_batches_total', type: 'counter', help: 'Batches of activities handed to JavaScript' },
  { key: 'activitiesStarted', name: 'reprise_activities_started_total', type: 'counter', help: 'Activity attempts started' },
  { key: 'activitiesCompleted', name: 'reprise_activities_completed_total', type: 'counter', help: 'Activities that completed' },
  { key: 'activitiesFailed', name: 'reprise_activities_failed_total', type: 'counter', help: 'Activities that failed for good' },
  { key: 'activityRetries', name: 'reprise_activity_retries_total', type: 'counter', help: 'Failed activity attempts scheduled again' },
  { key: 'activitiesAbandoned', name: 'reprise_activities_abandoned_total', type: 'counter', help: 'Activities abandoned at shutdown (they run again later)' },
  { key: 'poisoned', name: 'reprise_poisoned_total', type: 'counter', help: 'Messages or activities quarantined after too many deliveries' },
  { key: 'leaseRenewals', name: 'reprise_lease_renewals_total', type: 'counter', help: 'Leases renewed while their work ran (instances and activities)' },
  { key: 'leaseLosses', name: 'reprise_lease_losses_total', type: 'counter', help: 'Leases lost (expired and taken over, or fenced)' },
  { key: 'storeErrors', name: 'reprise_store_errors_total', type: 'counter', help: 'Store operations that failed and were retried' },
  { key: 'claims', name: 'reprise_claims_total', type: 'counter', help: 'Claims that returned work' },
  { key: 'claimedItems', name: 'reprise_claimed_items_total', type: 'counter', help: 'Instances claimed (claimedItems / claims is the mean claim batch)' },
  { key: 'activityClaims', name: 'reprise_activity_claims_total', type: 'counter', help: 'Activity claims that returned work' },
  { key: 'activityClaimedItems', name: 'reprise_activity_claimed_items_total', type: 'counter', help: 'Activities claimed (activityClaimedItems / activityClaims is the mean batch)' },
  { key: 'activitiesClaimedOnCommit', name: 'reprise_activities_claimed_on_commit_total', type: 'counter', help: 'Activities claimed by the commit that scheduled them (no separate claim)' },
  { key: 'turnsClaimedOnCompletion', name: 'reprise_turns_claimed_on_completion_total', type: 'counter', help: 'Instances claimed by the store call that recorded the activity results waking them (SQLite)' },
  { key: 'historyEventsRead', name: 'reprise_history_events_read_total', type: 'counter', help: 'History events read by claims (with the generator cache, a turn reads only what is new)' },
  { key: 'runtimesReaped', name: 'reprise_runtimes_reaped_total', type: 'counter', help: 'Dead runtimes (stale heartbeat) removed from the registry, their leases released' },
  { key: 'storeOutages', name: 'reprise_store_outages_total', type: 'counter', help: 'Times the store became unreachable (each logged once, until it is back)' },
  { key: 'storeTransactions', name: 'reprise_store_transactions_total', type: 'counter', help: 'Write transactions of the SQLite writer; group-commit statements on PostgreSQL' },
  { key: 'storeOperations', name: 'reprise_store_operations_total', type: 'counter', help: 'Operations (SQLite) or turns (PostgreSQL) those transactions carried (mean write batch = operations / transactions)' },
  { key: 'orchStarts', name: 'reprise_orch_starts_total', type: 'counter', help: 'Executions started (continue-as-new starts one more)' },
  { key: 'orchContinueAsNew', name: 'reprise_orch_continue_as_new_total', type: 'counter', help: 'Executions that continued as new' },
  { key: 'suborchestrationCalls', name: 'reprise_suborchestration_calls_total', type: 'counter', help: 'Sub-orchestrations scheduled' },
  { key: 'orchApplicationErrors', name: 'reprise_orch_application_errors_total', type: 'counter', help: 'Executions failed by their code (thrown errors, cancellations)' },
  { key: 'orchInfrastructureErrors', name: 'reprise_orch_infrastructure_errors_total', type: 'counter', help: 'Executions failed by the runtime (protocol errors)' },
  { key: 'orchConfigurationErrors', name: 'reprise_orch_configuration_errors_total', type: 'counter', help: 'Executions failed by the setup (not registered, nondeterminism)' },
  { key: 'orchPoison', name: 'reprise_orch_poison_total', type: 'counter', help: 'Executions failed as poison (a message delivered too many times)' },
  { key: 'activityAppErrors', name: 'reprise_activity_app_errors_total', type: 'counter', help: 'Activities failed for good by their code' },
  { key: 'activityInfraErrors', name: 'reprise_activity_infra_errors_total', type: 'counter', help: 'Activity results not recorded (lease lost): the attempt runs again elsewhere' },
  { key: 'activityConfigErrors', name: 'reprise_activity_config_errors_total', type: 'counter', help: 'Activities failed as not registered' },
  { key: 'activityPoison', name: 'reprise_activity_poison_total', type: 'counter', help: 'Activities failed as poison (delivered too many times)' },
  { key: 'queueOrchestratorVisible', name: 'reprise_queue_orchestrator_visible', type: 'gauge', help: 'Orchestrator messages visible now (all processes)' },
  { key: 'queueOrchestratorDelayed', name: 'reprise_queue_orchestrator_delayed', type: 'gauge', help: 'Orchestrator messages visible later: timers, abandoned messages' },
  { key: 'queueWorkerVisible', name: 'reprise_queue_worker_visible', type: 'gauge', help: 'Activities claimable now' },
  { key: 'queueWorkerRunning', name: 'reprise_queue_worker_running', type: 'gauge', help: 'Activities under a lease, in any process' },
  { key: 'queueWorkerDelayed', name: 'reprise_queue_worker_delayed', type: 'gauge', help: 'Activities waiting out a retry delay' },
  { key: 'queueDepthAgeMs', name: 'reprise_queue_depth_age_ms', type: 'gauge', help: 'Age of the queue_* readings (read every metricsIntervalMs, default 5 s)' },
  { key: 'orchestrationsWithoutRuntime', name: 'reprise_orchestrations_without_runtime', type: 'gauge', help: 'Visible orchestrator messages for orchestrations no live runtime has (they wait; read every metricsIntervalMs)' },
  { key: 'activitiesWithoutRuntime', name: 'reprise_activities_without_runtime', type: 'gauge', help: 'Visible activities no live runtime has (they wait; read every metricsIntervalMs)' },
  { key: 'inflightTurns', name: 'reprise_inflight_turns', type: 'gauge', help: 'Orchestration turns in flight' },
  { key: 'runningActivities', name: 'reprise_running_activities', type: 'gauge', help: 'Activities running in this process' },
  { key: 'cachedGenerators', name: 'reprise_cached_generators', type: 'gauge', help: 'Live generators kept between turns' },
];

const BY_KEY = new Map(METRICS.map((m) => [m.key, m]));

/**
 * duroxide-node's names for counters reprise already has: `metricsSnapshot()` shows them
 * too (as the sum of the keys listed); the Prometheus text shows each count once.
 */
const ALIASES = {
  orchCompletions: ['orchestrationsCompleted'],
  orchFailures: ['orchestrationsFailed'],
  activitySuccess: ['activitiesCompleted'],
  orchDispatcherItemsFetched: ['claimedItems', 'turnsClaimedOnCompletion'],
  workerDispatcherItemsFetched: ['activityClaimedItems', 'activitiesClaimedOnCommit'],
  providerErrors: ['storeErrors'],
};

/** The snapshot with duroxide-node's alias keys added. */
function withAliases(snapshot) {
  const out = { ...snapshot };
  for (const [alias, keys] of Object.entries(ALIASES)) out[alias] = keys.reduce((n, k) => n + (snapshot[k] ?? 0), 0);
  return out;
}

/** `turnsCommitted` → `turns_committed`: how a key not in the table is named. */
function snakeCase(key) {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * Renders `snapshot` (from `runtime.metricsSnapshot()`) as Prometheus text with optional
 * constant `labels`. Names come from `METRICS`; `prefix` replaces their `reprise_` prefix.
 */
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function prometheusText(snapshot, options) {
  const { prefix = 'reprise_', labels = {} } = checkOptionsObject(options, ['prefix', 'labels'], 'options', 'prometheusText');
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/.test(prefix)) {
    throw new InvalidArgumentError(`options.prefix must be a Prometheus metric name prefix like 'reprise_', got ${describe(prefix)}`);
  }
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) {
    throw new InvalidArgumentError(`options.labels must be an object of label names to values, got ${describe(labels)}`);
  }
  for (const name of Object.keys(labels)) {
    if (!LABEL_NAME.test(name)) throw new InvalidArgumentError(`options.labels: '${name}' is not a Prometheus label name`);
  }
  const labelText = Object.entries(labels)
    .map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
  const suffix = labelText ? `{${labelText}}` : '';
  const lines = [];
  for (const key of Object.keys(snapshot).sort()) {
    if (ALIASES[key]) continue;
    const metric = BY_KEY.get(key) ?? { name: `reprise_${snakeCase(key)}_total`, type: 'counter' };
    const name = prefix + metric.name.slice('reprise_'.length);
    if (metric.help) lines.push(`# HELP ${name} ${metric.help}`);
    lines.push(`# TYPE ${name} ${metric.type}`);
    lines.push(`${name}${suffix} ${Number(snapshot[key])}`);
  }
  return `${lines.join('\n')}\n`;
}

module.exports = { METRICS, ALIASES, prometheusText, snakeCase, withAliases };
