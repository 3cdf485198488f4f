'use strict';
// The metrics the guide lists, with exact values: orchestrationsCompleted/failed, storeErrors,
// turnsAbandoned, the queue_* gauges beside client.getQueueDepths(), the Prometheus text.
const test = require('node:test');
const assert = require('node:assert/strict');
const { isDeepStrictEqual } = require('node:util');
const { startEnv, eventually, historyHas } = require('./helpers');

test('metrics: orchestrationsCompleted/failed, storeErrors, turnsAbandoned and the queue_* gauges, exactly', async () => {
  let release;
  const gate = new Promise((r) => {
    release = r;
  });
  const env = await startEnv((rt) => {
    rt.registerActivity('Gate', () => gate);
    rt.registerActivity('FailsOnce', (ctx) => {
      if (ctx.attempt === 1) throw new Error('first attempt fails');
      return ctx.attempt;
    });
    rt.registerOrchestration('Done', function* (ctx, x) {
      return x;
    });
    rt.registerOrchestration('Kid', function* (ctx, x) {
      return x * 2;
    });
    rt.registerOrchestration('Parent', function* (ctx) {
      return yield ctx.scheduleSubOrchestration('Kid', 21);
    });
    rt.registerOrchestration('Loop', function* (ctx, n) {
      if (n < 2) return yield ctx.continueAsNew(n + 1);
      return n;
    });
    rt.registerOrchestration('Throws', function* () {
      throw new Error('on purpose');
    });
    rt.registerOrchestration('Idle', function* (ctx) {
      return yield ctx.waitForEvent('x');
    });
    rt.registerOrchestration('Sleeper', function* (ctx) {
      return yield ctx.scheduleTimer(600000);
    });
    rt.registerOrchestration('Gated', function* (ctx) {
      return yield ctx.scheduleActivity('Gate');
    });
    rt.registerOrchestration('Retrying', function* (ctx) {
      return yield ctx.scheduleActivityWithRetry('FailsOnce', null, { maxAttempts: 2, backoff: 'fixed', initialDelayMs: 600000 });
    });
  }, { workerConcurrency: 1, metricsIntervalMs: 100 });
  const { client, runtime } = env;
  /** Waits until the gauges and client.getQueueDepths() both show `want`. */
  const queues = async (want, what) => {
    const expected = {
      queueOrchestratorVisible: want.orchestrator.visible,
      queueOrchestratorDelayed: want.orchestrator.delayed,
      queueWorkerVisible: want.worker.visible,
      queueWorkerRunning: want.worker.running,
      queueWorkerDelayed: want.worker.delayed,
    };
    const depths = async () => {
      const { orchestrator, worker } = await client.getQueueDepths();
      return { orchestrator, worker };
    };
    await eventually(async () => isDeepStrictEqual(await depths(), want), 10000, `${what} in getQueueDepths()`);
    const gauges = (s) => Object.fromEntries(Object.keys(expected).map((k) => [k, s[k]]));
    await eventually(() => isDeepStrictEqual(gauges(runtime.metricsSnapshot()), expected), 10000, `${what} in the gauges`);
    assert.deepEqual(await depths(), want, what);
  };
  const counters = (s) => ({
    completed: s.orchestrationsCompleted,
    failed: s.orchestrationsFailed,
    turnsAbandoned: s.turnsAbandoned,
    storeErrors: s.storeErrors,
    nondeterminismErrors: s.nondeterminismErrors,
    poisoned: s.poisoned,
  });
  try {
    await client.startOrchestration('retrying', 'Retrying');
    await queues({ orchestrator: { visible: 0, delayed: 0 }, worker: { visible: 0, running: 0, delayed: 1 } }, 'one retry waiting');
    await client.raiseEvent('early', 'x', 'raised before the instance');
    for (const [id, name, input] of [['done-1', 'Done', 1], ['done-2', 'Done', 2], ['parent', 'Parent'], ['loop', 'Loop', 0], ['throws', 'Throws'], ['idle', 'Idle'], ['sleeper', 'Sleeper']]) {
      await client.startOrchestration(id, name, input);
    }
    for (const id of ['done-1', 'done-2', 'parent', 'loop', 'throws']) await client.waitForOrchestration(id, 10000);
    await historyHas(client, 'idle', 'EventWaitStarted');
    await client.cancelInstance('idle', 'enough');
    await client.waitForOrchestration('idle', 10000);
    for (const id of ['gated-1', 'gated-2', 'gated-3']) await client.startOrchestration(id, 'Gated');
    await historyHas(client, 'sleeper', 'TimerCreated');
    // The event for 'early' waits for its instance, uncounted (no such instance yet); the timer
    // is delayed; one Gate runs in the only worker slot while two wait; the retry waits out
    // its delay.
    await queues({ orchestrator: { visible: 0, delayed: 1 }, worker: { visible: 2, running: 1, delayed: 1 } }, 'the mixed queues');
    const s = runtime.metricsSnapshot();
    // Done x2, Parent, Kid, Loop (once, at its last execution) completed; Throws and the cancelled Idle failed.
    assert.deepEqual(counters(s), { completed: 5, failed: 2, turnsAbandoned: 0, storeErrors: 0, nondeterminismErrors: 0, poisoned: 0 });
    assert.equal(s.runningActivities, 1);
    assert.equal(s.inflightTurns, 0);

    release('open');
    for (const id of ['gated-1', 'gated-2', 'gated-3']) assert.equal((await client.waitForOrchestration(id, 10000)).output, 'open');
    await client.cancelInstance('sleeper', 'no more sleep');
    await client.cancelInstance('retrying', 'no more retries');
    await client.waitForOrchestration('retrying', 10000);
    await queues({ orchestrator: { visible: 0, delayed: 0 }, worker: { visible: 0, running: 0, delayed: 0 } }, 'only the early event left (uncounted)');
    await client.startOrchestration('early', 'Idle');
    assert.equal((await client.waitForOrchestration('early', 10000)).output, 'raised before the instance');
    await queues({ orchestrator: { visible: 0, delayed: 0 }, worker: { visible: 0, running: 0, delayed: 0 } }, 'empty queues');
    const end = runtime.metricsSnapshot();
    assert.deepEqual(counters(end), { completed: 9, failed: 4, turnsAbandoned: 0, storeErrors: 0, nondeterminismErrors: 0, poisoned: 0 });
    assert.equal(end.activityRetries, 1);
    assert.equal(end.runningActivities, 0);
    const { total, running, completed, failed } = await client.getSystemMetrics();
    assert.deepEqual({ total, running, completed, failed }, { total: 13, running: 0, completed: 9, failed: 4 });
    assert.match(runtime.metricsPrometheus(), /^reprise_orchestrations_completed_total 9$/m);
    assert.match(runtime.metricsPrometheus(), /^reprise_orchestrations_failed_total 4$/m);
  } finally {
    release();
    await env.drop();
  }
});
