'use strict';
// The boundary: one driver call per turn at most, O(steps) jobs with the generator cache,
// and identical histories with and without it.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv, cacheSize, eventually, normalizedHistory, storeLocation } = require('./helpers');

const STEPS = 50;

test('a 50-step sequential orchestration makes at most one driver call per turn and sends O(steps) jobs', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Inc', async (ctx, n) => n + 1);
    rt.registerOrchestration('Chain', function* (ctx) {
      let n = 0;
      for (let i = 0; i < STEPS; i++) n = yield ctx.scheduleActivity('Inc', n);
      return n;
    });
  });
  try {
    await env.client.startOrchestration('chain-1', 'Chain');
    assert.equal((await env.client.waitForOrchestration('chain-1', 20000)).output, STEPS);
    const turns = STEPS + 1; // the start, then one per completed activity
    // The count goes up just after the last commit, which a waiting client can see first.
    await eventually(() => env.runtime.metricsSnapshot().turnsCommitted >= turns, 10000, 'the last commit counted');
    const m = env.runtime.metricsSnapshot();
    assert.equal(m.turnsCommitted, turns);
    assert.ok(m.driverCalls <= turns, `driver calls ${m.driverCalls} <= turns ${turns}`);
    assert.equal(m.activations, turns);
    if (cacheSize === 0) {
      // Without the cache every turn replays the whole history: 1 + 2 + ... + 51 jobs.
      assert.equal(m.fullReplays, turns);
      assert.equal(m.jobsSent, (turns * (turns + 1)) / 2);
      // ... and reads it: 2, 4, ..., 100 events before the turns after the start.
      assert.equal(m.historyEventsRead, STEPS * (STEPS + 1));
    } else {
      // With it each turn sends only its new jobs: the start and one per result.
      assert.equal(m.fullReplays, 1);
      assert.equal(m.jobsSent, turns);
      // ... and reads only the last known event again (to check it is unchanged): a turn
      // costs O(new events), not O(history).
      assert.equal(m.historyEventsRead, STEPS);
    }
    assert.equal(m.activitiesCompleted, STEPS);
  } finally {
    await env.drop();
  }
});

function register(rt) {
  rt.registerActivity('Work', async (ctx, x) => ({ x, attempt: ctx.attempt }));
  rt.registerActivity('Fail', async () => {
    throw new Error('nope');
  });
  rt.registerOrchestration('Mixed', function* (ctx, input) {
    const a = yield ctx.scheduleActivity('Work', input);
    const guid = yield ctx.newGuid();
    yield ctx.scheduleTimer(20);
    const both = yield ctx.all([ctx.scheduleActivity('Work', 'p'), ctx.waitForEvent('ev')]);
    const r = yield ctx.race(ctx.waitForEvent('never'), ctx.scheduleTimer(30));
    ctx.setCustomStatus({ done: true });
    let caught = null;
    try {
      yield ctx.scheduleActivity('Fail');
    } catch (e) {
      caught = e.message;
    }
    return { a, guid, both, r, caught };
  });
}

async function runMixed(generatorCacheSize) {
  const env = await startEnv(register, { generatorCacheSize }, storeLocation(`mixed-${generatorCacheSize}`));
  try {
    await env.client.startOrchestration('mixed-1', 'Mixed', { n: 1 });
    // Raise the event only once nothing else is pending, so both runs see one arrival order.
    await eventually(async () => (await env.client.readStoredHistory('mixed-1')).filter((e) => e.kind === 'ActivityCompleted').length === 2);
    await env.client.raiseEvent('mixed-1', 'ev', 'event-data');
    const r = await env.client.waitForOrchestration('mixed-1', 20000);
    assert.equal(r.status, 'Completed', r.error);
    return { output: r.output, history: normalizedHistory(await env.client.readStoredHistory('mixed-1')), m: env.runtime.metricsSnapshot() };
  } finally {
    await env.drop();
  }
}

test('the cached and the replay-every-turn modes write identical histories', async () => {
  const cached = await runMixed(100);
  const replayed = await runMixed(0);
  assert.ok(cached.m.fullReplays < cached.m.turnsCommitted, 'the cached run reused generators');
  assert.equal(replayed.m.fullReplays, replayed.m.activations, 'the uncached run replayed every turn');
  assert.deepEqual(replayed.output, cached.output);
  assert.deepEqual(replayed.history, cached.history);
  assert.deepEqual(cached.output.both, [{ ok: { x: 'p', attempt: 1 } }, { ok: 'event-data' }]);
  assert.deepEqual(cached.output.r, { index: 1, value: null });
  assert.equal(cached.output.caught, 'nope');
});

test('a cache smaller than the number of live instances still completes everything', async () => {
  const env = await startEnv(
    (rt) => {
      rt.registerActivity('Id', async (ctx, x) => x);
      rt.registerOrchestration('Three', function* (ctx, input) {
        const a = yield ctx.scheduleActivity('Id', input);
        const b = yield ctx.scheduleActivity('Id', a + 1);
        const c = yield ctx.scheduleActivity('Id', b + 1);
        return c;
      });
    },
    { generatorCacheSize: cacheSize === 0 ? 0 : 2 },
  );
  try {
    // The gauge, sampled while the instances run, never goes over the cache size.
    let most = 0;
    const sampler = setInterval(() => {
      most = Math.max(most, env.runtime.metricsSnapshot().cachedGenerators);
    }, 5);
    try {
      await Promise.all(Array.from({ length: 20 }, (_, i) => env.client.startOrchestration(`three-${i}`, 'Three', i * 10)));
      for (let i = 0; i < 20; i++) {
        assert.equal((await env.client.waitForOrchestration(`three-${i}`, 20000)).output, i * 10 + 2);
      }
    } finally {
      clearInterval(sampler);
    }
    await eventually(() => env.runtime.metricsSnapshot().inflightTurns === 0);
    assert.ok(most <= (cacheSize === 0 ? 0 : 2), `at most ${most} cached generators`);
    assert.equal(env.runtime.metricsSnapshot().cachedGenerators, 0, 'finished instances leave the cache');
    assert.equal(env.runtime.metricsSnapshot().orchestrationsCompleted, 20);
  } finally {
    await env.drop();
  }
});

test('metrics show queue depths across the store and batch sizes', async () => {
  let release;
  const gate = new Promise((r) => {
    release = r;
  });
  const env = await startEnv((rt) => {
    rt.registerActivity('Wait', () => gate);
    rt.registerOrchestration('W', function* (ctx) {
      return yield ctx.scheduleActivity('Wait');
    });
  }, { workerConcurrency: 1, metricsIntervalMs: 100 });
  try {
    for (const id of ['q1', 'q2', 'q3']) await env.client.startOrchestration(id, 'W');
    const m = await eventually(() => {
      const s = env.runtime.metricsSnapshot();
      return s.queueWorkerRunning === 1 && s.queueWorkerVisible === 2 && s;
    }, 10000, 'one activity running and two waiting');
    assert.ok(m.queueDepthAgeMs < 10000);
    assert.equal(m.queueOrchestratorDelayed, 0);
    // The running activity was claimed once: by the commit that scheduled it when the one
    // worker slot was free then (the usual case), else by the activity loop; with the slot
    // taken, the others wait in the queue.
    assert.equal(m.activitiesClaimedOnCommit + m.activityClaimedItems, 1, JSON.stringify(m));
    assert.equal(m.activityClaimedItems, m.activityClaims, 'one activity per claim at concurrency 1');
    assert.ok(m.claimedItems >= m.claims);
    assert.ok(m.storeOperations >= m.storeTransactions && m.storeTransactions > 0, JSON.stringify(m));
    release('done');
    for (const id of ['q1', 'q2', 'q3']) assert.equal((await env.client.waitForOrchestration(id, 10000)).status, 'Completed');
    await eventually(() => env.runtime.metricsSnapshot().queueWorkerVisible === 0, 10000, 'the worker queue drained');
  } finally {
    await env.drop();
  }
});

test('metrics render as Prometheus text', async () => {
  const { prometheusText } = require('..');
  const env = await startEnv((rt) => {
    rt.registerActivity('A', async () => 1);
    rt.registerOrchestration('P', function* (ctx) {
      return yield ctx.scheduleActivity('A');
    });
  });
  try {
    await env.client.startOrchestration('prom-1', 'P');
    await env.client.waitForOrchestration('prom-1', 10000);
    const text = env.runtime.metricsPrometheus({ labels: { process: 'a"b' } });
    assert.match(text, /^# TYPE reprise_turns_committed_total counter$/m);
    assert.match(text, /^reprise_turns_committed_total\{process="a\\"b"\} 2$/m);
    assert.match(text, /^# TYPE reprise_inflight_turns gauge$/m);
    await eventually(() => /^# TYPE reprise_queue_worker_visible gauge$/m.test(env.runtime.metricsPrometheus()), 10000, 'queue gauges');
    assert.match(text, /^reprise_activities_completed_total\{process="a\\"b"\} 1$/m);
    assert.equal(prometheusText({ claims: 3 }, { prefix: 'x_' }), '# HELP x_claims_total Claims that returned work\n# TYPE x_claims_total counter\nx_claims_total 3\n');
  } finally {
    await env.drop();
  }
});
