'use strict';
// scheduleActivityWithRetry: fixed, linear and exponential backoff retried on the worker side
// (the exact delays are in retry-values.test.js), and timeoutMs and totalTimeoutMs bounding attempts.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv } = require('./helpers');

for (const backoff of ['fixed', 'linear', 'exponential']) {
  test(`scheduleActivityWithRetry with ${backoff} backoff retries on the worker side`, async () => {
    const attempts = [];
    const env = await startEnv((rt) => {
      rt.registerActivity('Flaky', async (ctx) => {
        attempts.push({ attempt: ctx.attempt, at: Date.now() });
        if (ctx.attempt < 4) throw new Error(`attempt ${ctx.attempt} failed`);
        return `ok on ${ctx.attempt}`;
      });
      rt.registerActivity('AlwaysFails', async (ctx) => {
        throw new Error(`still failing (${ctx.attempt})`);
      });
      rt.registerOrchestration('Retrying', function* (ctx) {
        const ok = yield ctx.scheduleActivityWithRetry('Flaky', null, { maxAttempts: 5, backoff, initialDelayMs: 40, maxDelayMs: 200 });
        let gaveUp = null;
        try {
          yield ctx.scheduleActivityWithRetry('AlwaysFails', null, { maxAttempts: 2, backoff, initialDelayMs: 10 });
        } catch (e) {
          gaveUp = e.message;
        }
        return { ok, gaveUp };
      });
    });
    try {
      await env.client.startOrchestration(`retry-${backoff}`, 'Retrying');
      const r = await env.client.waitForOrchestration(`retry-${backoff}`, 15000);
      assert.deepEqual(r.output, { ok: 'ok on 4', gaveUp: 'still failing (2)' });
      assert.deepEqual(attempts.map((a) => a.attempt), [1, 2, 3, 4]);
      const expected = { fixed: [40, 40, 40], linear: [40, 80, 120], exponential: [40, 80, 160] }[backoff];
      for (let i = 1; i < attempts.length; i++) {
        const gap = attempts[i].at - attempts[i - 1].at;
        assert.ok(gap >= expected[i - 1] - 5, `gap ${i} was ${gap} ms, at least ${expected[i - 1]} expected`);
      }
      // History records the schedule and the final outcome only.
      const history = await env.client.readStoredHistory(`retry-${backoff}`);
      assert.equal(history.filter((e) => e.kind === 'ActivityCompleted').length, 1);
      assert.equal(history.filter((e) => e.kind === 'ActivityFailed').length, 1);
      assert.equal(env.runtime.metricsSnapshot().activityRetries, 4);
    } finally {
      await env.drop();
    }
  });
}

test('a retry policy timeoutMs bounds each attempt: the signal fires and the last timeout is thrown', async () => {
  const signals = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('Hangs', (ctx) => new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        signals.push({ attempt: ctx.attempt, reason: ctx.signal.reason.message });
        resolve('too late');
      });
    }));
    rt.registerOrchestration('Bounded', function* (ctx) {
      try {
        yield ctx.scheduleActivityWithRetry('Hangs', null, { maxAttempts: 2, timeoutMs: 150, initialDelayMs: 10 });
        return 'no';
      } catch (e) {
        return { code: e.code, message: e.message };
      }
    });
  });
  try {
    await env.client.startOrchestration('bounded-1', 'Bounded');
    const r = await env.client.waitForOrchestration('bounded-1', 10000);
    assert.deepEqual(r.output, { code: 'ERR_TIMEOUT', message: "activity 'Hangs' timed out after 150 ms" });
    assert.deepEqual(signals, [
      { attempt: 1, reason: 'the activity timed out' },
      { attempt: 2, reason: 'the activity timed out' },
    ]);
  } finally {
    await env.drop();
  }
});

test('a retry policy totalTimeoutMs bounds all attempts: no retry starts after it, and a running attempt is cut', async () => {
  const attempts = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('Fails', async (ctx) => {
      attempts.push(ctx.attempt);
      throw new Error(`failed on attempt ${ctx.attempt}`);
    });
    rt.registerActivity('Hangs', (ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve('too late'))));
    rt.registerOrchestration('Budget', function* (ctx) {
      const out = {};
      try {
        yield ctx.scheduleActivityWithRetry('Fails', null, { maxAttempts: 1000, backoff: 'fixed', initialDelayMs: 100, totalTimeoutMs: 450 });
      } catch (e) {
        out.fails = e.message;
      }
      try {
        yield ctx.scheduleActivityWithRetry('Hangs', null, { maxAttempts: 3, timeoutMs: 60000, totalTimeoutMs: 200 });
      } catch (e) {
        out.hangs = e.code;
      }
      return out;
    });
  });
  try {
    await env.client.startOrchestration('budget', 'Budget');
    const r = await env.client.waitForOrchestration('budget', 15000);
    assert.equal(r.status, 'Completed', JSON.stringify(r));
    // Attempts at about 0, 100, 200, 300, 400 ms; the next would start after 450 ms.
    assert.ok(attempts.length >= 2 && attempts.length <= 5, `attempts: ${attempts}`);
    assert.equal(r.output.fails, `failed on attempt ${attempts.length}`, 'the last error is final');
    assert.equal(r.output.hangs, 'ERR_TIMEOUT', 'the budget times out the attempt long before its own 60 s');
  } finally {
    await env.drop();
  }
});
