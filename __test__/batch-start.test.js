'use strict';
// client.startOrchestrations: many starts in one store transaction; existing ids (and ids
// repeated in the batch) left alone; nothing stored when any entry is invalid.
const test = require('node:test');
const assert = require('node:assert/strict');
const { InvalidArgumentError } = require('..');
const { startEnv } = require('./helpers');

function setup(rt) {
  rt.registerOrchestration('Double', function* (ctx, n) {
    return n * 2;
  });
  rt.registerOrchestration('Waits', function* (ctx) {
    return yield ctx.waitForEvent('go');
  });
}

test('startOrchestrations stores a batch that the runtime runs, and says which ids it created', async () => {
  const env = await startEnv(setup);
  try {
    const starts = Array.from({ length: 500 }, (_, i) => ({ id: `b-${i}`, name: 'Double', input: i }));
    const result = await env.client.startOrchestrations(starts);
    assert.deepEqual(result, { created: starts.map((s) => s.id), existing: [] });
    const outputs = await Promise.all(starts.map((s) => env.client.waitForOrchestration(s.id, 30000)));
    assert.deepEqual(outputs.map((r) => r.output), starts.map((s) => s.input * 2));
    assert.deepEqual(await env.client.startOrchestrations([]), { created: [], existing: [] });
  } finally {
    await env.drop();
  }
});

test('existing ids and ids repeated in the batch are left alone; versions and early events apply', async () => {
  const env = await startEnv((rt) => {
    setup(rt);
    rt.registerOrchestrationVersioned('Double', '2.0.0', function* (ctx, n) {
      return n * 20;
    });
  });
  try {
    await env.client.startOrchestration('old', 'Double', 1);
    await env.client.waitForOrchestration('old', 10000);
    await env.client.raiseEvent('waiter', 'go', 'early');
    const result = await env.client.startOrchestrations([
      { id: 'old', name: 'Double', input: 100 },
      { id: 'twice', name: 'Double', input: 2 },
      { id: 'twice', name: 'Double', input: 3 },
      { id: 'pinned', name: 'Double', input: 4, version: '1.0.0' },
      { id: 'latest', name: 'Double', input: 5 },
      { id: 'waiter', name: 'Waits' },
    ]);
    assert.deepEqual(result, { created: ['twice', 'pinned', 'latest', 'waiter'], existing: ['old', 'twice'] });
    assert.equal((await env.client.waitForOrchestration('old', 10000)).output, 20, 'the existing instance is untouched');
    assert.equal((await env.client.waitForOrchestration('twice', 10000)).output, 40, 'the first start of an id wins');
    assert.equal((await env.client.waitForOrchestration('pinned', 10000)).output, 8);
    assert.equal((await env.client.waitForOrchestration('latest', 10000)).output, 100);
    assert.equal((await env.client.waitForOrchestration('waiter', 10000)).output, 'early');
  } finally {
    await env.drop();
  }
});

test('an invalid entry stores nothing and names the entry and the field', async () => {
  const env = await startEnv(setup);
  try {
    const good = { id: 'fine', name: 'Double', input: 1 };
    const refused = async (starts, pattern) => {
      await assert.rejects(env.client.startOrchestrations(starts), (e) => e instanceof InvalidArgumentError && e.code === 'ERR_INVALID_ARGUMENT' && pattern.test(e.message));
    };
    await refused('nope', /starts must be an array/);
    await refused([good, null], /starts\[1\] must be an object/);
    await refused([good, { id: '', name: 'Double' }], /starts\[1\]\.id must be a non-empty string/);
    await refused([good, { id: 'x', name: 'Double', inptu: 1 }], /starts\[1\]\.inptu is not a startOrchestrations option \(known: id, name, input, version\)/);
    await refused([good, { id: 'x', name: 'Double', version: 'two' }], /starts\[1\]\.version/);
    await refused([good, { id: 'x', name: 'Double', input: 10n }], /starts\[1\]\.input/);
    await refused([good, { id: 'x', name: 'Double', input: Promise.resolve(1) }], /starts\[1\]\.input is a Promise/);
    assert.equal((await env.client.getStatus('fine')).status, 'NotFound', 'nothing was stored');
  } finally {
    await env.drop();
  }
});
