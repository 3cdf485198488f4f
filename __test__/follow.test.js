'use strict';
// Acting on and following instances: retryInstance from the last good point, client.watch()
// and runtime.events() as async iterators of lifecycle events.
const test = require('node:test');
const assert = require('node:assert/strict');
const { InvalidStateError, NotFoundError, InvalidArgumentError } = require('..');
const { startEnv, eventually } = require('./helpers');

/** Calls per activity name, and switches the tests flip between runs. */
function makeSetup() {
  const calls = {};
  const flags = { failC: true, failX: true, broken: true, flaky: 0 };
  const count = (name) => {
    calls[name] = (calls[name] || 0) + 1;
  };
  const setup = (rt) => {
    rt.registerActivity('A', (ctx, n) => {
      count('A');
      return n + 1;
    });
    rt.registerActivity('B', (ctx, n) => {
      count('B');
      return n * 10;
    });
    rt.registerActivity('C', (ctx, n) => {
      count('C');
      if (flags.failC) throw new Error('C is down');
      return n + 5;
    });
    rt.registerActivity('X', () => {
      count('X');
      if (flags.failX) throw new Error('X is down');
      return 'x';
    });
    rt.registerActivity('Flaky', (ctx) => {
      count('Flaky');
      if (ctx.attempt === 1) throw new Error('first attempt fails');
      return ctx.attempt;
    });
    rt.registerOrchestration('ThreeSteps', function* (ctx, n) {
      const a = yield ctx.scheduleActivity('A', n);
      const b = yield ctx.scheduleActivity('B', a);
      ctx.setCustomStatus({ step: 'C' });
      const c = yield ctx.scheduleActivity('C', b);
      return { a, b, c };
    });
    rt.registerOrchestration('Kid', function* (ctx) {
      return yield ctx.scheduleActivity('X', null);
    });
    rt.registerOrchestration('Parent', function* (ctx) {
      const a = yield ctx.scheduleActivity('A', 1);
      const kid = yield ctx.scheduleSubOrchestration('Kid', null);
      return { a, kid };
    });
    rt.registerOrchestration('Buggy', function* (ctx) {
      const a = yield ctx.scheduleActivity('A', 1);
      if (flags.broken) throw new Error('a bug after A');
      return a;
    });
    rt.registerOrchestration('Idle', function* (ctx) {
      return yield ctx.waitForEvent('go');
    });
    rt.registerOrchestration('Tour', function* (ctx) {
      const flaky = yield ctx.scheduleActivityWithRetry('Flaky', null, { maxAttempts: 3, initialDelayMs: 300 });
      yield ctx.scheduleTimer(20);
      ctx.setCustomStatus('waiting');
      const go = yield ctx.waitForEvent('go');
      return { flaky, go };
    });
    rt.registerOrchestration('Loop', function* (ctx, n) {
      if (n < 2) return yield ctx.continueAsNew(n + 1);
      return n;
    });
  };
  return { calls, flags, setup };
}

const types = (events) => events.map((e) => e.type);

/** Asserts `wanted` appear in `actual` in this order (others may come between). */
function assertInOrder(actual, wanted) {
  let i = 0;
  for (const t of actual) if (t === wanted[i]) i += 1;
  assert.equal(i, wanted.length, `expected ${wanted.join(' > ')} in order within ${actual.join(', ')}`);
}

test('retryInstance re-runs only the failed activity after two that succeeded', async () => {
  const { calls, flags, setup } = makeSetup();
  const env = await startEnv(setup);
  try {
    const { client } = env;
    await client.startOrchestration('r1', 'ThreeSteps', 1);
    const failed = await client.waitForOrchestration('r1', 10000);
    assert.equal(failed.status, 'Failed');
    assert.match(failed.error, /C is down/);
    assert.deepEqual(calls, { A: 1, B: 1, C: 1 });

    flags.failC = false;
    assert.deepEqual(await client.retryInstance('r1'), ['r1']);
    const done = await client.waitForOrchestration('r1', 10000);
    assert.equal(done.status, 'Completed');
    assert.deepEqual(done.output, { a: 2, b: 20, c: 25 });
    assert.deepEqual(calls, { A: 1, B: 1, C: 2 }, 'A and B ran once; only C ran again');
    assert.deepEqual(done.customStatus, { step: 'C' });

    const info = await client.getInstanceInfo('r1');
    assert.equal(info.status, 'Completed');
    assert.equal(info.error, null);
    const history = await client.readExecutionHistory('r1');
    const kinds = history.map((e) => e.kind);
    assert.equal(kinds.filter((k) => k === 'ExecutionFailed').length, 0, 'the failure left the history');
    const retried = history.find((e) => e.kind === 'ExecutionRetried');
    assert.match(retried.data.error.message, /C is down/);
    assert.equal(kinds.filter((k) => k === 'ActivityScheduled').length, 3);
    assert.deepEqual(history.map((e) => e.eventId), history.map((_, i) => i + 1), 'event ids stay dense');
  } finally {
    await env.drop();
  }
});

test('retryInstance refuses unknown, running and completed instances and changes nothing', async () => {
  const { setup } = makeSetup();
  const env = await startEnv(setup);
  try {
    const { client } = env;
    await assert.rejects(client.retryInstance('nobody'), (e) => e instanceof NotFoundError && e.code === 'ERR_NOT_FOUND');
    await client.startOrchestration('idle', 'Idle');
    await eventually(async () => (await client.getStatus('idle')).status === 'Running');
    await assert.rejects(client.retryInstance('idle'), (e) => e instanceof InvalidStateError && /is Running/.test(e.message));
    await client.raiseEvent('idle', 'go', 1);
    await client.waitForOrchestration('idle', 10000);
    const before = await client.readExecutionHistory('idle');
    await assert.rejects(client.retryInstance('idle'), (e) => e instanceof InvalidStateError && /is Completed/.test(e.message));
    assert.deepEqual(await client.readExecutionHistory('idle'), before);
    await assert.rejects(client.retryInstance(''), InvalidArgumentError);
  } finally {
    await env.drop();
  }
});

test('retryInstance of a parent retries its failed sub-orchestration too', async () => {
  const { calls, flags, setup } = makeSetup();
  const env = await startEnv(setup);
  try {
    const { client } = env;
    await client.startOrchestration('p1', 'Parent');
    assert.equal((await client.waitForOrchestration('p1', 10000)).status, 'Failed');
    const kidId = (await client.listInstances({ parentId: 'p1' })).instances[0].instanceId;
    assert.equal((await client.getStatus(kidId)).status, 'Failed');

    flags.failX = false;
    assert.deepEqual(await client.retryInstance('p1'), ['p1', kidId]);
    const done = await client.waitForOrchestration('p1', 10000);
    assert.equal(done.status, 'Completed');
    assert.deepEqual(done.output, { a: 2, kid: 'x' });
    assert.equal((await client.getStatus(kidId)).status, 'Completed');
    assert.deepEqual(calls, { A: 1, X: 2 });
  } finally {
    await env.drop();
  }
});

test('retryInstance after a bug fix re-runs the code of the failed turn without repeating its activity', async () => {
  const { calls, flags, setup } = makeSetup();
  const env = await startEnv(setup);
  try {
    const { client } = env;
    await client.startOrchestration('b1', 'Buggy');
    const failed = await client.waitForOrchestration('b1', 10000);
    assert.match(failed.error, /a bug after A/);
    flags.broken = false; // the "deployed fix"
    await client.retryInstance('b1');
    const done = await client.waitForOrchestration('b1', 10000);
    assert.equal(done.status, 'Completed');
    assert.equal(done.output, 2);
    assert.deepEqual(calls, { A: 1 });
  } finally {
    await env.drop();
  }
});

test('client.watch follows an instance from its start to its completion, retries included', async () => {
  const { setup } = makeSetup();
  const env = await startEnv(setup);
  try {
    const { client } = env;
    await client.startOrchestration('w1', 'Tour');
    const seen = [];
    for await (const event of client.watch('w1')) {
      seen.push(event);
      assert.equal(event.instanceId, 'w1');
      assert.equal(typeof event.timestamp, 'number');
      if (event.type === 'customStatusChanged') await client.raiseEvent('w1', 'go', 'now');
    }
    assertInOrder(types(seen), [
      'instanceStarted',
      'activityScheduled',
      'activityRetried',
      'activityCompleted',
      'timerCreated',
      'timerFired',
      'customStatusChanged',
      'eventWaitStarted',
      'eventReceived',
      'instanceCompleted',
    ]);
    const retried = seen.find((e) => e.type === 'activityRetried');
    assert.equal(retried.name, 'Flaky');
    assert.equal(retried.attempt, 2);
    assert.equal(retried.task, 1);
    assert.equal(seen.find((e) => e.type === 'activityCompleted').result, 2);
    assert.deepEqual(seen.at(-1).output, { flaky: 2, go: 'now' });
    assert.equal(seen.find((e) => e.type === 'customStatusChanged').value, 'waiting');
    const fromHistory = seen.filter((e) => e.eventId !== undefined).map((e) => e.eventId);
    assert.deepEqual(fromHistory, fromHistory.map((_, i) => i + 1), 'every history event once, in order');

    // A second watch of the finished instance replays its history and ends.
    const again = [];
    for await (const event of client.watch('w1', { types: ['instanceStarted', 'instanceCompleted'] })) again.push(event.type);
    assert.deepEqual(again, ['instanceStarted', 'instanceCompleted']);
  } finally {
    await env.drop();
  }
});

test('client.watch stops on abort, begins at now when asked, and follows continue-as-new', async () => {
  const { setup } = makeSetup();
  const env = await startEnv(setup);
  try {
    const { client } = env;
    await assert.rejects(async () => {
      for await (const e of client.watch('nobody')) assert.fail(`unexpected ${e.type}`);
    }, NotFoundError);
    await assert.rejects(async () => {
      for await (const e of client.watch('x', { since: 'later' })) assert.fail(`unexpected ${e.type}`);
    }, (e) => e instanceof InvalidArgumentError && e.message.includes('options.since'));

    await client.startOrchestration('idle', 'Idle');
    await eventually(async () => (await client.readExecutionHistory('idle')).length >= 2);
    const controller = new AbortController();
    const seen = [];
    const watching = (async () => {
      for await (const event of client.watch('idle', { since: 'now', signal: controller.signal })) {
        seen.push(event.type);
        if (event.type === 'eventReceived') controller.abort();
      }
    })();
    // Let the watch begin before the event arrives.
    await new Promise((r) => setTimeout(r, 100));
    await client.raiseEvent('idle', 'go', 1);
    await watching;
    assert.deepEqual(seen, ['eventReceived'], 'nothing from before the watch began; nothing after the abort');

    const aborted = new AbortController();
    aborted.abort();
    for await (const e of client.watch('idle', { signal: aborted.signal })) assert.fail(`unexpected ${e.type}`);

    await client.startOrchestration('loop', 'Loop', 0);
    const loop = [];
    for await (const event of client.watch('loop', { types: ['instanceStarted', 'instanceContinuedAsNew', 'instanceCompleted'] })) {
      loop.push(`${event.type}@${event.executionId}`);
    }
    assert.deepEqual(loop, [
      'instanceStarted@1',
      'instanceContinuedAsNew@1',
      'instanceStarted@2',
      'instanceContinuedAsNew@2',
      'instanceStarted@3',
      'instanceCompleted@3',
    ]);
  } finally {
    await env.drop();
  }
});

test('runtime.events reports every activity attempt and the lifecycle of the runtime’s work', async () => {
  const { setup } = makeSetup();
  const env = await startEnv(setup);
  try {
    const { client, runtime } = env;
    const controller = new AbortController();
    const events = runtime.events({ instanceId: 'e1', signal: controller.signal });
    const others = runtime.events({ types: ['instanceCompleted'] });
    await client.startOrchestration('e1', 'Tour');
    await client.startOrchestration('e2', 'Idle');
    const seen = [];
    for await (const event of events) {
      seen.push(event);
      assert.equal(event.instanceId, 'e1');
      if (event.type === 'customStatusChanged') await client.raiseEvent('e1', 'go', 'yes');
      if (event.type === 'instanceCompleted') controller.abort();
    }
    const attempts = seen.filter((e) => e.type.startsWith('activity')).map((e) => `${e.type}#${e.attempt ?? ''}`);
    assert.deepEqual(attempts, [
      'activityScheduled#',
      'activityStarted#1',
      'activityRetried#2',
      'activityStarted#2',
      'activityCompleted#',
    ]);
    // The one retry waits initialDelayMs (300): retryAt is 300 ms after the failure, which
    // came between the attempt's start and the retry's report.
    const retried = seen.find((e) => e.type === 'activityRetried');
    const firstAttempt = seen.find((e) => e.type === 'activityStarted' && e.attempt === 1);
    assert.ok(retried.retryAt - retried.timestamp <= 300 && retried.retryAt - firstAttempt.timestamp >= 300, `retryAt ${retried.retryAt}: 300 ms after a failure between ${firstAttempt.timestamp} and ${retried.timestamp}`);
    assert.ok(seen.find((e) => e.type === 'activityStarted' && e.attempt === 2).timestamp >= retried.retryAt, 'attempt 2 waited for retryAt');
    assert.match(seen.find((e) => e.type === 'activityRetried').error.message, /first attempt fails/);
    assertInOrder(types(seen), ['instanceStarted', 'timerCreated', 'timerFired', 'eventReceived', 'instanceCompleted']);

    await client.raiseEvent('e2', 'go', 2);
    const next = await others.next();
    assert.equal(next.value.type, 'instanceCompleted');
    assert.equal(next.value.instanceId, 'e1', 'e1 finished before e2 got its event');
    assert.deepEqual(next.value.output, { flaky: 2, go: 'yes' });
    const second = await others.next();
    assert.equal(second.value.instanceId, 'e2');
    assert.equal(second.value.output, 2);
    await env.stop();
    // Shutting down ends every listener.
    for (;;) {
      const r = await others.next();
      if (r.done) break;
    }
    assert.throws(() => runtime.events({ types: ['nope'] }), InvalidArgumentError);
  } finally {
    await env.drop();
  }
});

test('runtime.events reports every activity as scheduled before it started', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Quick', async (ctx, n) => n);
    rt.registerOrchestration('Fan', function* (ctx, n) {
      const tasks = [];
      for (let i = 0; i < n; i++) tasks.push(ctx.scheduleActivity('Quick', i));
      // 'Elsewhere' (registered in no process) comes first: the commit claims none of these
      // activities itself, so the activity loop races the commit's events for them.
      const first = yield ctx.race(ctx.scheduleActivity('Elsewhere'), ctx.all(tasks));
      return first.value.length;
    });
  }, { workerConcurrency: 3 });
  try {
    const { client, runtime } = env;
    const stop = new AbortController();
    const seen = [];
    let completed = 0;
    const listening = (async () => {
      for await (const e of runtime.events({ signal: stop.signal, types: ['activityScheduled', 'activityStarted', 'instanceCompleted'] })) {
        seen.push(e);
        if (e.type === 'instanceCompleted' && ++completed === 10) stop.abort();
      }
    })();
    for (let i = 0; i < 10; i++) await client.startOrchestration(`fan-${i}`, 'Fan', 8);
    await listening;
    const scheduled = new Set();
    let started = 0;
    for (const e of seen) {
      const key = `${e.instanceId}#${e.task}`;
      if (e.type === 'activityScheduled') scheduled.add(key);
      if (e.type === 'activityStarted') {
        started += 1;
        assert.ok(scheduled.has(key), `${key} started before it was scheduled`);
      }
    }
    assert.equal(scheduled.size, 90, 'eight Quick and one Elsewhere per instance');
    assert.equal(started, 80);
  } finally {
    await env.drop();
  }
});

test('retryInstance refuses when the sub-orchestration id it waits for belongs to another instance', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Idle', function* (ctx) {
      return yield ctx.waitForEvent('go');
    });
    rt.registerOrchestration('Taker', function* (ctx) {
      return yield ctx.scheduleSubOrchestrationWithId('Idle', 'taken', null);
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('taken', 'Idle');
    await client.startOrchestration('taker', 'Taker');
    const failed = await client.waitForOrchestration('taker', 10000);
    assert.equal(failed.errorCode, 'ERR_ALREADY_EXISTS');
    const before = await client.readExecutionHistory('taker');
    await assert.rejects(client.retryInstance('taker'), (e) => e instanceof InvalidStateError && /'taken' it waits for is not its sub-orchestration/.test(e.message));
    assert.deepEqual(await client.readExecutionHistory('taker'), before, 'nothing changed');
    assert.equal((await client.getStatus('taker')).status, 'Failed');
  } finally {
    await env.drop();
  }
});
