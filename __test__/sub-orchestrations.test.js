'use strict';
// Sub-orchestrations: fan-out, chains, default and explicit ids, failures, fire-and-forget
// starts, and an id already taken.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv } = require('./helpers');

test('sub-orchestrations: fan-out, chains, explicit ids, failures, and fire-and-forget starts', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Square', async (ctx, n) => n * n);
    rt.registerOrchestration('Leaf', function* (ctx, n) {
      if (n < 0) throw new Error(`negative ${n}`);
      return yield ctx.scheduleActivity('Square', n);
    });
    rt.registerOrchestration('Middle', function* (ctx, n) {
      const leaf = yield ctx.scheduleSubOrchestration('Leaf', n);
      return { leaf, id: ctx.instanceId };
    });
    rt.registerOrchestration('Parent', function* (ctx) {
      const fan = yield ctx.all([1, 2, 3].map((n) => ctx.scheduleSubOrchestration('Leaf', n)));
      const chain = yield ctx.scheduleSubOrchestrationWithId('Middle', 'chain-child', 4);
      let failure = null;
      try {
        yield ctx.scheduleSubOrchestration('Leaf', -1);
      } catch (e) {
        failure = e.message;
      }
      const started = yield ctx.startOrchestration('Leaf', 'detached-leaf', 5);
      return { fan, chain, failure, started };
    });
  });
  try {
    await env.client.startOrchestration('parent-1', 'Parent');
    const r = await env.client.waitForOrchestration('parent-1', 15000);
    assert.equal(r.status, 'Completed', r.error);
    assert.deepEqual(r.output, {
      fan: [{ ok: 1 }, { ok: 4 }, { ok: 9 }],
      chain: { leaf: 16, id: 'chain-child' },
      failure: 'negative -1',
      started: 'detached-leaf',
    });
    // Default child ids are parent:execution:task.
    assert.deepEqual((await env.client.waitForOrchestration('parent-1:1:1', 5000)).output, 1);
    assert.equal((await env.client.getStatus('chain-child:1:1')).status, 'Completed');
    assert.deepEqual((await env.client.waitForOrchestration('detached-leaf', 5000)).output, 25);
  } finally {
    await env.drop();
  }
});

test('a sub-orchestration id that is already taken fails at the parent yield instead of hanging', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Taken', function* () {
      return 'first';
    });
    rt.registerOrchestration('Claims', function* (ctx) {
      try {
        yield ctx.scheduleSubOrchestrationWithId('Taken', 'taken-id', null);
        return 'no error';
      } catch (e) {
        return `${e.code}: ${e.message}`;
      }
    });
  });
  try {
    await env.client.startOrchestration('taken-id', 'Taken');
    await env.client.waitForOrchestration('taken-id', 10000);
    await env.client.startOrchestration('claims-1', 'Claims');
    assert.equal((await env.client.waitForOrchestration('claims-1', 10000)).output, "ERR_ALREADY_EXISTS: an instance with id 'taken-id' already exists");
  } finally {
    await env.drop();
  }
});
