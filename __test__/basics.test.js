'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv, sleep, eventually, cacheSize } = require('./helpers');
const { TimeoutError, TaskFailedError } = require('..');

test('activities, timers and events run in order and results come back parsed', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Add', async (ctx, { a, b }) => a + b);
    rt.registerActivity('Echo', async (ctx, x) => ({ echoed: x, attempt: ctx.attempt, name: ctx.activityName }));
    rt.registerOrchestration('Flow', function* (ctx, input) {
      const sum = yield ctx.scheduleActivity('Add', { a: input.a, b: 2 });
      const timer = yield ctx.scheduleTimer(50);
      const approval = yield ctx.waitForEvent('approve');
      const echo = yield* ctx.scheduleActivity('Echo', approval);
      return { sum, timer, echo, id: ctx.instanceId, exec: ctx.executionId, name: ctx.orchestrationName };
    });
  });
  try {
    assert.equal(await env.client.startOrchestration('flow-1', 'Flow', { a: 40 }), true);
    await eventually(async () => (await env.client.readExecutionHistory('flow-1')).some((e) => e.kind === 'EventWaitStarted'), 10000, 'the wait');
    await env.client.raiseEvent('flow-1', 'approve', { by: 'ana' });
    const r = await env.client.waitForOrchestration('flow-1', 10000);
    assert.equal(r.status, 'Completed');
    assert.deepEqual(r.output, {
      sum: 42,
      timer: null,
      echo: { echoed: { by: 'ana' }, attempt: 1, name: 'Echo' },
      id: 'flow-1',
      exec: 1,
      name: 'Flow',
    });
    assert.equal(r.error, null);
    const kinds = (await env.client.readExecutionHistory('flow-1', 1)).map((e) => e.kind);
    assert.deepEqual(kinds, [
      'ExecutionStarted', 'ActivityScheduled', 'ActivityCompleted', 'TimerCreated', 'TimerFired',
      'EventWaitStarted', 'EventRaised', 'ActivityScheduled', 'ActivityCompleted', 'ExecutionCompleted',
    ]);
  } finally {
    await env.drop();
  }
});

test('an event raised before the orchestration waits (even before it starts) is kept', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Slow', async () => { await sleep(100); return 1; });
    rt.registerOrchestration('Waiter', function* (ctx) {
      yield ctx.scheduleActivity('Slow');
      const a = yield ctx.waitForEvent('go');
      const b = yield ctx.waitForEvent('go');
      return [a, b];
    });
  });
  try {
    await env.client.raiseEvent('early-1', 'go', 'first'); // before the instance exists
    await env.client.startOrchestration('early-1', 'Waiter');
    await env.client.raiseEvent('early-1', 'go', 'second'); // while the activity runs
    const r = await env.client.waitForOrchestration('early-1', 10000);
    assert.deepEqual(r.output, ['first', 'second']);
  } finally {
    await env.drop();
  }
});

test('an activity error is thrown at the yield and can be caught; an uncaught one fails the instance', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Boom', async (ctx, msg) => {
      const e = new Error(msg);
      e.code = 'E_BOOM';
      throw e;
    });
    rt.registerOrchestration('Catches', function* (ctx) {
      try {
        yield ctx.scheduleActivity('Boom', 'caught me');
        return 'not reached';
      } catch (e) {
        return { message: e.message, code: e.code, isTaskError: e instanceof TaskFailedError };
      }
    });
    rt.registerOrchestration('Throws', function* (ctx) {
      yield ctx.scheduleActivity('Boom', 'uncaught');
    });
  });
  try {
    await env.client.startOrchestration('c-1', 'Catches');
    await env.client.startOrchestration('t-1', 'Throws');
    assert.deepEqual((await env.client.waitForOrchestration('c-1', 10000)).output, { message: 'caught me', code: 'E_BOOM', isTaskError: true });
    const failed = await env.client.waitForOrchestration('t-1', 10000);
    assert.equal(failed.status, 'Failed');
    assert.equal(failed.error, 'uncaught');
    assert.equal(failed.errorCode, 'E_BOOM');
  } finally {
    await env.drop();
  }
});

test('utcNow and newGuid are deterministic values recorded once per turn', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Noop', async () => null);
    rt.registerOrchestration('Clock', function* (ctx) {
      const t1 = yield ctx.utcNow();
      const g1 = yield ctx.newGuid();
      const g2 = yield ctx.newGuid();
      yield ctx.scheduleActivity('Noop');
      const t2 = yield ctx.utcNow();
      return { t1, t2, g1, g2 };
    });
  });
  try {
    const before = Date.now();
    await env.client.startOrchestration('clock-1', 'Clock');
    const { output } = await env.client.waitForOrchestration('clock-1', 10000);
    assert.ok(output.t1 >= before - 5 && output.t1 <= Date.now(), 'utcNow is the turn time');
    // Exactly the time of the history event that resumed the code: the start, then the result.
    const history = await env.client.readExecutionHistory('clock-1');
    assert.deepEqual(history.map((e) => e.kind), ['ExecutionStarted', 'ActivityScheduled', 'ActivityCompleted', 'ExecutionCompleted']);
    assert.equal(output.t1, history[0].timestamp);
    assert.equal(output.t2, history[2].timestamp);
    assert.match(output.g1, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(output.g1, output.g2);
    assert.equal(output.g1.length, 36);
  } finally {
    await env.drop();
  }
});

test('starting an existing id creates nothing and does not fail; status of an unknown id is NotFound', async () => {
  let runs = 0;
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Once', function* (ctx, input) {
      runs++;
      return input;
    });
  });
  try {
    assert.equal(await env.client.startOrchestration('once-1', 'Once', 1), true);
    assert.equal((await env.client.waitForOrchestration('once-1', 10000)).output, 1);
    assert.equal(await env.client.startOrchestration('once-1', 'Once', 2), false);
    await sleep(100);
    const s = await env.client.getStatus('once-1');
    assert.equal(s.output, 1);
    assert.equal((await env.client.getStatus('nobody')).status, 'NotFound');
    assert.equal((await env.client.readExecutionHistory('once-1')).filter((e) => e.kind === 'ExecutionStarted').length, 1);
    assert.equal(runs, 1, 'the second start ran nothing');
  } finally {
    await env.drop();
  }
});

test('waitForOrchestration rejects with a TimeoutError', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Forever', function* (ctx) {
      yield ctx.waitForEvent('never');
    });
  });
  try {
    await env.client.startOrchestration('forever-1', 'Forever');
    await assert.rejects(env.client.waitForOrchestration('forever-1', 200), (e) => e instanceof TimeoutError && e.code === 'ERR_TIMEOUT');
    assert.equal((await env.client.getStatus('forever-1')).status, 'Running');
  } finally {
    await env.drop();
  }
});

test('custom status is visible to the client and undefined crosses as null', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Progress', function* (ctx) {
      ctx.setCustomStatus({ step: 1 });
      yield ctx.waitForEvent('next');
      ctx.setCustomStatus({ step: 2, seen: ctx.getCustomStatus() });
      return undefined;
    });
  });
  try {
    await env.client.startOrchestration('p-1', 'Progress');
    const s = await eventually(async () => {
      const st = await env.client.getStatus('p-1');
      return st.customStatusVersion === 1 && st;
    });
    assert.deepEqual(s.customStatus, { step: 1 });
    await env.client.raiseEvent('p-1', 'next', null);
    const r = await env.client.waitForOrchestration('p-1', 10000);
    assert.deepEqual(r.customStatus, { step: 2, seen: { step: 1 } });
    assert.equal(r.customStatusVersion, 2);
    assert.equal(r.output, null);
  } finally {
    await env.drop();
  }
});

test('trace calls are silent during replay and do not disturb the run', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('A', async () => 1);
    rt.registerOrchestration('Traced', function* (ctx) {
      ctx.traceInfo('before');
      yield ctx.scheduleActivity('A');
      ctx.traceWarn('between');
      ctx.traceDebug('debug');
      ctx.traceError('after');
      return ctx.isReplaying;
    });
  });
  try {
    await env.client.startOrchestration('tr-1', 'Traced');
    assert.equal((await env.client.waitForOrchestration('tr-1', 10000)).output, false);
  } finally {
    await env.drop();
  }
});

test('waitForStatusChange follows custom status as progress, then the end', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Step', async (ctx, n) => n);
    rt.registerOrchestration('Progress', function* (ctx) {
      for (let i = 1; i <= 3; i++) {
        yield ctx.scheduleActivity('Step', i);
        ctx.setCustomStatus({ done: i, of: 3 });
        yield ctx.waitForEvent('next');
      }
      return 'finished';
    });
  });
  try {
    await env.client.startOrchestration('progress-1', 'Progress');
    let version = 0;
    const seen = [];
    for (;;) {
      const s = await env.client.waitForStatusChange('progress-1', version, 10000);
      if (s.status !== 'Running') {
        assert.equal(s.output, 'finished');
        break;
      }
      version = s.customStatusVersion;
      seen.push(s.customStatus.done);
      await env.client.raiseEvent('progress-1', 'next', null);
    }
    assert.deepEqual(seen, [1, 2, 3]);
    await assert.rejects(env.client.waitForStatusChange('nobody', 0, 50), TimeoutError);
    await assert.rejects(env.client.waitForStatusChange('progress-1', -1), /lastVersion must be an integer >= 0/);
  } finally {
    await env.drop();
  }
});

test('newGuid is a v5 UUID of instanceId:executionId:counter: two instances get different GUIDs, each stable across replays', async () => {
  const seen = { 'guid-a': [], 'guid-b': [] };
  const env = await startEnv((rt) => {
    rt.registerActivity('Noop', async () => null);
    rt.registerOrchestration('Guids', function* (ctx) {
      const g1 = yield ctx.newGuid();
      seen[ctx.instanceId].push(g1);
      yield ctx.scheduleActivity('Noop');
      const g2 = yield ctx.newGuid();
      return [g1, g2];
    });
  });
  try {
    await env.client.startOrchestration('guid-a', 'Guids');
    await env.client.startOrchestration('guid-b', 'Guids');
    const a = (await env.client.waitForOrchestration('guid-a', 10000)).output;
    const b = (await env.client.waitForOrchestration('guid-b', 10000)).output;
    // v5 UUIDs of 'guid-a:1:0', 'guid-a:1:1', … in reprise's namespace. Replays recompute them,
    // so these values must never change between releases.
    assert.deepEqual(a, ['22bd4f60-e7cc-5451-b606-0b79532f7cde', '68d68de6-9052-5cfc-9ab9-c9811007089f']);
    assert.deepEqual(b, ['c759b03a-e5c9-5e48-a47f-d1a762a7b10a', '38006cb2-1ac0-5142-a1e4-4fdddea70650']);
    assert.equal(new Set([...a, ...b]).size, 4, 'no GUID is shared between the instances');
    // Each run of the code (one per turn when every turn replays) drew the same first GUID.
    const runs = cacheSize === 0 ? 2 : 1;
    assert.deepEqual(seen, { 'guid-a': Array(runs).fill(a[0]), 'guid-b': Array(runs).fill(b[0]) });
  } finally {
    await env.drop();
  }
});

test('a top-level function or symbol crosses as null: an orchestration output, an activity result', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Symbol', async () => Symbol('not JSON'));
    rt.registerActivity('Fn', async () => () => 'not JSON');
    rt.registerOrchestration('ReturnsFunction', function* () {
      return function notJson() {};
    });
    rt.registerOrchestration('GetsSymbol', function* (ctx) {
      const s = yield ctx.scheduleActivity('Symbol');
      const f = yield ctx.scheduleActivity('Fn');
      return { s, f };
    });
  });
  try {
    await env.client.startOrchestration('fn-out', 'ReturnsFunction');
    await env.client.startOrchestration('sym-result', 'GetsSymbol');
    const fn = await env.client.waitForOrchestration('fn-out', 10000);
    assert.equal(fn.status, 'Completed', fn.error);
    assert.equal(fn.output, null);
    const history = await env.client.readExecutionHistory('fn-out');
    assert.deepEqual(history.map((e) => e.kind), ['ExecutionStarted', 'ExecutionCompleted']);
    assert.deepEqual(history[1].data, { output: null });
    const sym = await env.client.waitForOrchestration('sym-result', 10000);
    assert.equal(sym.status, 'Completed', sym.error);
    assert.deepEqual(sym.output, { s: null, f: null });
  } finally {
    await env.drop();
  }
});
