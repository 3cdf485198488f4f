'use strict';
// The runtime's time limits: maxTurnMs abandons and retries a turn that holds JavaScript too
// long; activityTimeoutMs bounds every attempt without a timeoutMs of its own.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv, sleep, cacheSize, eventually } = require('./helpers');

test('maxTurnMs: a turn that holds JavaScript too long is abandoned and retried; history is written once', async () => {
  let slowTurns = 1;
  let ranAfterA = 0;
  const env = await startEnv((rt) => {
    rt.registerActivity('Quick', async (ctx, n) => n * 10);
    rt.registerOrchestration('SlowTurn', function* (ctx) {
      const a = yield ctx.scheduleActivity('Quick', 1);
      if (!ctx.isReplaying) ranAfterA += 1;
      if (slowTurns-- > 0) {
        const end = Date.now() + 600;
        while (Date.now() < end) {
          // holds the JavaScript thread three times maxTurnMs
        }
      }
      const b = yield ctx.scheduleActivity('Quick', 2);
      return [a, b];
    });
  }, { maxTurnMs: 200 });
  try {
    await env.client.startOrchestration('slow-turn', 'SlowTurn');
    const r = await env.client.waitForOrchestration('slow-turn', 15000);
    assert.equal(r.status, 'Completed', r.error);
    assert.deepEqual(r.output, [10, 20]);
    assert.equal(ranAfterA, 2, 'the abandoned turn ran again');
    // A turn is counted after its commit returns: the waiter may see the instance end first.
    await eventually(() => env.runtime.metricsSnapshot().inflightTurns === 0, 5000, 'the last turn counted');
    const m = env.runtime.metricsSnapshot();
    assert.equal(m.turnsAbandoned, 1);
    assert.equal(m.activations, 4, 'the start, the abandoned turn, its retry, the last turn');
    // The retry rebuilds the generator from history: the one the abandoned turn moved is not reused.
    assert.equal(m.fullReplays, cacheSize === 0 ? 4 : 2);
    assert.equal(m.turnsCommitted, 3, 'the start, the retried turn, the last turn');
    assert.equal(m.activitiesStarted, 2, 'the abandoned turn scheduled nothing');
    assert.equal(m.orchestrationsCompleted, 1);
    const history = await env.client.readStoredHistory('slow-turn');
    assert.deepEqual(history.map((e) => e.kind), [
      'ExecutionStarted', 'ActivityScheduled', 'ActivityCompleted', 'ActivityScheduled', 'ActivityCompleted', 'ExecutionCompleted',
    ]);
  } finally {
    await env.drop();
  }
});

test('activityTimeoutMs bounds every attempt that has no timeoutMs of its own', async () => {
  const aborted = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('Hang', (ctx) => new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        aborted.push(`${ctx.instanceId}#${ctx.attempt}: ${ctx.signal.reason.message}`);
        resolve('too late');
      });
    }));
    rt.registerActivity('Slowish', async () => {
      await sleep(500);
      return 'finished in 500 ms';
    });
    const attempt = (task) => function* () {
      try {
        return yield task();
      } catch (e) {
        return { code: e.code, message: e.message };
      }
    };
    rt.registerOrchestration('Plain', function* (ctx) {
      return yield* attempt(() => ctx.scheduleActivity('Hang'))();
    });
    rt.registerOrchestration('Policy', function* (ctx) {
      return yield* attempt(() => ctx.scheduleActivityWithRetry('Hang', null, { maxAttempts: 2, initialDelayMs: 10 }))();
    });
    rt.registerOrchestration('OwnTimeout', function* (ctx) {
      return yield* attempt(() => ctx.scheduleActivityWithRetry('Slowish', null, { maxAttempts: 1, timeoutMs: 5000 }))();
    });
  }, { activityTimeoutMs: 200 });
  try {
    const { client } = env;
    for (const name of ['Plain', 'Policy', 'OwnTimeout']) await client.startOrchestration(name, name);
    const timedOut = { code: 'ERR_TIMEOUT', message: "activity 'Hang' timed out after 200 ms" };
    assert.deepEqual((await client.waitForOrchestration('Plain', 10000)).output, timedOut);
    assert.deepEqual((await client.waitForOrchestration('Policy', 10000)).output, timedOut);
    assert.equal((await client.waitForOrchestration('OwnTimeout', 10000)).output, 'finished in 500 ms', 'the policy’s timeoutMs wins over the runtime’s');
    assert.deepEqual(aborted.sort(), [
      'Plain#1: the activity timed out',
      'Policy#1: the activity timed out',
      'Policy#2: the activity timed out',
    ]);
  } finally {
    await env.drop();
  }
});
