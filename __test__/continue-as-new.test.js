'use strict';
// Continue-as-new: a fresh history that carries unconsumed events (in arrival order) and custom
// status, a pinned version, the parent link kept, work of the old execution dropped.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv, eventually, sleep, hanging, historyHas: waitingFor } = require('./helpers');

test('continue-as-new loops with fresh history, carrying unconsumed events and custom status', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Counter', function* (ctx, n) {
      if (n === 0) ctx.setCustomStatus({ started: true });
      if (n < 3) {
        // Nobody waits for 'carried' until the last execution; it must survive each restart.
        yield ctx.scheduleTimer(10);
        return yield ctx.continueAsNew(n + 1);
      }
      const carried = yield ctx.waitForEvent('carried');
      return { n, carried, exec: ctx.executionId, status: ctx.getCustomStatus() };
    });
  });
  try {
    await env.client.startOrchestration('can-1', 'Counter', 0);
    await env.client.raiseEvent('can-1', 'carried', 'kept');
    const r = await env.client.waitForOrchestration('can-1', 10000);
    assert.deepEqual(r.output, { n: 3, carried: 'kept', exec: 4, status: { started: true } });
    assert.deepEqual(r.customStatus, { started: true });
    const first = await env.client.readStoredHistory('can-1', 1);
    assert.equal(first[first.length - 1].kind, 'ContinuedAsNew');
    const last = await env.client.readStoredHistory('can-1');
    assert.equal(last[0].kind, 'ExecutionStarted');
    assert.equal(last.filter((e) => e.kind === 'TimerCreated').length, 0, 'the last execution has a fresh history');
  } finally {
    await env.drop();
  }
});

test('continueAsNewVersioned pins the next execution; a detached start in the same turn is not lost', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Leaf', function* (ctx, x) {
      return x;
    });
    rt.registerOrchestrationVersioned('Looper', '1.0.0', function* (ctx, round) {
      if (round === 0) {
        yield ctx.startOrchestration('Leaf', 'leaf-from-round-0', 'started before continuing');
        return yield ctx.continueAsNewVersioned(1, '1.0.0');
      }
      return `round ${round} on ${ctx.orchestrationVersion}`;
    });
    rt.registerOrchestrationVersioned('Looper', '2.0.0', function* () {
      return 'v2';
    });
  });
  try {
    await env.client.startOrchestration('looper-1', 'Looper', 0, { version: '1.0.0' });
    assert.equal((await env.client.waitForOrchestration('looper-1', 10000)).output, 'round 1 on 1.0.0');
    assert.equal((await env.client.waitForOrchestration('leaf-from-round-0', 10000)).output, 'started before continuing');
  } finally {
    await env.drop();
  }
});

test('continue-as-new carries two unconsumed events of one name in arrival order', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Carrier', function* (ctx, round) {
      if (round === 0) {
        yield ctx.waitForEvent('next');
        return yield ctx.continueAsNew(1);
      }
      const a = yield ctx.waitForEvent('x');
      const b = yield ctx.waitForEvent('x');
      return { a, b, exec: ctx.executionId };
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('carry-order', 'Carrier', 0);
    await waitingFor(client, 'carry-order', 'EventWaitStarted');
    await client.raiseEvent('carry-order', 'x', 'first');
    await client.raiseEvent('carry-order', 'x', 'second');
    await client.raiseEvent('carry-order', 'next', null);
    const r = await client.waitForOrchestration('carry-order', 10000);
    assert.equal(r.status, 'Completed', r.error);
    assert.deepEqual(r.output, { a: 'first', b: 'second', exec: 2 });
  } finally {
    await env.drop();
  }
});

test('continue-as-new keeps the parent link; work the old execution dropped never reaches the new one', async () => {
  const aborted = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('Hang', hanging(aborted));
    rt.registerActivity('Slow', async (ctx, x) => {
      await sleep(150); // long enough for a late result of the old execution to arrive first
      return `${x} on execution ${ctx.executionId}`;
    });
    rt.registerOrchestration('Looper', function* (ctx, round) {
      if (round === 0) {
        // Task 1 of execution 1 is still running when the event arrives and the code continues.
        yield ctx.race(ctx.scheduleActivity('Hang', 'execution 1'), ctx.waitForEvent('next'));
        return yield ctx.continueAsNew(1);
      }
      if (round === 1) return yield ctx.continueAsNew(2);
      const v = yield ctx.scheduleActivity('Slow', 'task 1'); // task 1 again, in execution 3
      return { v, executionId: ctx.executionId };
    });
    rt.registerOrchestration('Parent', function* (ctx) {
      return yield ctx.scheduleSubOrchestration('Looper', 0);
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('can-parent', 'Parent');
    await eventually(() => env.runtime.metricsSnapshot().runningActivities === 1, 10000, 'Hang to run');
    await client.raiseEvent('can-parent:1:1', 'next', null);
    const r = await client.waitForOrchestration('can-parent', 10000);
    assert.equal(r.status, 'Completed', r.error);
    assert.deepEqual(r.output, { v: 'task 1 on execution 3', executionId: 3 });
    assert.deepEqual(aborted, [{ who: 'execution 1', reason: 'the orchestration no longer waits for this activity' }]);
    const info = await client.getInstanceInfo('can-parent:1:1');
    assert.equal(info.parentId, 'can-parent');
    assert.equal(info.executionId, 3);
    assert.deepEqual(await client.listExecutions('can-parent:1:1'), [1, 2, 3]);
    const first = await client.readStoredHistory('can-parent:1:1', 1);
    assert.deepEqual(first.map((e) => e.kind), ['ExecutionStarted', 'ActivityScheduled', 'EventWaitStarted', 'EventRaised', 'TaskCanceled', 'ContinuedAsNew']);
    const parent = await client.readStoredHistory('can-parent');
    assert.deepEqual(parent.map((e) => e.kind), ['ExecutionStarted', 'ChildScheduled', 'ChildCompleted', 'ExecutionCompleted']);
    assert.deepEqual(parent[2].data.output, { v: 'task 1 on execution 3', executionId: 3 });
  } finally {
    await env.drop();
  }
});
