'use strict';
// Retry policies to the millisecond: the delay before each retry, read from runtime.events()
// (an attempt's `activityStarted`, then the `activityRetried` that put it back with its
// `retryAt`): the delay is at most retryAt - (time the retry was reported) and at least
// retryAt - (time the failed attempt started), so the documented value must fall between.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv, eventually } = require('./helpers');

/** Collects `types` events from `runtime` until `done(events)` holds; resolves to them. */
function collect(runtime, types, done) {
  const stop = new AbortController();
  const seen = [];
  const finished = (async () => {
    for await (const e of runtime.events({ types, signal: stop.signal })) {
      seen.push(e);
      if (done(seen)) stop.abort();
    }
    return seen;
  })();
  return { finished, stop };
}

/** The delay bounds of every retry of `instanceId`'s task 1: [{attempt, low, high}]. */
function retryDelays(events, instanceId) {
  const mine = events.filter((e) => e.instanceId === instanceId && e.task === 1);
  const started = new Map(mine.filter((e) => e.type === 'activityStarted').map((e) => [e.attempt, e]));
  return mine
    .filter((e) => e.type === 'activityRetried')
    .map((r) => {
      const failed = started.get(r.attempt - 1);
      const next = started.get(r.attempt);
      if (next) assert.ok(next.timestamp >= r.retryAt, `attempt ${r.attempt} of ${instanceId} started at ${next.timestamp}, before its retryAt ${r.retryAt}`);
      return { attempt: r.attempt, low: r.retryAt - r.timestamp, high: r.retryAt - failed.timestamp };
    });
}

function assertDelays(bounds, expected, what) {
  assert.deepEqual(bounds.map((b) => b.attempt), expected.map((_, i) => i + 2), `${what}: one retry per attempt after the first`);
  bounds.forEach((b, i) => {
    assert.ok(b.low <= expected[i] && expected[i] <= b.high, `${what}: delay before attempt ${b.attempt} should be ${expected[i]} ms, observed between ${b.low} and ${b.high} ms`);
  });
}

test('fixed, linear and exponential delays follow the guide’s table, capped at maxDelayMs; by default exponential from 1000 ms', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Fails', async (ctx, until) => {
      if (ctx.attempt < until) throw Object.assign(new Error(`attempt ${ctx.attempt} failed`), { code: 'E_FLAKY' });
      return `ok on ${ctx.attempt}`;
    });
    rt.registerOrchestration('Retries', function* (ctx, { policy, until }) {
      try {
        return yield ctx.scheduleActivityWithRetry('Fails', until, policy);
      } catch (e) {
        return { code: e.code, message: e.message, name: e.name };
      }
    });
  });
  try {
    const table = { initialDelayMs: 100, maxDelayMs: 500, maxAttempts: 6 };
    const cases = {
      fixed: { policy: { ...table, backoff: 'fixed' }, until: 99, delays: [100, 100, 100, 100, 100] },
      linear: { policy: { ...table, backoff: 'linear' }, until: 99, delays: [100, 200, 300, 400, 500] },
      exponential: { policy: { ...table, backoff: 'exponential' }, until: 99, delays: [100, 200, 400, 500, 500] },
      'default-backoff': { policy: { maxAttempts: 4, initialDelayMs: 100 }, until: 4, delays: [100, 200, 400] },
      'default-delay': { policy: { maxAttempts: 2 }, until: 2, delays: [1000] },
    };
    const ids = Object.keys(cases);
    const listening = collect(env.runtime, ['activityStarted', 'activityRetried', 'instanceCompleted'], (seen) => seen.filter((e) => e.type === 'instanceCompleted').length === ids.length);
    for (const id of ids) await env.client.startOrchestration(id, 'Retries', { policy: cases[id].policy, until: cases[id].until });
    const results = {};
    for (const id of ids) results[id] = await env.client.waitForOrchestration(id, 20000);
    const events = await listening.finished;

    for (const id of ['fixed', 'linear', 'exponential']) {
      assert.deepEqual(results[id].output, { code: 'E_FLAKY', message: 'attempt 6 failed', name: 'TaskFailedError' }, id);
      const attempts = events.filter((e) => e.instanceId === id && e.type === 'activityStarted').map((e) => e.attempt);
      assert.deepEqual(attempts, [1, 2, 3, 4, 5, 6], `${id}: maxAttempts counts the first attempt`);
      assertDelays(retryDelays(events, id), cases[id].delays, id);
    }
    assert.equal(results['default-backoff'].output, 'ok on 4');
    assertDelays(retryDelays(events, 'default-backoff'), cases['default-backoff'].delays, 'default-backoff');
    assert.equal(results['default-delay'].output, 'ok on 2');
    assertDelays(retryDelays(events, 'default-delay'), cases['default-delay'].delays, 'default-delay');

    const m = env.runtime.metricsSnapshot();
    assert.equal(m.activityRetries, 3 * 5 + 3 + 1);
    assert.equal(m.activitiesStarted, 3 * 6 + 4 + 2);
    assert.equal(m.activitiesFailed, 3);
    assert.equal(m.activitiesCompleted, 2);
    // History keeps the schedule and the final outcome only, with the last attempt's error.
    const history = await env.client.readStoredHistory('linear');
    const failed = history.find((e) => e.kind === 'ActivityFailed');
    assert.deepEqual(history.map((e) => e.kind), ['ExecutionStarted', 'ActivityScheduled', 'ActivityFailed', 'ExecutionCompleted']);
    assert.equal(failed.data.error.message, 'attempt 6 failed');
    assert.equal(failed.data.error.code, 'E_FLAKY');
  } finally {
    await env.drop();
  }
});

test('jitter draws each delay between half the capped delay and the capped delay; queued retries show in the queue gauges and go with a cancel', async () => {
  const N = 6;
  const env = await startEnv((rt) => {
    rt.registerActivity('FailsOnce', async (ctx) => {
      if (ctx.attempt === 1) throw new Error('first attempt fails');
      return ctx.attempt;
    });
    rt.registerOrchestration('Jittery', function* (ctx, n) {
      const policy = { maxAttempts: 2, backoff: 'exponential', initialDelayMs: 60000, maxDelayMs: 40000, jitter: true };
      const tasks = [];
      for (let i = 0; i < n; i++) tasks.push(ctx.scheduleActivityWithRetry('FailsOnce', i, policy));
      return yield ctx.all(tasks);
    });
  }, { metricsIntervalMs: 100 });
  try {
    const listening = collect(env.runtime, ['activityStarted', 'activityRetried'], (seen) => seen.filter((e) => e.type === 'activityRetried').length === N);
    await env.client.startOrchestration('jitter-1', 'Jittery', N);
    const events = await listening.finished;
    const bounds = [];
    for (let task = 1; task <= N; task++) {
      const started = events.find((e) => e.type === 'activityStarted' && e.task === task && e.attempt === 1);
      const retried = events.find((e) => e.type === 'activityRetried' && e.task === task);
      assert.equal(retried.attempt, 2);
      bounds.push({ low: retried.retryAt - retried.timestamp, high: retried.retryAt - started.timestamp });
    }
    for (const b of bounds) {
      // The cap (40 000) applies before the jitter: never more than it, never under half of it.
      assert.ok(b.low <= 40000, `a jittered delay of at least ${b.low} ms is over the 40000 ms cap`);
      assert.ok(b.high >= 20000, `a jittered delay of at most ${b.high} ms is under half the cap`);
    }
    // Six draws all within the last 1000 ms of a 20 000 ms range would mean no jitter at all.
    assert.ok(bounds.some((b) => b.high < 39000), `every delay was the full cap: ${JSON.stringify(bounds)}`);

    // The six attempts wait out their delays in the worker queue, nowhere else.
    await eventually(async () => {
      const q = await env.client.getQueueDepths();
      return q.worker.delayed === N && q.worker.visible === 0 && q.worker.running === 0 && q.orchestrator.visible === 0 && q.orchestrator.delayed === 0;
    }, 10000, 'six delayed retries in the queue');
    const m = await eventually(() => {
      const s = env.runtime.metricsSnapshot();
      return s.queueWorkerDelayed === N && s;
    }, 10000, 'the gauge to read six delayed retries');
    assert.equal(m.queueWorkerVisible, 0);
    assert.equal(m.queueWorkerRunning, 0);
    assert.equal(m.queueOrchestratorVisible, 0);
    assert.equal(m.queueOrchestratorDelayed, 0);
    assert.equal(m.activityRetries, N);

    assert.equal(await env.client.cancelInstance('jitter-1', 'no more waiting'), true);
    const r = await env.client.waitForOrchestration('jitter-1', 10000);
    assert.equal(r.error, 'canceled: no more waiting');
    assert.equal(r.errorCode, 'ERR_CANCELED');
    await eventually(async () => (await env.client.getQueueDepths()).worker.delayed === 0, 10000, 'the cancel to delete the queued retries');
  } finally {
    await env.drop();
  }
});
