'use strict';
// One stored status (Pending, Running, Completed, Failed, Canceled) read through one table:
// the generator API keeps Running/Completed/Failed, `storedStatus` and the CLI show the rest.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Client } = require('..');
const { startEnv, storeLocation, openStore, dropStore, eventually } = require('./helpers');

test('never claimed is Pending (shown as Running); canceled is Canceled (shown as Failed); filters take what shows as them', async () => {
  const location = storeLocation('stored-status');
  // No runtime yet: the instance stays as stored.
  const provider = await openStore(location);
  const client = new Client(provider);
  try {
    await client.startOrchestration('waiting', 'Waits');
    await client.startOrchestration('stopped', 'Waits');
    let info = await client.getInstanceInfo('waiting');
    assert.equal(info.status, 'Running');
    assert.equal(info.storedStatus, 'Pending');
    assert.equal((await client.getStatus('waiting')).status, 'Running');
    const ids = async (filter) => (await client.listInstances(filter)).instances.map((i) => i.instanceId).sort();
    assert.deepEqual(await ids({ status: 'Running' }), ['stopped', 'waiting']);
    assert.deepEqual(await ids({ storedStatus: 'Pending' }), ['stopped', 'waiting']);
    assert.deepEqual(await ids({ storedStatus: 'Running' }), []);
    assert.equal((await client.getSystemMetrics()).running, 2);

    const env = await startEnv((rt) => {
      rt.registerOrchestration('Waits', function* (ctx) {
        return yield ctx.waitForEvent('go');
      });
    }, {}, location);
    try {
      assert.equal(await client.cancelInstance('stopped', 'not needed'), true);
      const r = await client.waitForOrchestration('stopped', 10000);
      assert.equal(r.status, 'Failed');
      assert.equal(r.error, 'canceled: not needed');
      assert.equal(r.errorCode, 'ERR_CANCELED');
      info = await client.getInstanceInfo('stopped');
      assert.equal(info.status, 'Failed');
      assert.equal(info.storedStatus, 'Canceled');
      assert.deepEqual(await ids({ status: 'Failed' }), ['stopped']);
      assert.deepEqual(await ids({ status: 'Canceled' }), ['stopped']);
      assert.equal((await client.getSystemMetrics()).failed, 1);
      // Claimed once: Running, stored and shown.
      await client.raiseEvent('waiting', 'other', null);
      await eventually(async () => (await client.getInstanceInfo('waiting')).storedStatus === 'Running', 10000, 'the first turn');
      assert.deepEqual(await ids({ storedStatus: 'Running' }), ['waiting']);
      // A canceled instance is finished: deleted by its stored status.
      assert.equal(await client.deleteInstances({ ids: ['stopped'], status: 'Canceled' }), 1);
    } finally {
      await env.stop();
    }
  } finally {
    dropStore(location);
  }
});
