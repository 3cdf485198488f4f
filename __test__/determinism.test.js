'use strict';
// Deterministic values: ctx.utcNow() is the time of the history event that resumed the code,
// ctx.newGuid() a v5 UUID of instance, execution and counter, both the same on every replay.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv, cacheSize } = require('./helpers');

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
    const history = await env.client.readStoredHistory('clock-1');
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
