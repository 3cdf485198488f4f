'use strict';
// duroxide-node's per-instance key-value store, event queues, ActivityContext fields and
// typed variants, through index.js. Provider-independent: also run on PostgreSQL.
const test = require('node:test');
const assert = require('node:assert/strict');
const { MAX_KV_KEYS, MAX_KV_VALUE_BYTES, TimeoutError } = require('..');
const { startEnv, eventually } = require('./helpers');

function register(rt) {
  rt.registerOrchestration('Counter', function* (ctx, { rounds }) {
    const seen = Number(ctx.getValue('count') ?? '0');
    ctx.setValue('count', seen + 1);
    ctx.setValue('last', `exec-${ctx.executionId}`);
    ctx.setValue('scratch', 'gone soon');
    ctx.clearValue('scratch');
    yield ctx.scheduleTimer(1);
    if (seen + 1 < rounds) return yield ctx.continueAsNew({ rounds });
    yield ctx.waitForEvent('finish');
    return { all: ctx.getKvAllValues(), keys: ctx.getKvAllKeys().sort(), length: ctx.getKvLength() };
  });
  rt.registerOrchestration('Reader', function* (ctx, other) {
    const value = yield ctx.getValueFromInstance(other, 'count');
    const missing = yield ctx.getValueFromInstance(other, 'nope');
    return { value, missing };
  });
  rt.registerOrchestration('Limits', function* (ctx) {
    const errors = {};
    try {
      ctx.setValue('big', 'x'.repeat(MAX_KV_VALUE_BYTES + 1));
    } catch (e) {
      errors.big = [e.code, e.message];
    }
    for (let i = 0; i < MAX_KV_KEYS; i++) ctx.setValue(`k${i}`, i);
    try {
      ctx.setValue('one-more', 1);
    } catch (e) {
      errors.keys = [e.code, e.message];
    }
    ctx.setValue('k0', 'overwrite is fine');
    yield ctx.scheduleTimer(1);
    const stamp = yield ctx.utcNow();
    const pruned = ctx.pruneKvValuesUpdatedBefore(stamp);
    ctx.setValue('fresh', 'new');
    return { errors, pruned, length: ctx.getKvLength(), k0: ctx.getValue('k0') };
  });
  rt.registerOrchestration('Wipe', function* (ctx) {
    ctx.setValue('a', '1');
    yield ctx.scheduleTimer(1);
    ctx.clearAllValues();
    ctx.setValue('b', '2');
    return ctx.getKvAllValues();
  });
  rt.registerOrchestration('Queue', function* (ctx, { take, loops }) {
    const got = [];
    for (let i = 0; i < take; i++) got.push(yield ctx.dequeueEvent('jobs'));
    if (loops > 0) return yield ctx.continueAsNew({ take, loops: loops - 1 });
    // A queue wait that loses a race consumes nothing: the message stays for the next dequeue.
    const raced = yield ctx.race(ctx.dequeueEvent('jobs'), ctx.scheduleTimer(20));
    yield ctx.waitForEvent('go');
    const after = yield ctx.dequeueEvent('jobs');
    return { got, raced: raced.index, after };
  });
  rt.registerActivity('Who', (ctx) => ({
    instanceId: ctx.instanceId,
    orchestrationName: ctx.orchestrationName,
    orchestrationVersion: ctx.orchestrationVersion,
    activityName: ctx.activityName,
    workerId: ctx.workerId,
    sessionId: ctx.sessionId,
    tag: ctx.tag(),
    cancelled: ctx.isCancelled(),
  }));
  rt.registerActivity('UseClient', async (ctx, id) => {
    const client = ctx.getClient();
    await client.startOrchestration(id, 'Wipe');
    return (await client.waitForOrchestration(id, 10000)).output;
  });
  rt.registerActivity('Echo', (ctx, v) => v);
  rt.registerOrchestrationVersioned('Acts', '1.2.0', function* (ctx) {
    const plain = yield ctx.scheduleActivity('Who');
    const session = yield ctx.scheduleActivityOnSession('Who', null, 'sess-1');
    const withOptions = yield ctx.scheduleActivity('Who', null, { sessionId: 'sess-2' });
    const tagged = yield ctx.scheduleActivity('Who').withTag('gpu');
    const viaClient = yield ctx.scheduleActivity('UseClient', `${ctx.instanceId}-wipe`);
    const typed = yield ctx.scheduleActivityTyped('Echo', JSON.stringify({ a: 1 }));
    const untyped = yield ctx.scheduleActivity('Echo', JSON.stringify({ a: 1 }));
    const all = yield ctx.allTyped([ctx.scheduleActivity('Echo', '[1,2]'), ctx.scheduleActivity('Echo', 'plain text')]);
    const event = yield ctx.waitForEventTyped('typed');
    return { plain, session, withOptions, tagged, viaClient, typed, untyped, all, event };
  });
}

test('the key-value store: written with the turn, read by clients, carried across continue-as-new', async () => {
  const env = await startEnv(register);
  try {
    await env.client.startOrchestration('kv-1', 'Counter', { rounds: 3 });
    assert.equal(await env.client.waitForValue('kv-1', 'count', 10000), '1', 'woken by the first commit');
    await eventually(async () => (await env.client.getValue('kv-1', 'count')) === '3', 10000, 'three executions');
    assert.deepEqual(await env.client.getKvAllValues('kv-1'), { count: '3', last: 'exec-3' });
    assert.equal(await env.client.getValue('kv-1', 'scratch'), null);
    await env.client.raiseEvent('kv-1', 'finish', null);
    const done = await env.client.waitForOrchestration('kv-1', 10000);
    assert.deepEqual(done.output, { all: { count: '3', last: 'exec-3' }, keys: ['count', 'last'], length: 2 });

    const stats = await env.client.getOrchestrationStats('kv-1');
    assert.equal(stats.kvUserKeyCount, 2);
    assert.equal(stats.kvTotalValueBytes, '3'.length + 'exec-3'.length);
    assert.ok(stats.historyEventCount > 0 && stats.historySizeBytes > 0);
    assert.equal(await env.client.getOrchestrationStats('nobody'), null);

    await env.client.startOrchestration('kv-reader', 'Reader', 'kv-1');
    assert.deepEqual((await env.client.waitForOrchestration('kv-reader', 10000)).output, { value: '3', missing: null });
    const kinds = (await env.client.readExecutionHistory('kv-reader')).map((e) => e.kind);
    assert.ok(kinds.includes('ActivityCompleted'), 'the read is recorded in history');

    const removed = await env.client.deleteInstance('kv-1', false);
    assert.equal(removed.instancesDeleted, 1);
    assert.equal(removed.executionsDeleted, 3);
    assert.ok(removed.eventsDeleted > 0);
    assert.deepEqual(await env.client.getKvAllValues('kv-1'), {}, 'removed with the instance');
    await assert.rejects(env.client.waitForValue('kv-1', 'count', 50), TimeoutError);
  } finally {
    await env.drop();
  }
});

test('key-value limits give clear errors; pruning and clear-all are recorded like every write', async () => {
  const env = await startEnv(register);
  try {
    await env.client.startOrchestration('kv-limits', 'Limits');
    const out = (await env.client.waitForOrchestration('kv-limits', 10000)).output;
    assert.equal(out.errors.big[0], 'ERR_INVALID_ARGUMENT');
    assert.match(out.errors.big[1], /MAX_KV_VALUE_BYTES \(65536\)/);
    assert.equal(out.errors.keys[0], 'ERR_INVALID_ARGUMENT');
    assert.match(out.errors.keys[1], /MAX_KV_KEYS \(150\)/);
    assert.deepEqual(out, { ...out, pruned: MAX_KV_KEYS, length: 1, k0: null });
    assert.deepEqual(await env.client.getKvAllValues('kv-limits'), { fresh: 'new' });

    await env.client.startOrchestration('kv-wipe', 'Wipe');
    assert.deepEqual((await env.client.waitForOrchestration('kv-wipe', 10000)).output, { b: '2' });
    assert.deepEqual(await env.client.getKvAllValues('kv-wipe'), { b: '2' });
    const kinds = (await env.client.readExecutionHistory('kv-wipe')).map((e) => e.kind);
    assert.deepEqual(kinds.filter((k) => k.startsWith('KeyValue')), ['KeyValueSet', 'KeyValuesCleared', 'KeyValueSet']);
  } finally {
    await env.drop();
  }
});

test('event queues: kept before the instance exists, FIFO, one dequeue each, kept across continue-as-new', async () => {
  const env = await startEnv(register);
  try {
    for (const n of [1, 2, 3, 4, 5]) await env.client.enqueueEvent('q-1', 'jobs', { n });
    await env.client.raiseEvent('q-1', 'jobs', 'an event of the same name is not a queue message');
    await env.client.startOrchestration('q-1', 'Queue', { take: 2, loops: 1 });
    // Two per execution, two executions: 1..4; the race's dequeue wins message 5.
    await eventually(async () => (await env.client.readExecutionHistory('q-1')).some((e) => e.kind === 'ExternalSubscribed'), 10000, 'the wait for go');
    await env.client.enqueueEventTyped('q-1', 'jobs', { n: 6 });
    await env.client.raiseEvent('q-1', 'go', null);
    const out = (await env.client.waitForOrchestration('q-1', 10000)).output;
    assert.deepEqual(out, { got: [{ n: 3 }, { n: 4 }], raced: 0, after: { n: 6 } });
    const first = await env.client.readExecutionHistory('q-1', 1);
    assert.deepEqual(first.filter((e) => e.kind === 'QueueEventDelivered').map((e) => e.data), [
      { name: 'jobs', data: { n: 1 } },
      { name: 'jobs', data: { n: 2 } },
      { name: 'jobs', data: { n: 3 } },
      { name: 'jobs', data: { n: 4 } },
      { name: 'jobs', data: { n: 5 } },
    ]);

    // A race lost by the dequeue consumes nothing.
    await env.client.startOrchestration('q-2', 'Queue', { take: 0, loops: 0 });
    await eventually(async () => (await env.client.readExecutionHistory('q-2')).some((e) => e.kind === 'ExternalSubscribed'), 10000, 'the wait for go');
    await env.client.enqueueEvent('q-2', 'jobs', 'late');
    await env.client.raiseEvent('q-2', 'go', null);
    assert.deepEqual((await env.client.waitForOrchestration('q-2', 10000)).output, { got: [], raced: 1, after: 'late' });
  } finally {
    await env.drop();
  }
});

test('ActivityContext fields, getClient, sessions and tags accepted, typed variants parse once more', async () => {
  const env = await startEnv(register, { workerTagFilter: { defaultAnd: ['gpu'] } });
  try {
    await env.client.startOrchestration('acts', 'Acts');
    await eventually(async () => (await env.client.readExecutionHistory('acts')).some((e) => e.kind === 'ExternalSubscribed'), 10000, 'the wait');
    await env.client.raiseEventTyped('acts', 'typed', JSON.stringify({ b: 2 }));
    const out = (await env.client.waitForOrchestration('acts', 10000)).output;
    const workerId = out.plain.workerId;
    assert.equal(typeof workerId, 'string');
    assert.ok((await env.client.listRuntimes()).some((r) => r.runtimeId === workerId), 'workerId is the runtime id');
    assert.deepEqual(out.plain, {
      instanceId: 'acts',
      orchestrationName: 'Acts',
      orchestrationVersion: '1.2.0',
      activityName: 'Who',
      workerId,
      sessionId: null,
      tag: null,
      cancelled: false,
    });
    assert.equal(out.session.sessionId, 'sess-1');
    assert.equal(out.withOptions.sessionId, 'sess-2');
    assert.equal(out.tagged.tag, 'gpu');
    assert.deepEqual(out.viaClient, { b: '2' }, 'the Wipe instance the activity started and waited for');
    assert.deepEqual(out.typed, { a: 1 });
    assert.equal(out.untyped, JSON.stringify({ a: 1 }));
    assert.deepEqual(out.all, [{ ok: [1, 2] }, { ok: 'plain text' }]);
    assert.deepEqual(out.event, { b: 2 });
    const scheduled = (await env.client.readExecutionHistory('acts')).filter((e) => e.kind === 'ActivityScheduled');
    assert.equal(scheduled[1].data.sessionId, 'sess-1');
    assert.equal(scheduled[3].data.tag, 'gpu');
  } finally {
    await env.drop();
  }
});

test('bad session ids, tags and keys are refused with the field named', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Bad', function* (ctx, which) {
      if (which === 'session') ctx.scheduleActivityOnSession('A', null, '');
      if (which === 'tag') ctx.scheduleActivity('A').withTag('x'.repeat(257));
      if (which === 'key') ctx.setValue('', 'v');
      if (which === 'timer-tag') ctx.scheduleTimer(1).withTag('gpu');
      return 'unreachable';
    });
  });
  try {
    const cases = { session: /sessionId/, tag: /MAX_TAG_NAME_BYTES \(256\)/, key: /key-value key/, 'timer-tag': /withTag\(\) applies to activities/ };
    for (const [which, message] of Object.entries(cases)) {
      await env.client.startOrchestration(`bad-${which}`, 'Bad', which);
      const s = await env.client.waitForOrchestration(`bad-${which}`, 10000);
      assert.equal(s.status, 'Failed', which);
      assert.equal(s.errorCode, 'ERR_INVALID_ARGUMENT', which);
      assert.match(s.error, message, which);
    }
  } finally {
    await env.drop();
  }
});

test('retryInstance sets the key-value store back with the history it rewinds', async () => {
  let failures = 1;
  const env = await startEnv((rt) => {
    rt.registerActivity('FailsOnce', () => {
      if (failures-- > 0) throw new Error('not yet');
      return 'ok';
    });
    rt.registerOrchestration('Rewound', function* (ctx) {
      ctx.setValue('phase', 'started');
      yield ctx.scheduleTimer(1);
      try {
        yield ctx.scheduleActivity('FailsOnce');
      } catch (e) {
        ctx.setValue('failedOnce', 'yes');
        ctx.clearValue('phase');
        throw e;
      }
      ctx.setValue('after', 'done');
      return ctx.getKvAllValues();
    });
  });
  try {
    await env.client.startOrchestration('kv-rewind', 'Rewound');
    assert.equal((await env.client.waitForOrchestration('kv-rewind', 10000)).status, 'Failed');
    assert.deepEqual(await env.client.getKvAllValues('kv-rewind'), { failedOnce: 'yes' });
    await env.client.retryInstance('kv-rewind');
    const done = await env.client.waitForOrchestration('kv-rewind', 10000);
    assert.deepEqual(done.output, { phase: 'started', after: 'done' });
    assert.deepEqual(await env.client.getKvAllValues('kv-rewind'), { phase: 'started', after: 'done' }, 'the failed path left nothing');
  } finally {
    await env.drop();
  }
});
