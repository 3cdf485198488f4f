'use strict';
// duroxide-node's names for things reprise already does: typed registrations, versioned
// sub-orchestration and start forms, resetCustomStatus, and the client's versioned start and
// id listings. Each must behave as its reprise counterpart.
const test = require('node:test');
const assert = require('node:assert/strict');
const { InvalidArgumentError, TaskFailedError, TimeoutError } = require('..');
const { startEnv, eventually } = require('./helpers');

function register(rt) {
  rt.registerActivityTyped('Add', (ctx, { a, b }) => a + b);
  rt.registerOrchestrationVersionedTyped('Child', '1.0.0', function* (ctx, n) {
    return { version: '1.0.0', n };
  });
  rt.registerOrchestrationVersioned('Child', '2.0.0', function* (ctx, n) {
    return { version: '2.0.0', n };
  });
  rt.registerOrchestrationTyped('Parent', function* (ctx) {
    const sum = yield ctx.scheduleActivity('Add', { a: 2, b: 3 });
    const pinned = yield ctx.scheduleSubOrchestrationVersioned('Child', '1.0.0', sum);
    const named = yield ctx.scheduleSubOrchestrationVersionedWithId('Child', '1.0.0', `${ctx.instanceId}-kid`, sum + 1);
    yield ctx.startOrchestrationVersioned('Child', '1.0.0', `${ctx.instanceId}-detached`, sum + 2);
    return { sum, pinned, named };
  });
  rt.registerOrchestration('Fails', function* () {
    const e = new Error('no luck');
    e.code = 'ERR_NO_LUCK';
    throw e;
  });
  rt.registerOrchestration('Status', function* (ctx) {
    ctx.setCustomStatus({ step: 1 });
    yield ctx.scheduleTimer(1);
    ctx.resetCustomStatus();
    yield ctx.waitForEvent('go');
    return ctx.getCustomStatus();
  });
}

test('typed registrations, versioned sub-orchestrations and starts run the pinned version', async () => {
  const env = await startEnv(register);
  try {
    const { client } = env;
    await client.startOrchestration('p', 'Parent');
    const r = await client.waitForOrchestration('p', 10000);
    assert.equal(r.status, 'Completed', r.error);
    assert.deepEqual(r.output, { sum: 5, pinned: { version: '1.0.0', n: 5 }, named: { version: '1.0.0', n: 6 } });
    const detached = await client.waitForOrchestration('p-detached', 10000);
    assert.deepEqual(detached.output, { version: '1.0.0', n: 7 });
    assert.equal((await client.getInstanceInfo('p-kid')).version, '1.0.0');

    // The client's versioned start; without a version the highest one runs.
    assert.equal(await client.startOrchestrationVersioned('v1', 'Child', 1, '1.0.0'), true);
    await client.startOrchestration('latest', 'Child', 2);
    assert.deepEqual((await client.waitForOrchestration('v1', 10000)).output, { version: '1.0.0', n: 1 });
    assert.deepEqual((await client.waitForOrchestration('latest', 10000)).output, { version: '2.0.0', n: 2 });
    await assert.rejects(client.startOrchestrationVersioned('bad', 'Child', 1, 'one'), (e) => e instanceof InvalidArgumentError && e.code === 'ERR_INVALID_ARGUMENT');
    assert.equal(await client.getInstanceInfo('bad'), null, 'nothing stored for a bad version');
  } finally {
    await env.drop();
  }
});

test('resetCustomStatus clears the custom status the client sees', async () => {
  const env = await startEnv(register);
  try {
    const { client } = env;
    await client.startOrchestration('s', 'Status');
    await eventually(async () => (await client.readStoredHistory('s')).some((e) => e.kind === 'EventWaitStarted'), 10000, 'the wait');
    const status = await client.getStatus('s');
    assert.equal(status.customStatus, null);
    assert.ok(status.customStatusVersion >= 2, 'set, then reset');
    await client.raiseEvent('s', 'go');
    assert.equal((await client.waitForOrchestration('s', 10000)).output, null);
  } finally {
    await env.drop();
  }
});

test('listAllInstances and listInstancesByStatus give every matching id, across pages, oldest first', async () => {
  const env = await startEnv(register);
  try {
    const { client } = env;
    const ids = Array.from({ length: 1205 }, (_, i) => `n-${String(i).padStart(4, '0')}`);
    await client.startOrchestrations(ids.map((id) => ({ id, name: 'Nobody' })));
    await client.startOrchestration('done', 'Child', 0);
    await client.waitForOrchestration('done', 10000);
    const all = await client.listAllInstances();
    assert.equal(all.length, 1206);
    assert.deepEqual(new Set(all), new Set([...ids, 'done']));
    assert.deepEqual(await client.listInstancesByStatus('Completed'), ['done']);
    assert.equal((await client.listInstancesByStatus('Pending')).length, 1205);
    await assert.rejects(client.listInstancesByStatus('Sleeping'), (e) => e.code === 'ERR_INVALID_ARGUMENT');
  } finally {
    await env.drop();
  }
});

test('waitForOrchestrationTyped gives the output, rejects with the failure, and times out', async () => {
  const env = await startEnv(register);
  try {
    const { client } = env;
    await client.startOrchestration('ok', 'Child', 4);
    assert.deepEqual(await client.waitForOrchestrationTyped('ok', 10000), { version: '2.0.0', n: 4 });
    await client.startOrchestration('bad', 'Fails');
    await assert.rejects(client.waitForOrchestrationTyped('bad', 10000), (e) => {
      assert.ok(e instanceof TaskFailedError);
      assert.equal(e.code, 'ERR_NO_LUCK');
      assert.match(e.message, /no luck/);
      assert.equal(e.instanceId, 'bad');
      assert.equal(e.status.status, 'Failed');
      return true;
    });
    await client.startOrchestration('waits', 'Status');
    await assert.rejects(client.waitForOrchestrationTyped('waits', 50), TimeoutError);
  } finally {
    await env.drop();
  }
});

test("duroxide-node's limit constants are exported, also to ESM", async () => {
  const cjs = require('..');
  assert.deepEqual(
    [cjs.MAX_WORKER_TAGS, cjs.MAX_TAG_NAME_BYTES, cjs.MAX_KV_KEYS, cjs.MAX_KV_VALUE_BYTES],
    [5, 256, 150, 65536],
  );
  const esm = await import('../index.js');
  assert.equal(esm.MAX_KV_VALUE_BYTES, 65536);
  assert.equal(esm.MAX_WORKER_TAGS, 5);
});
