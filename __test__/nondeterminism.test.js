'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { SqliteProvider, Client, Runtime } = require('..');
const { dbPath, runtimeOptions, eventually } = require('./helpers');

async function waiting(client, id) {
  await eventually(async () => (await client.readStoredHistory(id)).some((e) => e.kind === 'EventWaitStarted'), 10000, 'the wait');
}

test('changed code under the same name fails the instance with ERR_NONDETERMINISM after a restart', async () => {
  const file = dbPath('nd');
  {
    const provider = await SqliteProvider.open(file);
    const runtime = new Runtime(provider, runtimeOptions());
    runtime.registerActivity('Reserve', async () => 'reserved');
    runtime.registerActivity('Charge', async () => 'charged');
    runtime.registerOrchestration('Order', function* (ctx) {
      yield ctx.scheduleActivity('Reserve');
      yield ctx.waitForEvent('pay');
      return yield ctx.scheduleActivity('Charge');
    });
    await runtime.start();
    const client = new Client(provider);
    await client.startOrchestration('order-1', 'Order');
    await waiting(client, 'order-1');
    await runtime.shutdown(2000);
  }
  const provider = await SqliteProvider.open(file);
  const runtime = new Runtime(provider, runtimeOptions());
  runtime.registerActivity('Refund', async () => 'refunded');
  runtime.registerActivity('Charge', async () => 'charged');
  runtime.registerOrchestration('Order', function* (ctx) {
    yield ctx.scheduleActivity('Refund'); // was 'Reserve'
    yield ctx.waitForEvent('pay');
    return yield ctx.scheduleActivity('Charge');
  });
  await runtime.start();
  try {
    const client = new Client(provider);
    await client.raiseEvent('order-1', 'pay', 1);
    const r = await client.waitForOrchestration('order-1', 10000);
    assert.equal(r.status, 'Failed');
    assert.equal(r.errorCode, 'ERR_NONDETERMINISM');
    assert.equal(r.error, "nondeterminism: history has activity 'Reserve' (task 1) as step 1 but the code scheduled activity 'Refund' (task 1)");
    assert.equal(runtime.metricsSnapshot().nondeterminismErrors, 1);
  } finally {
    await runtime.shutdown(2000);
  }
});

test('a change seen only after a cache eviction is caught the same way', async () => {
  let variant = 'Reserve';
  const provider = await SqliteProvider.open(dbPath('nd-evict'));
  const runtime = new Runtime(provider, runtimeOptions({ generatorCacheSize: 1 }));
  runtime.registerActivity('Reserve', async () => 'reserved');
  runtime.registerActivity('Hold', async () => 'held');
  runtime.registerOrchestration('Order', function* (ctx) {
    yield ctx.scheduleActivity(variant);
    yield ctx.waitForEvent('pay');
    return 'paid';
  });
  await runtime.start();
  try {
    const client = new Client(provider);
    await client.startOrchestration('a', 'Order');
    await waiting(client, 'a');
    // Another instance takes the only cache slot, so 'a' replays from history next time.
    variant = 'Hold';
    await client.startOrchestration('b', 'Order');
    await waiting(client, 'b');
    await client.raiseEvent('a', 'pay', 1);
    const r = await client.waitForOrchestration('a', 10000);
    assert.equal(r.status, 'Failed');
    assert.equal(r.errorCode, 'ERR_NONDETERMINISM');
    assert.equal(r.error, "nondeterminism: history has activity 'Reserve' (task 1) as step 1 but the code scheduled activity 'Hold' (task 1)");
    // 'b' was started with the new code and is consistent with it.
    await client.raiseEvent('b', 'pay', 1);
    assert.equal((await client.waitForOrchestration('b', 10000)).output, 'paid');
  } finally {
    await runtime.shutdown(2000);
  }
});
