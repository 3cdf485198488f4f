'use strict';
// runtime.events(): every activity attempt and the lifecycle of the runtime's work, each
// activity scheduled before it started, a bounded buffer that reports what it dropped.
const test = require('node:test');
const assert = require('node:assert/strict');
const { InvalidArgumentError } = require('..');
const { startEnv, eventually, makeSetup, types, assertInOrder } = require('./helpers');

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

test('runtime.events keeps the newest bufferSize events for a slow reader and says how many it dropped', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Quick', function* (ctx, x) {
      return x;
    });
  });
  try {
    const { client, runtime } = env;
    // Nothing is collected while nobody listens.
    await client.startOrchestration('before', 'Quick', 'unseen');
    await client.waitForOrchestration('before', 10000);

    const stop = new AbortController();
    const slow = runtime.events({ bufferSize: 3, signal: stop.signal });
    const all = [];
    const everything = (async () => {
      for await (const e of runtime.events({ signal: stop.signal })) all.push(e);
    })();
    for (let i = 0; i < 5; i++) {
      await client.startOrchestration(`q-${i}`, 'Quick', i);
      await client.waitForOrchestration(`q-${i}`, 10000);
    }
    // Both listeners get each event at once: when the unbounded one has ten, so has the slow one.
    await eventually(() => all.length === 10, 10000, 'ten events');
    const label = (e) => `${e.type} ${e.instanceId ?? ''}`.trim();
    assert.deepEqual(all.map(label), [0, 1, 2, 3, 4].flatMap((i) => [`instanceStarted q-${i}`, `instanceCompleted q-${i}`]));

    const first = (await slow.next()).value;
    assert.equal(first.type, 'eventsDropped');
    assert.equal(first.count, 7);
    assert.equal(typeof first.timestamp, 'number');
    const kept = [];
    for (let i = 0; i < 3; i++) kept.push((await slow.next()).value);
    assert.deepEqual(kept.map(label), ['instanceCompleted q-3', 'instanceStarted q-4', 'instanceCompleted q-4']);
    assert.equal(kept[2].output, 4);

    // Caught up: the next event comes as it is, with no drop notice.
    await client.startOrchestration('q-5', 'Quick', 5);
    assert.equal(label((await slow.next()).value), 'instanceStarted q-5');
    assert.equal(label((await slow.next()).value), 'instanceCompleted q-5');
    stop.abort();
    assert.equal((await slow.next()).done, true);
    await everything;
  } finally {
    await env.drop();
  }
});
