'use strict';
// ctx.all and ctx.race: all never throws, a race cancels its losers (activities, waits,
// sub-orchestrations, a whole ctx.all) and fires their signals, a failed winner throws with
// .index, a loser yielded again throws; a loser finishing late is no lost lease and does not
// hold up shutdown.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv, eventually, hanging } = require('./helpers');

test('all over an activity, a timer and an event resolves in order and never throws', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Double', async (ctx, n) => n * 2);
    rt.registerActivity('Fail', async () => {
      throw new Error('bad luck');
    });
    rt.registerOrchestration('Fan', function* (ctx) {
      const r = yield ctx.all([ctx.scheduleActivity('Double', 21), ctx.scheduleTimer(30), ctx.waitForEvent('go'), ctx.scheduleActivity('Fail')]);
      return r;
    });
  });
  try {
    await env.client.startOrchestration('all-1', 'Fan');
    await env.client.raiseEvent('all-1', 'go', { yes: true });
    const r = await env.client.waitForOrchestration('all-1', 10000);
    assert.deepEqual(r.output, [{ ok: 42 }, { ok: null }, { ok: { yes: true } }, { err: 'bad luck' }]);
  } finally {
    await env.drop();
  }
});

test('race: the timer wins, the losing activity is cancelled and its signal fires after the commit', async () => {
  let abortedReason = null;
  const env = await startEnv((rt) => {
    rt.registerActivity('Slow', (ctx) => new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        abortedReason = ctx.signal.reason.message;
        setTimeout(() => resolve('late result'), 20);
      });
    }));
    rt.registerOrchestration('Racer', function* (ctx) {
      const r = yield ctx.race(ctx.scheduleActivity('Slow'), ctx.scheduleTimer(50), ctx.waitForEvent('never'));
      const after = yield ctx.scheduleTimer(100); // give a late completion time to arrive
      return { r, after };
    });
  });
  try {
    await env.client.startOrchestration('race-1', 'Racer');
    const r = await env.client.waitForOrchestration('race-1', 10000);
    assert.deepEqual(r.output, { r: { index: 1, value: null }, after: null });
    assert.equal(abortedReason, 'the orchestration no longer waits for this activity');
    const history = await env.client.readStoredHistory('race-1');
    const canceled = history.filter((e) => e.kind === 'TaskCanceled').map((e) => e.taskId);
    assert.deepEqual(canceled, [1, 3], 'the activity and the wait were cancelled');
    const lateResultRecorded = history.some((e) => e.kind === 'ActivityCompleted');
    assert.equal(lateResultRecorded, false, 'the late completion was dropped');
  } finally {
    await env.drop();
  }
});

test('a race whose winner failed throws at the yield with .index', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Fail', async () => {
      throw Object.assign(new Error('winner failed'), { code: 'E_WIN' });
    });
    rt.registerOrchestration('BadRace', function* (ctx) {
      try {
        yield ctx.race(ctx.scheduleTimer(5000), ctx.scheduleActivity('Fail'));
        return 'no';
      } catch (e) {
        return { message: e.message, index: e.index, code: e.code };
      }
    });
  });
  try {
    await env.client.startOrchestration('br-1', 'BadRace');
    assert.deepEqual((await env.client.waitForOrchestration('br-1', 10000)).output, { message: 'winner failed', index: 1, code: 'E_WIN' });
    const history = await env.client.readStoredHistory('br-1');
    assert.deepEqual(history.filter((e) => e.kind === 'TaskCanceled').map((e) => e.taskId), [1], 'the losing timer was cancelled');
  } finally {
    await env.drop();
  }
});

test('a race lost by ctx.all cancels every activity inside it: TaskCanceled for each, and their signals fire', async () => {
  const aborted = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('Hang', (ctx, who) => new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        aborted.push({ who, reason: ctx.signal.reason.message });
        resolve(`late result of ${who}`);
      });
    }));
    rt.registerOrchestration('NestedLoser', function* (ctx) {
      const r = yield ctx.race(ctx.all([ctx.scheduleActivity('Hang', 'a'), ctx.scheduleActivity('Hang', 'b')]), ctx.scheduleTimer(500));
      const after = yield ctx.scheduleTimer(100); // time for late results, which must be dropped
      return { r, after };
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('nested-loser', 'NestedLoser');
    const r = await client.waitForOrchestration('nested-loser', 10000);
    assert.equal(r.status, 'Completed', r.error);
    assert.deepEqual(r.output, { r: { index: 1, value: null }, after: null });
    const history = await client.readStoredHistory('nested-loser');
    assert.deepEqual(history.filter((e) => e.kind === 'TaskCanceled').map((e) => e.taskId), [1, 2]);
    assert.equal(history.filter((e) => e.kind === 'ActivityCompleted').length, 0, 'the late results were dropped');
    await eventually(() => aborted.length === 2, 5000, 'both signals');
    assert.deepEqual(aborted.sort((x, y) => x.who.localeCompare(y.who)), [
      { who: 'a', reason: 'the orchestration no longer waits for this activity' },
      { who: 'b', reason: 'the orchestration no longer waits for this activity' },
    ]);
    await eventually(() => env.runtime.metricsSnapshot().runningActivities === 0, 5000, 'the losers to finish');
  } finally {
    await env.drop();
  }
});

test('race losers: a losing sub-orchestration is cancelled; losers yielded again throw “canceled: lost a race”', async () => {
  const aborted = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('Hang', hanging(aborted));
    rt.registerOrchestration('Idle', function* (ctx) {
      return yield ctx.waitForEvent('never');
    });
    rt.registerOrchestration('Racer', function* (ctx) {
      const child = ctx.scheduleSubOrchestration('Idle', null);
      const activity = ctx.scheduleActivity('Hang', 'loser');
      const wait = ctx.waitForEvent('late');
      const r = yield ctx.race(child, activity, wait, ctx.scheduleTimer(100));
      const again = [];
      for (const loser of [child, activity, wait]) {
        try {
          again.push({ value: yield loser });
        } catch (e) {
          again.push({ code: e.code, message: e.message, name: e.name });
        }
      }
      return { r, again };
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('racer', 'Racer');
    const r = await client.waitForOrchestration('racer', 10000);
    assert.equal(r.status, 'Completed', r.error);
    const lost = { code: 'ERR_CANCELED', message: 'canceled: lost a race', name: 'TaskFailedError' };
    assert.deepEqual(r.output, { r: { index: 3, value: null }, again: [lost, lost, lost] });
    const child = await client.waitForOrchestration('racer:1:1', 10000);
    assert.equal(child.status, 'Failed');
    assert.equal(child.error, 'canceled: the parent no longer waits for it');
    assert.equal(child.errorCode, 'ERR_CANCELED');
    const history = await client.readStoredHistory('racer');
    assert.deepEqual(history.filter((e) => e.kind === 'TaskCanceled').map((e) => e.taskId), [1, 2, 3]);
    assert.equal(history.filter((e) => e.kind === 'ChildFailed').length, 0, 'the cancelled child does not report back');
    await eventually(() => aborted.length === 1, 5000, 'the losing activity’s signal');
    assert.deepEqual(aborted, [{ who: 'loser', reason: 'the orchestration no longer waits for this activity' }]);
    // (Shut down only once it has finished: see the shutdown test below.)
    await eventually(() => env.runtime.metricsSnapshot().runningActivities === 0, 5000, 'the loser to finish');
  } finally {
    await env.drop();
  }
});

test('an activity that finishes on its own after losing a race is not counted as a lost lease', async () => {
  const reasons = [];
  let finished = 0;
  const env = await startEnv((rt) => {
    // Aborting only fires the signal: this function does not stop for it and resolves normally
    // afterwards (allowed). It waits for the signal first so that, on a loaded machine, it cannot
    // finish before the cancellation reaches it (a 10 s fallback keeps a missed signal visible).
    rt.registerActivity('Stubborn', (ctx) => new Promise((resolve) => {
      const finish = () => {
        finished += 1;
        resolve('done anyway');
      };
      const fallback = setTimeout(finish, 10000);
      ctx.signal.addEventListener('abort', () => {
        reasons.push(ctx.signal.reason.message);
        clearTimeout(fallback);
        setTimeout(finish, 100);
      });
    }));
    rt.registerOrchestration('Race', function* (ctx) {
      return yield ctx.race(ctx.scheduleActivity('Stubborn'), ctx.scheduleTimer(50));
    });
  });
  try {
    await env.client.startOrchestration('stubborn', 'Race');
    assert.deepEqual((await env.client.waitForOrchestration('stubborn', 10000)).output, { index: 1, value: null });
    await eventually(() => finished === 1 && env.runtime.metricsSnapshot().runningActivities === 0, 15000, 'the loser to finish');
    assert.deepEqual(reasons, ['the orchestration no longer waits for this activity']);
    assert.equal((await env.client.readStoredHistory('stubborn')).filter((e) => e.kind === 'ActivityCompleted').length, 0, 'its result is dropped');
    assert.equal(env.runtime.metricsSnapshot().leaseLosses, 0);
  } finally {
    await env.drop();
  }
});

test('shutdown resolves as soon as a race loser that was still winding down has finished', async () => {
  const reasons = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('WindsDown', (ctx) => new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        reasons.push(ctx.signal.reason.message);
        setTimeout(() => resolve('cleaned up'), 30);
      });
    }));
    rt.registerOrchestration('Race', function* (ctx) {
      return yield ctx.race(ctx.scheduleActivity('WindsDown'), ctx.scheduleTimer(50));
    });
  });
  try {
    await env.client.startOrchestration('winds-down', 'Race');
    await env.client.waitForOrchestration('winds-down', 10000);
    await eventually(() => reasons.length === 1, 5000, 'the loser’s signal');
    const started = Date.now();
    await env.runtime.shutdown(2000);
    const took = Date.now() - started;
    assert.ok(took < 1000, `shutdown took ${took} ms for an activity that finished 30 ms after it began (deadline 2000 ms)`);
  } finally {
    await env.drop();
  }
});

test('ctx.all over 200 activities finishing in a shuffled order gives every result in task order, in every turn', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Late', async (ctx, i) => {
      await new Promise((r) => setTimeout(r, (i * 37) % 50));
      return i * 3;
    });
    rt.registerOrchestration('Wide', function* (ctx, n) {
      const all = yield ctx.all(Array.from({ length: n }, (_, i) => ctx.scheduleActivity('Late', i)));
      const again = yield ctx.all([ctx.scheduleActivity('Late', 1), ctx.scheduleActivity('Late', 0)]);
      return { all, again };
    });
  });
  try {
    await env.client.startOrchestration('wide', 'Wide', 200);
    const { output } = await env.client.waitForOrchestration('wide', 30000);
    assert.deepEqual(output.all, Array.from({ length: 200 }, (_, i) => ({ ok: i * 3 })));
    assert.deepEqual(output.again, [{ ok: 3 }, { ok: 0 }]);
  } finally {
    await env.drop();
  }
});
