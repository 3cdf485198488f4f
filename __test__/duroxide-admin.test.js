'use strict';
// duroxide-node's management surface and names, through index.js: history in its kinds,
// deletion counts and bulk forms, execution info, stats, the 4-argument waitForStatusChange,
// the tree summary, its metric names, and an activity-only runtime beside an orchestrator.
// Provider-independent: also run on PostgreSQL.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Runtime, TimeoutError } = require('..');
const { startEnv, eventually, uniqueSchema } = require('./helpers');

function register(rt) {
  rt.registerActivity('Double', (ctx, n) => n * 2);
  rt.registerActivity('Boom', () => {
    throw new Error('boom');
  });
  rt.registerOrchestration('Child', function* (ctx, n) {
    return n + 1;
  });
  rt.registerOrchestration('Everything', function* (ctx) {
    ctx.setCustomStatus('started');
    const doubled = yield ctx.scheduleActivity('Double', 2);
    yield ctx.scheduleTimer(1);
    const data = yield ctx.waitForEvent('go');
    const child = yield ctx.scheduleSubOrchestration('Child', doubled);
    yield ctx.startOrchestration('Child', `${ctx.instanceId}-chained`, 0);
    ctx.setValue('k', 'v');
    const raced = yield ctx.race(ctx.waitForEvent('never'), ctx.scheduleTimer(1));
    try {
      yield ctx.scheduleActivity('Boom');
    } catch {
      // recorded as ActivityFailed
    }
    return { doubled, data, child, raced: raced.index };
  });
  rt.registerOrchestration('Loop', function* (ctx, n) {
    if (n < 2) return yield ctx.continueAsNew(n + 1);
    return n;
  });
  rt.registerOrchestration('Progress', function* (ctx) {
    yield ctx.waitForEvent('step');
    ctx.setCustomStatus({ step: 1 });
    yield ctx.waitForEvent('end');
    return 'done';
  });
}

test("readExecutionHistory speaks duroxide's kinds, with sourceEventId; readStoredHistory keeps reprise's", async () => {
  const env = await startEnv(register);
  try {
    await env.client.startOrchestration('all-kinds', 'Everything');
    await eventually(async () => (await env.client.readExecutionHistory('all-kinds')).some((e) => e.kind === 'ExternalSubscribed'), 10000, 'the wait');
    await env.client.raiseEvent('all-kinds', 'go', { x: 1 });
    const done = await env.client.waitForOrchestration('all-kinds', 10000);
    assert.deepEqual(done.output, { doubled: 4, data: { x: 1 }, child: 5, raced: 1 });
    const history = await env.client.readExecutionHistory('all-kinds');
    const kinds = new Set(history.map((e) => e.kind));
    for (const kind of [
      'OrchestrationStarted', 'CustomStatusUpdated', 'ActivityScheduled', 'ActivityCompleted', 'TimerCreated', 'TimerFired',
      'ExternalSubscribed', 'ExternalEvent', 'SubOrchestrationScheduled', 'SubOrchestrationCompleted', 'OrchestrationChained',
      'KeyValueSet', 'TaskCanceled', 'ActivityFailed', 'OrchestrationCompleted',
    ]) assert.ok(kinds.has(kind), `${kind} in ${[...kinds]}`);
    const byKind = (k) => history.find((e) => e.kind === k);
    assert.deepEqual(byKind('OrchestrationStarted').data, { name: 'Everything', version: '1.0.0', input: null });
    assert.deepEqual(byKind('ActivityScheduled').data, { name: 'Double', input: 2 });
    assert.deepEqual(byKind('ActivityCompleted').data, { result: 4 });
    assert.equal(byKind('ActivityCompleted').sourceEventId, byKind('ActivityScheduled').eventId);
    assert.equal(byKind('TimerFired').data.fireAtMs, byKind('TimerCreated').data.fireAtMs);
    assert.equal(typeof byKind('TimerCreated').data.fireAtMs, 'number');
    assert.deepEqual(byKind('ExternalEvent').data, { name: 'go', data: { x: 1 } });
    assert.deepEqual(byKind('SubOrchestrationScheduled').data, { name: 'Child', instance: 'all-kinds:1:4', input: 4, version: null });
    assert.deepEqual(byKind('SubOrchestrationCompleted').data, { result: 5 });
    assert.deepEqual(byKind('KeyValueSet').data, { key: 'k', value: 'v' });
    assert.equal(byKind('ActivityFailed').data.error.message, 'boom');
    assert.deepEqual(byKind('OrchestrationCompleted').data, { output: done.output });
    for (const e of history) {
      assert.equal(typeof e.timestampMs, 'number');
      assert.equal(e.timestampMs, e.timestamp);
    }
    const stored = await env.client.readStoredHistory('all-kinds');
    assert.deepEqual(stored.map((e) => e.kind), history.map((e) => e.storedKind));
    assert.equal(stored[0].kind, 'ExecutionStarted');
  } finally {
    await env.drop();
  }
});

test('execution info, listExecutions ids, stats, deletion counts and the bulk forms', async () => {
  const env = await startEnv(register);
  try {
    await env.client.startOrchestration('loop', 'Loop', 0);
    assert.equal((await env.client.waitForOrchestration('loop', 10000)).output, 2);
    assert.deepEqual(await env.client.listExecutions('loop'), [1, 2, 3]);
    const first = await env.client.getExecutionInfo('loop', 1);
    assert.equal(first.status, 'ContinuedAsNew');
    assert.equal(first.output, null);
    assert.equal(first.eventCount, 2);
    assert.ok(first.startedAt <= first.completedAt);
    const last = await env.client.getExecutionInfo('loop', 3);
    assert.deepEqual({ status: last.status, output: last.output }, { status: 'Completed', output: 2 });
    assert.equal(await env.client.getExecutionInfo('loop', 9), null);
    assert.equal(await env.client.getExecutionInfo('nobody', 1), null);

    const pruned = await env.client.pruneExecutionsBulk({ instanceIds: ['loop', 'nobody'] }, { keepLast: 1 });
    assert.deepEqual(pruned, { instancesProcessed: 1, executionsDeleted: 2, eventsDeleted: 4 });
    assert.deepEqual(await env.client.listExecutions('loop'), [3]);

    for (const id of ['b1', 'b2', 'b3']) await env.client.startOrchestration(id, 'Child', 1);
    for (const id of ['b1', 'b2', 'b3']) await env.client.waitForOrchestration(id, 10000);
    await env.client.startOrchestration('running', 'Progress');
    const one = await env.client.deleteInstanceBulk({ instanceIds: ['b1', 'running'] });
    assert.deepEqual(one, { instancesDeleted: 1, executionsDeleted: 1, eventsDeleted: 2, queueMessagesDeleted: 0 });
    assert.equal((await env.client.getStatus('running')).status, 'Running', 'a running instance is never bulk-deleted');
    const rest = await env.client.deleteInstanceBulk({ completedBefore: Date.now() + 60000, limit: 1 });
    assert.equal(rest.instancesDeleted, 1);
    const all = await env.client.deleteInstanceBulk();
    assert.equal(all.instancesDeleted, 2, 'the other Child and the loop');
    assert.deepEqual((await env.client.listAllInstances()).sort(), ['running']);
    await assert.rejects(env.client.deleteInstance('running'), (e) => e.code === 'ERR_INVALID_STATE');
    const forced = await env.client.deleteInstance('running', true);
    assert.equal(forced.instancesDeleted, 1);
    assert.ok(forced.queueMessagesDeleted >= 0 && forced.eventsDeleted >= 1);
  } finally {
    await env.drop();
  }
});

test('waitForStatusChange takes duroxide-node\'s (id, lastSeen, pollMs, timeoutMs); the tree has its summary', async () => {
  const env = await startEnv(register);
  try {
    await env.client.startOrchestration('progress', 'Progress');
    const waiting = env.client.waitForStatusChange('progress', 0, 50, 10000);
    await env.client.raiseEvent('progress', 'step', null);
    const changed = await waiting;
    assert.deepEqual(changed.customStatus, { step: 1 });
    await assert.rejects(env.client.waitForStatusChange('progress', changed.customStatusVersion, 50, 100), TimeoutError);
    await assert.rejects(env.client.waitForStatusChange('progress', 0, -1, 100), (e) => e.code === 'ERR_INVALID_ARGUMENT' && /pollMs/.test(e.message));
    await env.client.raiseEvent('progress', 'end', null);
    await env.client.waitForOrchestration('progress', 10000);

    await env.client.startOrchestration('tree', 'Everything');
    await eventually(async () => (await env.client.readExecutionHistory('tree')).some((e) => e.kind === 'ExternalSubscribed'), 10000, 'the wait');
    await env.client.raiseEvent('tree', 'go', 1);
    await env.client.waitForOrchestration('tree', 10000);
    const tree = await env.client.getInstanceTree('tree');
    assert.equal(tree.rootId, 'tree');
    assert.deepEqual(tree.allIds, ['tree', 'tree:1:4']);
    assert.equal(tree.size, 2);
    assert.equal(tree.children[0].instanceId, 'tree:1:4');
  } finally {
    await env.drop();
  }
});

test("duroxide-node's metric names count what happened", async () => {
  const env = await startEnv(register);
  try {
    await env.client.startOrchestration('m-loop', 'Loop', 0);
    await env.client.waitForOrchestration('m-loop', 10000);
    await env.client.startOrchestration('m-all', 'Everything');
    await eventually(async () => (await env.client.readExecutionHistory('m-all')).some((e) => e.kind === 'ExternalSubscribed'), 10000, 'the wait');
    await env.client.raiseEvent('m-all', 'go', 1);
    await env.client.waitForOrchestration('m-all', 10000);
    await env.client.startOrchestration('m-missing', 'NotRegisteredAnywhere');
    await env.client.waitForOrchestration('m-missing', 20000);
    const m = await eventually(() => {
      const s = env.runtime.metricsSnapshot();
      return s.orchCompletions >= 4 && s.orchConfigurationErrors >= 1 && s;
    }, 10000, 'the counters');
    // Loop: 3 executions, 2 continued as new; Everything + its Child + the chained Child.
    assert.equal(m.orchStarts, 3 + 3 + 1, 'every execution started (the unregistered one fails before starting)');
    assert.equal(m.orchContinueAsNew, 2);
    assert.equal(m.suborchestrationCalls, 1);
    assert.equal(m.orchCompletions, m.orchestrationsCompleted);
    assert.equal(m.orchFailures, 1);
    assert.equal(m.orchConfigurationErrors, 1);
    assert.equal(m.orchApplicationErrors + m.orchInfrastructureErrors + m.orchPoison, 0);
    assert.equal(m.activitySuccess, 1);
    assert.equal(m.activityAppErrors, 1);
    assert.equal(m.activityConfigErrors + m.activityPoison, 0);
    assert.ok(m.orchDispatcherItemsFetched > 0 && m.workerDispatcherItemsFetched >= 2);
    assert.equal(m.providerErrors, m.storeErrors);
  } finally {
    await env.drop();
  }
}, { timeout: 60000 });

// Two runtimes share a store on PostgreSQL (SQLite allows one runtime per file).
test('orchestrationConcurrency 0: an activity-only runtime runs the activities of an orchestrator beside it', async () => {
  const orchestrator = await startEnv((rt) => {
    rt.registerOrchestration('Remote', function* (ctx, n) {
      return yield ctx.scheduleActivity('OnlyThere', n);
    });
  }, { notRegisteredGraceMs: 60000 }, `pg:${uniqueSchema('remote')}`);
  const worker = new Runtime(orchestrator.provider, { orchestrationConcurrency: 0, pollIntervalMs: 20 });
  let ran = 0;
  worker.registerActivity('OnlyThere', (ctx, n) => {
    ran++;
    return { n, by: ctx.workerId };
  });
  await worker.start();
  try {
    for (let i = 0; i < 5; i++) await orchestrator.client.startOrchestration(`remote-${i}`, 'Remote', i);
    for (let i = 0; i < 5; i++) {
      const s = await orchestrator.client.waitForOrchestration(`remote-${i}`, 20000);
      assert.equal(s.status, 'Completed', JSON.stringify(s));
      assert.equal(s.output.n, i);
    }
    const workers = (await orchestrator.client.listRuntimes()).filter((r) => r.activities.includes('OnlyThere'));
    assert.equal(workers.length, 1);
    for (let i = 0; i < 5; i++) assert.equal((await orchestrator.client.getStatus(`remote-${i}`)).output.by, workers[0].runtimeId);
    assert.equal(ran, 5);
    const m = worker.metricsSnapshot();
    assert.equal(m.turnsCommitted, 0, 'the activity-only runtime committed no turn');
    assert.equal(m.activitiesCompleted, 5);
  } finally {
    await worker.shutdown(5000);
    await orchestrator.drop();
  }
});
