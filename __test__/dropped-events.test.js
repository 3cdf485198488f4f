'use strict';
// An event nobody can receive changes nothing: raised on a finished instance it leaves the
// instance's row as it was (so retention by age still finds it); raised for an instance
// that does not exist yet it waits for it, uncounted in queue depths, until
// `unknownEventTtlMs` has passed.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Client, SqliteProvider, PostgresProvider } = require('..');
const { startEnv, storeLocation, openStore, dropStore, eventually, sleep } = require('./helpers');

const databaseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

/** Opens `location` with store options (the helpers' openStore takes none). */
function openWith(location, options) {
  if (location.startsWith('pg:')) return PostgresProvider.connectWithSchema(databaseUrl, location.slice(3), { poolSize: 4, ...options });
  return SqliteProvider.open(location, options);
}

function setup(rt) {
  rt.registerOrchestration('Done', function* () {
    return 'done';
  });
  rt.registerOrchestration('Waits', function* (ctx) {
    const winner = yield ctx.race(ctx.waitForEvent('go'), ctx.scheduleTimer(1500));
    return winner.index === 0 ? { event: winner.value } : 'timed out';
  });
}

test('an event raised on a finished instance changes nothing: updatedAt stays, retention by age still finds it', async () => {
  const env = await startEnv(setup, { pollIntervalMs: 20 });
  try {
    await env.client.startOrchestration('finished', 'Done');
    await env.client.waitForOrchestration('finished', 10000);
    const before = await env.client.getInstanceInfo('finished');
    await sleep(30);
    const cutoff = Date.now();
    await sleep(30);
    await env.client.raiseEvent('finished', 'late', { n: 1 });
    // Wait until the runtime has taken the event (and dropped it).
    await eventually(async () => (await env.client.getQueueDepths()).orchestrator.visible === 0, 10000, 'the event to be consumed');
    await sleep(100);
    const after = await env.client.getInstanceInfo('finished');
    assert.deepEqual(after, before);
    assert.equal(await env.client.deleteInstances({ completedBefore: cutoff }), 1);
    assert.equal((await env.client.getStatus('finished')).status, 'NotFound');
  } finally {
    await env.drop();
  }
});

test('events for an instance that does not exist yet are kept for it, and not counted in queue depths', async () => {
  const location = storeLocation('early-events');
  const env = await startEnv(setup, { pollIntervalMs: 20 }, location);
  try {
    await env.client.raiseEvent('later', 'go', 'early bird');
    await sleep(100);
    const depths = await env.client.getQueueDepths();
    assert.deepEqual(depths.orchestrator, { visible: 0, delayed: 0 });
    await env.client.startOrchestration('later', 'Waits');
    assert.deepEqual((await env.client.waitForOrchestration('later', 10000)).output, { event: 'early bird' });
  } finally {
    await env.drop();
  }
});

test('events for an instance that does not exist expire after unknownEventTtlMs: an instance started later does not get them', async () => {
  const location = storeLocation('expired-events');
  const provider = await openWith(location, { unknownEventTtlMs: 200 });
  const client = new Client(provider);
  const env = await startEnv(setup, { pollIntervalMs: 20 }, location);
  try {
    await client.raiseEvent('late-start', 'go', 'too old');
    await sleep(400);
    await client.startOrchestration('late-start', 'Waits');
    assert.equal((await client.waitForOrchestration('late-start', 10000)).output, 'timed out');
    // A young event is still delivered under the same store option.
    await client.raiseEvent('young', 'go', 'fresh');
    await client.startOrchestration('young', 'Waits');
    assert.deepEqual((await client.waitForOrchestration('young', 10000)).output, { event: 'fresh' });
  } finally {
    await env.drop();
  }
});

test('unknownEventTtlMs is checked: a bad value names the option', async () => {
  const location = storeLocation('ttl-option');
  try {
    for (const bad of [-1, 1.5, '10', Number.MAX_SAFE_INTEGER + 2]) {
      await assert.rejects(openWith(location, { unknownEventTtlMs: bad }), (e) => e.code === 'ERR_INVALID_ARGUMENT' && /unknownEventTtlMs/.test(e.message));
    }
    await openStore(location);
  } finally {
    dropStore(location);
  }
});
