'use strict';
// Worker tags (duroxide-node's routing): a runtime claims only the activities its
// workerTagFilter accepts; a tagged activity nobody accepts waits (and can be raced); an
// activity-only worker for a tag cooperates with an orchestrator on one PostgreSQL store.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Runtime } = require('..');
const { startEnv, uniqueSchema, eventually } = require('./helpers');

function register(rt) {
  rt.registerActivity('Where', (ctx) => ({ tag: ctx.tag(), by: ctx.workerId }));
  rt.registerOrchestration('Raced', function* (ctx, tag) {
    const task = ctx.scheduleActivity('Where');
    if (tag) task.withTag(tag);
    const r = yield ctx.race(task, ctx.scheduleTimer(300));
    return r.index === 0 ? { ran: r.value.tag } : 'timer';
  });
}

const cases = [
  // [filter, tag of the activity, expected]
  ['defaultOnly', null, { ran: null }],
  ['defaultOnly', 'gpu', 'timer'],
  ['any', 'gpu', { ran: 'gpu' }],
  ['any', null, { ran: null }],
  ['none', null, 'timer'],
  [{ tags: ['gpu', 'big'] }, 'big', { ran: 'big' }],
  [{ tags: ['gpu'] }, null, 'timer'],
  [{ tags: ['gpu'] }, 'cpu', 'timer'],
  [{ defaultAnd: ['gpu'] }, 'gpu', { ran: 'gpu' }],
  [{ defaultAnd: ['gpu'] }, null, { ran: null }],
  [{ defaultAnd: ['gpu'] }, 'cpu', 'timer'],
];

test('a runtime runs exactly the activities its workerTagFilter accepts; the others wait, and a race against a timer works', async () => {
  for (const [filter, tag, expected] of cases) {
    const env = await startEnv(register, { workerTagFilter: filter });
    try {
      await env.client.startOrchestration('raced', 'Raced', tag);
      const s = await env.client.waitForOrchestration('raced', 10000);
      assert.deepEqual(s.output, expected, `${JSON.stringify(filter)} with tag ${tag}`);
      if (expected === 'timer') {
        const q = await env.client.getQueueDepths();
        assert.equal(q.worker.visible + q.worker.delayed, 0, 'the race loser is withdrawn');
      }
    } finally {
      await env.drop();
    }
  }
});

// Two runtimes share a store on PostgreSQL (SQLite allows one runtime per file).
test('an orchestrator and an activity-only gpu worker share a store: each activity runs where its tag is accepted; gpu work waits until the worker starts', async () => {
  const location = `pg:${uniqueSchema('tags')}`;
  const orchestrator = await startEnv((rt) => {
    rt.registerActivity('Where', (ctx) => ({ tag: ctx.tag(), by: ctx.workerId }));
    rt.registerOrchestration('Mixed', function* (ctx) {
      return yield ctx.all([
        ctx.scheduleActivity('Where'),
        ctx.scheduleActivity('Where').withTag('gpu'),
        ctx.scheduleActivity('Where'),
        ctx.scheduleActivity('Where').withTag('gpu'),
      ]);
    });
  }, {}, location);
  let gpu;
  try {
    await orchestrator.client.startOrchestration('mixed-1', 'Mixed');
    await eventually(async () => {
      const q = await orchestrator.client.getQueueDepths();
      return q.worker.visible === 2 && q.worker.running === 0;
    }, 10000, 'the two gpu activities waiting');
    assert.equal((await orchestrator.client.getStatus('mixed-1')).status, 'Running', 'nobody accepts gpu yet');

    gpu = new Runtime(orchestrator.provider, { orchestrationConcurrency: 0, workerTagFilter: { tags: ['gpu'] }, pollIntervalMs: 20 });
    gpu.registerActivity('Where', (ctx) => ({ tag: ctx.tag(), by: ctx.workerId }));
    await gpu.start();
    const s = await orchestrator.client.waitForOrchestration('mixed-1', 10000);
    const runtimes = await orchestrator.client.listRuntimes();
    const gpuId = runtimes.find((r) => JSON.stringify(r.workerTagFilter) === '{"tags":["gpu"]}').runtimeId;
    const mainId = runtimes.find((r) => r.workerTagFilter === 'defaultOnly').runtimeId;
    assert.deepEqual(s.output, [
      { ok: { tag: null, by: mainId } },
      { ok: { tag: 'gpu', by: gpuId } },
      { ok: { tag: null, by: mainId } },
      { ok: { tag: 'gpu', by: gpuId } },
    ]);
    assert.equal(gpu.metricsSnapshot().turnsCommitted, 0, 'the worker runs no orchestration');
  } finally {
    if (gpu) await gpu.shutdown(5000);
    await orchestrator.drop();
  }
});
