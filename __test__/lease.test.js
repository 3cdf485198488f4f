'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv, eventually } = require('./helpers');

// With pollIntervalMs 50 the runtime's own dispatchers look for lapsed leases every 50 ms:
// without renewal, the blocked work would be claimed again (and delivered a second time)
// one lease after it started.
const LEASE = 300;

/** Blocks the JavaScript thread (and so the event loop) for `ms`. */
function blockFor(ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy-wait
  }
}

/**
 * Between two marks taken inside the blocked work the lease keeper renewed at least once per
 * lease and lost nothing.
 */
function assertRenewedThroughout(from, to) {
  assert.ok('leaseRenewals' in to, 'metricsSnapshot() has leaseRenewals');
  assert.equal(to.leaseLosses - from.leaseLosses, 0, 'no lease was lost while the work ran');
  const renewals = to.leaseRenewals - from.leaseRenewals;
  const leases = Math.floor((to.at - from.at) / LEASE);
  assert.ok(leases >= 3, `the measured stretch spans ${leases} leases`);
  assert.ok(renewals >= leases, `${renewals} renewals in ${to.at - from.at} ms (lease ${LEASE} ms)`);
}

test('an activity that blocks the JS thread for three leases runs once: its lease is renewed in Rust while the runtime polls for lapsed ones', async () => {
  let runs = 0;
  const marks = {};
  let env;
  const mark = () => ({ at: Date.now(), ...env.runtime.metricsSnapshot() });
  env = await startEnv(
    (rt) => {
      rt.registerActivity('Busy', async () => {
        runs++;
        blockFor(LEASE / 2); // the commit that claimed it is done by then
        marks.from = mark();
        blockFor(3 * LEASE + 50);
        marks.to = mark();
        return 'done';
      });
      rt.registerOrchestration('BusyFlow', function* (ctx) {
        const a = yield ctx.scheduleActivity('Busy');
        return a;
      });
    },
    { lockTimeoutMs: LEASE, pollIntervalMs: 50 },
  );
  try {
    await env.client.startOrchestration('busy-1', 'BusyFlow');
    const r = await env.client.waitForOrchestration('busy-1', 10000);
    assert.equal(r.output, 'done');
    // Give a wrongly re-delivered copy time to show up.
    await new Promise((res) => setTimeout(res, 2 * LEASE));
    assert.equal(runs, 1);
    assertRenewedThroughout(marks.from, marks.to);
    const m = env.runtime.metricsSnapshot();
    assert.equal(m.leaseLosses, 0, 'no lease was lost in the whole run');
    assert.equal(m.activitiesStarted, 1);
    assert.equal(m.activitiesAbandoned, 0);
    assert.equal(m.activations, 2, 'the start and the result each reached JS once');
  } finally {
    await env.drop();
  }
});

test('an orchestration turn that blocks the JS thread for three leases runs once: the instance lease is renewed in Rust while the runtime polls for lapsed ones', async () => {
  let firstRuns = 0;
  const marks = {};
  let env;
  const mark = () => ({ at: Date.now(), ...env.runtime.metricsSnapshot() });
  env = await startEnv(
    (rt) => {
      rt.registerActivity('Echo', async (ctx, x) => x);
      rt.registerOrchestration('BusyTurn', function* (ctx) {
        if (!ctx.isReplaying) {
          firstRuns++;
          blockFor(LEASE / 2);
          marks.from = mark();
          blockFor(3 * LEASE + 50);
          marks.to = mark();
        }
        return yield ctx.scheduleActivity('Echo', 'turn done');
      });
    },
    { lockTimeoutMs: LEASE, pollIntervalMs: 50 },
  );
  try {
    await env.client.startOrchestration('turn-1', 'BusyTurn');
    const r = await env.client.waitForOrchestration('turn-1', 10000);
    assert.equal(r.output, 'turn done');
    await new Promise((res) => setTimeout(res, 2 * LEASE));
    assert.equal(firstRuns, 1, 'the blocking turn ran once');
    assertRenewedThroughout(marks.from, marks.to);
    const m = env.runtime.metricsSnapshot();
    assert.equal(m.leaseLosses, 0, 'no lease was lost in the whole run');
    assert.equal(m.activations, 2, 'the start and the result each reached JS once');
    assert.equal(m.turnsAbandoned, 0);
    assert.equal(m.turnsCommitted, 2);
    const kinds = (await env.client.readStoredHistory('turn-1')).map((e) => e.kind);
    assert.deepEqual(kinds, ['ExecutionStarted', 'ActivityScheduled', 'ActivityCompleted', 'ExecutionCompleted']);
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
  const history = await env.client.readStoredHistory('long-1');
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

test('a timeout longer than the lease keeper’s tick is enforced by the lease keeper', async () => {
  // lockTimeoutMs 300: the keeper ticks every 100 ms, so a 400 ms timeout is its to enforce.
  const aborted = [];
  const env = await startEnv(
    (rt) => {
      rt.registerActivity('Hang', (ctx) => new Promise((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          aborted.push(ctx.signal.reason.message);
          resolve('too late');
        });
      }));
      rt.registerOrchestration('Timed', function* (ctx) {
        try {
          return yield ctx.scheduleActivity('Hang');
        } catch (e) {
          return { code: e.code, message: e.message };
        }
      });
    },
    { lockTimeoutMs: LEASE, activityTimeoutMs: 400 },
  );
  try {
    await env.client.startOrchestration('timed', 'Timed');
    const r = await env.client.waitForOrchestration('timed', 10000);
    assert.deepEqual(r.output, { code: 'ERR_TIMEOUT', message: "activity 'Hang' timed out after 400 ms" });
    assert.deepEqual(aborted, ['the activity timed out']);
    const m = env.runtime.metricsSnapshot();
    assert.equal(m.activitiesFailed, 1);
    assert.equal(m.leaseLosses, 0);
  } finally {
    await env.drop();
  }
});

/** An instance whose one activity runs until the test releases it (or its signal fires). */
function heldActivity(rt, seen) {
  rt.registerActivity('Held', (ctx) => new Promise((resolve) => {
    seen.running = true;
    seen.release = () => resolve('released');
    ctx.signal.addEventListener('abort', () => {
      seen.aborted = ctx.signal.reason.message;
      resolve('aborted');
    });
  }));
  rt.registerOrchestration('Holder', function* (ctx) {
    return yield ctx.scheduleActivity('Held');
  });
}

test('an activity whose row is taken away while it runs: the next renewal aborts it and counts one lost lease', async () => {
  const seen = {};
  const env = await startEnv((rt) => heldActivity(rt, seen), { lockTimeoutMs: LEASE });
  try {
    await env.client.startOrchestration('held', 'Holder');
    await eventually(() => seen.running, 10000, 'the activity to run');
    assert.equal(await env.client.deleteInstance('held', { force: true }), 1);
    await eventually(() => seen.aborted, 10000, 'the abort');
    assert.equal(seen.aborted, "the activity's lease was lost");
    await eventually(() => env.runtime.metricsSnapshot().runningActivities === 0, 5000, 'the activity to leave');
    const m = env.runtime.metricsSnapshot();
    assert.equal(m.leaseLosses, 1);
    assert.equal(m.activitiesCompleted, 0);
  } finally {
    await env.drop();
  }
});

test('an activity whose row is taken away while it runs: its late result is refused and counts one lost lease', async () => {
  // The default lease (30 s) renews every 10 s: the result comes long before any renewal.
  const seen = {};
  const env = await startEnv((rt) => heldActivity(rt, seen));
  try {
    await env.client.startOrchestration('held', 'Holder');
    await eventually(() => seen.running, 10000, 'the activity to run');
    assert.equal(await env.client.deleteInstance('held', { force: true }), 1);
    seen.release();
    await eventually(() => env.runtime.metricsSnapshot().leaseLosses === 1, 5000, 'the refused result to be counted');
    const m = env.runtime.metricsSnapshot();
    assert.equal(m.activitiesCompleted, 0, 'a refused result is not a completion');
    assert.equal(m.runningActivities, 0);
    assert.equal(seen.aborted, undefined, 'no renewal came first');
    assert.equal((await env.client.getStatus('held')).status, 'NotFound');
  } finally {
    await env.drop();
  }
});
