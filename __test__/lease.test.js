'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv, eventually } = require('./helpers');

test('an activity that blocks the JS thread for three lease durations runs exactly once (leases renew in Rust)', async () => {
  let runs = 0;
  const LEASE = 300;
  const env = await startEnv(
    (rt) => {
      rt.registerActivity('Busy', async () => {
        runs++;
        const end = Date.now() + 3 * LEASE;
        while (Date.now() < end) {
          // busy-wait: the event loop is blocked the whole time
        }
        return 'done';
      });
      rt.registerOrchestration('BusyFlow', function* (ctx) {
        const a = yield ctx.scheduleActivity('Busy');
        return a;
      });
    },
    { lockTimeoutMs: LEASE },
  );
  try {
    await env.client.startOrchestration('busy-1', 'BusyFlow');
    const r = await env.client.waitForOrchestration('busy-1', 10000);
    assert.equal(r.output, 'done');
    // Give a wrongly re-delivered copy time to show up.
    await new Promise((res) => setTimeout(res, 2 * LEASE));
    assert.equal(runs, 1);
    const m = env.runtime.metricsSnapshot();
    assert.equal(m.activities_started, 1);
    assert.equal(m.lease_losses, 0);
  } finally {
    await env.drop();
  }
});

test('shutdown resolves as soon as in-flight work drains; at the deadline it aborts and abandons the rest', async () => {
  const runs = { Short: 0, Long: 0 };
  let aborted = null;
  let longBlocks = true;
  const register = (rt) => {
    rt.registerActivity('Short', async () => {
      runs.Short++;
      await new Promise((r) => setTimeout(r, 150));
      return 'short done';
    });
    rt.registerActivity('Long', (ctx) => {
      runs.Long++;
      if (!longBlocks) return 'long done';
      return new Promise((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          aborted = ctx.signal.reason.message;
          resolve('too late');
        });
      });
    });
    rt.registerOrchestration('S', function* (ctx, which) {
      return yield ctx.scheduleActivity(which);
    });
  };
  let env = await startEnv(register);
  await env.client.startOrchestration('short-1', 'S', 'Short');
  await eventually(() => runs.Short === 1);
  let t0 = Date.now();
  await env.runtime.shutdown(10000);
  const drained = Date.now() - t0;
  assert.ok(drained < 2000, `shutdown returned once the activity drained (${drained} ms)`);

  env = await startEnv(register, {}, env.path);
  await env.client.startOrchestration('long-1', 'S', 'Long');
  assert.equal((await env.client.waitForOrchestration('short-1', 10000)).output, 'short done');
  assert.equal(runs.Short, 1, 'the drained activity was recorded, not run again');
  await eventually(() => runs.Long === 1);
  t0 = Date.now();
  await env.runtime.shutdown(600);
  const took = Date.now() - t0;
  assert.ok(took >= 550 && took < 4000, `shutdown waited for the deadline (${took} ms)`);
  assert.equal(aborted, 'the runtime is shutting down');
  assert.equal((await env.client.getStatus('long-1')).status, 'Running');
  const history = await env.client.readExecutionHistory('long-1');
  assert.ok(!history.some((e) => e.kind === 'ActivityFailed' || e.kind === 'ActivityCompleted'), 'abandoned, not failed');

  longBlocks = false;
  env = await startEnv(register, {}, env.path);
  try {
    assert.equal((await env.client.waitForOrchestration('long-1', 10000)).output, 'long done');
    assert.equal(runs.Long, 2, 'the abandoned activity ran again after restart');
  } finally {
    await env.drop();
  }
});
