'use strict';
// Management queries and bulk actions of the client: listing with keyset pages, instance
// info and trees, executions, metrics, queue depths, deletion (one instance or in bulk), pruning.
const test = require('node:test');
const assert = require('node:assert/strict');
const { InvalidArgumentError } = require('..');
const { startEnv, eventually, sleep } = require('./helpers');

const invalid = (field) => (e) => e instanceof InvalidArgumentError && e.code === 'ERR_INVALID_ARGUMENT' && e.message.includes(field);

/** Every instance of a listing, following the cursors. */
async function listAll(client, options = {}) {
  const all = [];
  let cursor = null;
  do {
    const page = await client.listInstances({ ...options, cursor });
    all.push(...page.instances);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return all;
}

const ids = (instances) => instances.map((i) => i.instanceId);

function setup(rt) {
  rt.registerOrchestration('Idle', function* (ctx) {
    return yield ctx.waitForEvent('go');
  });
  rt.registerOrchestration('Done', function* (ctx, input) {
    return { echo: input };
  });
  rt.registerOrchestration('Fail', function* () {
    throw new Error('broken on purpose');
  });
  rt.registerOrchestration('Parent', function* (ctx, n) {
    const results = [];
    for (let i = 0; i < n; i++) results.push(yield ctx.scheduleSubOrchestration('Kid', i));
    return results;
  });
  rt.registerOrchestration('Kid', function* (ctx, i) {
    if (i === 0) yield ctx.scheduleSubOrchestration('Done', 'grandchild');
    return i;
  });
  rt.registerOrchestration('Loop', function* (ctx, n) {
    ctx.setCustomStatus({ round: n });
    if (n < 3) return yield ctx.continueAsNew(n + 1);
    return n;
  });
}

test('listInstances pages 1,000 instances in creation order, stable under concurrent inserts', async () => {
  const env = await startEnv(setup);
  try {
    const originals = Array.from({ length: 1000 }, (_, i) => `i-${String(i).padStart(4, '0')}`);
    for (const id of originals) assert.equal(await env.client.startOrchestration(id, 'Idle'), true);
    const pages = [];
    const seen = [];
    let cursor = null;
    let late = 0;
    for (;;) {
      // Writers keep creating instances while the reader pages, some during the read.
      const starts = [0, 1].map(() => env.client.startOrchestration(`z-${String(late++).padStart(4, '0')}`, 'Idle'));
      const [page] = await Promise.all([env.client.listInstances({ limit: 100, cursor }), ...starts]);
      assert.ok(page.instances.length <= 100);
      pages.push({ cursor, ids: ids(page.instances) });
      seen.push(...ids(page.instances));
      await env.client.startOrchestration(`z-${String(late++).padStart(4, '0')}`, 'Idle');
      if (page.nextCursor === null) break;
      assert.equal(typeof page.nextCursor, 'string');
      cursor = page.nextCursor;
    }
    assert.deepEqual(seen.slice(0, 1000), originals, 'every original once, in order');
    assert.equal(new Set(seen).size, seen.length, 'no duplicates');
    assert.ok(seen.slice(1000).every((id) => id.startsWith('z-')));
    for (const [i, p] of pages.slice(0, 10).entries()) {
      const again = await env.client.listInstances({ limit: 100, cursor: p.cursor });
      assert.deepEqual(ids(again.instances), p.ids, `page ${i} is unchanged`);
    }
    const everything = await listAll(env.client, { limit: 250 });
    assert.equal(everything.length, 1000 + late);
    for (let i = 1; i < everything.length; i++) {
      const [a, b] = [everything[i - 1], everything[i]];
      assert.ok(a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.instanceId < b.instanceId), 'ordered');
    }
    const first = await env.client.listInstances();
    assert.equal(first.instances.length, 100, 'limit defaults to 100');
    assert.equal(first.instances[0].instanceId, 'i-0000');
  } finally {
    await env.drop();
  }
});

test('listInstances filters by status, name, creation time and parent; validates its options', async () => {
  const env = await startEnv(setup);
  try {
    await env.client.startOrchestration('f-done', 'Done', 1);
    await env.client.waitForOrchestration('f-done', 10000);
    await sleep(5);
    const t1 = new Date();
    await sleep(5);
    await env.client.startOrchestration('f-fail', 'Fail');
    await env.client.startOrchestration('f-idle', 'Idle');
    await env.client.waitForOrchestration('f-fail', 10000);
    await sleep(5);
    const t2 = Date.now();
    await sleep(5);
    await env.client.startOrchestration('f-parent', 'Parent', 2);
    await env.client.waitForOrchestration('f-parent', 10000);

    const list = async (options) => ids(await listAll(env.client, { limit: 2, ...options }));
    assert.deepEqual(await list({ status: 'Completed' }), ['f-done', 'f-parent', 'f-parent:1:1', 'f-parent:1:1:1:1', 'f-parent:1:2']);
    assert.deepEqual(await list({ status: 'Failed' }), ['f-fail']);
    assert.deepEqual(await list({ status: 'Running' }), ['f-idle']);
    assert.deepEqual(await list({ name: 'Done' }), ['f-done', 'f-parent:1:1:1:1']);
    assert.deepEqual(await list({ createdAfter: t1, createdBefore: t2 }), ['f-fail', 'f-idle']);
    assert.deepEqual(await list({ createdBefore: t1 }), ['f-done']);
    assert.deepEqual(await list({ createdAfter: t2 }), ['f-parent', 'f-parent:1:1', 'f-parent:1:1:1:1', 'f-parent:1:2']);
    assert.deepEqual(await list({ parentId: 'f-parent' }), ['f-parent:1:1', 'f-parent:1:2']);
    assert.deepEqual(await list({ parentId: 'f-parent:1:1' }), ['f-parent:1:1:1:1']);
    assert.deepEqual(await list({ status: 'Completed', name: 'Kid' }), ['f-parent:1:1', 'f-parent:1:2']);
    assert.deepEqual(await list({ name: 'Nobody' }), []);

    await assert.rejects(env.client.listInstances({ status: 'Bogus' }), invalid('options.status'));
    await assert.rejects(env.client.listInstances({ limit: 0 }), invalid('options.limit'));
    await assert.rejects(env.client.listInstances({ limit: 1.5 }), invalid('options.limit'));
    await assert.rejects(env.client.listInstances({ createdAfter: 'yesterday' }), invalid('options.createdAfter'));
    await assert.rejects(env.client.listInstances({ parentId: 7 }), invalid('options.parentId'));
    await assert.rejects(env.client.listInstances({ cursor: 42 }), invalid('options.cursor'));
    await assert.rejects(env.client.listInstances({ cursor: 'not-a-cursor' }), invalid('cursor'));
    await assert.rejects(env.client.listInstances({ sort: 'name' }), invalid('options.sort'));
    await assert.rejects(env.client.listInstances(null), invalid('options'));
  } finally {
    await env.drop();
  }
});

test('getInstanceInfo gives every stored field, parsed; null for an unknown id', async () => {
  const env = await startEnv(setup);
  try {
    const before = Date.now();
    await env.client.startOrchestration('info', 'Done', { a: [1, 2] });
    await env.client.waitForOrchestration('info', 10000);
    const info = await env.client.getInstanceInfo('info');
    assert.deepEqual(Object.keys(info).sort(), [
      'createdAt', 'currentExecutionId', 'customStatus', 'customStatusVersion', 'error', 'errorCode', 'executionId', 'input',
      'instanceId', 'name', 'orchestrationName', 'orchestrationVersion', 'output', 'parentId', 'parentInstanceId', 'status',
      'storedStatus', 'updatedAt', 'version', 'waitingForRuntime',
    ]);
    assert.equal(info.waitingForRuntime, false, 'a finished instance waits for nothing');
    // duroxide-node's names for the same facts.
    assert.deepEqual(
      [info.orchestrationName, info.orchestrationVersion, info.currentExecutionId, info.parentInstanceId],
      [info.name, info.version, info.executionId, info.parentId],
    );
    assert.equal(info.instanceId, 'info');
    assert.equal(info.name, 'Done');
    assert.equal(info.version, '1.0.0', 'the default version of an unversioned registration');
    assert.equal(info.status, 'Completed');
    assert.equal(info.storedStatus, 'Completed');
    assert.equal(info.executionId, 1);
    assert.deepEqual(info.input, { a: [1, 2] });
    assert.deepEqual(info.output, { echo: { a: [1, 2] } });
    assert.equal(info.error, null);
    assert.equal(info.errorCode, null);
    assert.equal(info.customStatus, null);
    assert.equal(info.customStatusVersion, 0);
    assert.equal(info.parentId, null);
    assert.ok(info.createdAt >= before - 1000 && info.updatedAt >= info.createdAt);
    const listed = (await env.client.listInstances()).instances.find((i) => i.instanceId === 'info');
    assert.deepEqual(listed, info, 'listInstances rows have the same shape');

    await env.client.startOrchestration('info-fail', 'Fail');
    await env.client.waitForOrchestration('info-fail', 10000);
    const failed = await env.client.getInstanceInfo('info-fail');
    assert.equal(failed.status, 'Failed');
    assert.equal(failed.error, 'broken on purpose');
    assert.equal(failed.errorCode, 'ERR_ORCHESTRATION_FAILED', 'a thrown error without a code');
    assert.equal(failed.output, null);

    assert.equal(await env.client.getInstanceInfo('nobody'), null);
    await assert.rejects(env.client.getInstanceInfo(''), invalid('instanceId'));
  } finally {
    await env.drop();
  }
});

test('listExecutions after continue-as-new; pruneExecutions keeps the current execution', async () => {
  const env = await startEnv(setup);
  try {
    await env.client.startOrchestration('loop', 'Loop', 0);
    const done = await env.client.waitForOrchestration('loop', 10000);
    assert.equal(done.output, 3);
    const info = await env.client.getInstanceInfo('loop');
    assert.equal(info.executionId, 4);
    assert.deepEqual(info.input, 0, 'the input the instance was started with');
    assert.deepEqual(info.customStatus, { round: 3 });
    assert.deepEqual(await env.client.listExecutions('loop'), [1, 2, 3, 4], "duroxide-node's form: the ids");
    const executions = await env.client.listExecutions('loop', { details: true });
    assert.deepEqual(executions.map((e) => e.executionId), [1, 2, 3, 4]);
    for (const e of executions) {
      assert.equal(e.eventCount, 3, 'ExecutionStarted, CustomStatusSet, then ContinuedAsNew or ExecutionCompleted');
      assert.ok(e.firstEventAt <= e.lastEventAt);
      const history = await env.client.readStoredHistory('loop', e.executionId);
      assert.equal(history.length, e.eventCount);
    }
    assert.deepEqual(await env.client.listExecutions('nobody'), []);

    assert.equal(await env.client.pruneExecutions('loop', { completedBefore: executions[0].firstEventAt }), 0);
    assert.equal(await env.client.pruneExecutions('loop', { keepLast: 2 }), 2);
    assert.deepEqual(await env.client.listExecutions('loop'), [3, 4]);
    assert.deepEqual(await env.client.readStoredHistory('loop', 1), []);
    assert.equal(await env.client.pruneExecutions('loop', { keepLast: 2 }), 0);
    assert.equal(await env.client.pruneExecutions('loop', { completedBefore: new Date(Date.now() + 60000) }), 1);
    assert.equal(await env.client.pruneExecutions('loop'), 0);
    assert.deepEqual(await env.client.listExecutions('loop'), [4]);
    assert.equal((await env.client.readStoredHistory('loop')).length, executions[3].eventCount, 'the current one stays');
    assert.equal(await env.client.pruneExecutions('nobody'), 0);

    await assert.rejects(env.client.pruneExecutions('loop', { keepLast: 0 }), invalid('options.keepLast'));
    await assert.rejects(env.client.pruneExecutions('loop', { completedBefore: 'soon' }), invalid('options.completedBefore'));
    await assert.rejects(env.client.pruneExecutions('loop', { keep: 1 }), invalid('options.keep'));
  } finally {
    await env.drop();
  }
});

test('getInstanceTree gives a parent with its sub-orchestrations, recursively', async () => {
  const env = await startEnv(setup);
  try {
    await env.client.startOrchestration('tree', 'Parent', 3);
    assert.deepEqual((await env.client.waitForOrchestration('tree', 10000)).output, [0, 1, 2]);
    const tree = await env.client.getInstanceTree('tree');
    assert.equal(tree.instanceId, 'tree');
    assert.equal(tree.status, 'Completed');
    assert.deepEqual(tree.children.map((c) => c.instanceId).sort(), ['tree:1:1', 'tree:1:2', 'tree:1:3']);
    const first = tree.children.find((c) => c.instanceId === 'tree:1:1');
    assert.equal(first.parentId, 'tree');
    assert.equal(first.name, 'Kid');
    assert.deepEqual(first.children.map((c) => c.instanceId), ['tree:1:1:1:1']);
    assert.equal(first.children[0].parentId, 'tree:1:1');
    assert.deepEqual(first.children[0].children, []);
    assert.ok(tree.children.filter((c) => c !== first).every((c) => c.children.length === 0));
    const sub = await env.client.getInstanceTree('tree:1:1');
    assert.deepEqual(sub.children.map((c) => c.instanceId), ['tree:1:1:1:1']);
    assert.equal(await env.client.getInstanceTree('nobody'), null);
  } finally {
    await env.drop();
  }
});

/** The instance counts of getSystemMetrics, in reprise's names. */
const counts = ({ total, running, completed, failed }) => ({ total, running, completed, failed });

test('getSystemMetrics counts instances by status; getQueueDepths counts queued work', async () => {
  let release;
  const gate = new Promise((r) => { release = r; });
  let started = 0;
  const env = await startEnv((rt) => {
    setup(rt);
    rt.registerActivity('Hold', async () => { started++; await gate; return 1; });
    rt.registerOrchestration('Busy', function* (ctx) {
      const timer = ctx.scheduleTimer(600000);
      const work = ctx.scheduleActivity('Hold');
      return yield ctx.race(timer, work);
    });
  });
  try {
    assert.deepEqual(await env.client.getSystemMetrics(), {
      total: 0, running: 0, completed: 0, failed: 0,
      totalInstances: 0, totalExecutions: 0, runningInstances: 0, completedInstances: 0, failedInstances: 0, totalEvents: 0,
    });
    assert.deepEqual(await env.client.getQueueDepths(), {
      orchestrator: { visible: 0, delayed: 0 }, worker: { visible: 0, running: 0, delayed: 0 },
      orchestratorQueue: 0, workerQueue: 0, timerQueue: 0,
    });
    await env.client.startOrchestration('m-done', 'Done');
    await env.client.startOrchestration('m-fail', 'Fail');
    await env.client.startOrchestration('m-idle', 'Idle');
    await env.client.startOrchestration('m-busy', 'Busy');
    await env.client.waitForOrchestration('m-done', 10000);
    await env.client.waitForOrchestration('m-fail', 10000);
    await eventually(() => started === 1, 10000, 'the activity');
    await eventually(async () => (await env.client.readStoredHistory('m-idle')).length > 0, 10000, 'the idle start');
    assert.deepEqual(counts(await env.client.getSystemMetrics()), { total: 4, running: 2, completed: 1, failed: 1 });
    const metrics = await env.client.getSystemMetrics();
    assert.deepEqual(
      [metrics.totalInstances, metrics.runningInstances, metrics.completedInstances, metrics.failedInstances, metrics.totalExecutions],
      [4, 2, 1, 1, 4],
    );
    assert.equal(metrics.totalEvents, (await Promise.all(['m-done', 'm-fail', 'm-idle', 'm-busy'].map((id) => env.client.readStoredHistory(id)))).flat().length);
    await eventually(async () => {
      const q = await env.client.getQueueDepths();
      return q.orchestrator.visible === 0 && q.orchestrator.delayed === 1 && q.worker.running === 1 && q.worker.visible === 0 && q.worker.delayed === 0
        && q.timerQueue === 1 && q.orchestratorQueue === 0 && q.workerQueue === 0;
    }, 10000, 'one timer and one running activity');
    release();
    const busy = await env.client.waitForOrchestration('m-busy', 10000);
    assert.deepEqual(busy.output, { index: 1, value: 1 });
    assert.deepEqual(counts(await env.client.getSystemMetrics()), { total: 4, running: 1, completed: 2, failed: 1 });
    await eventually(async () => {
      const q = await env.client.getQueueDepths();
      return q.orchestrator.delayed === 0 && q.worker.running === 0;
    }, 10000, 'the race loser timer gone');
  } finally {
    release();
    await env.drop();
  }
});

test('deleteInstances removes finished instances (never running ones) with their sub-orchestrations', async () => {
  const env = await startEnv(setup);
  try {
    for (const id of ['d-a', 'd-b']) await env.client.startOrchestration(id, 'Done');
    await env.client.startOrchestration('d-fail', 'Fail');
    await env.client.startOrchestration('d-idle', 'Idle');
    for (const id of ['d-a', 'd-b', 'd-fail']) await env.client.waitForOrchestration(id, 10000);
    await sleep(5);
    const cut = Date.now();
    await sleep(5);
    await env.client.startOrchestration('d-parent', 'Parent', 1);
    await env.client.waitForOrchestration('d-parent', 10000);

    assert.equal(await env.client.deleteInstances({ ids: ['d-a', 'd-idle', 'unknown'] }), 1);
    assert.equal(await env.client.getInstanceInfo('d-a'), null);
    assert.equal((await env.client.getStatus('d-idle')).status, 'Running');
    assert.equal(await env.client.deleteInstances({ completedBefore: Date.now() + 60000, status: 'Failed' }), 1);
    assert.equal(await env.client.getInstanceInfo('d-fail'), null);
    assert.equal(await env.client.deleteInstances({ completedBefore: cut }), 1, 'd-b only');
    assert.equal(await env.client.getInstanceInfo('d-b'), null);
    // d-parent, its child and grandchild: the sub-orchestrations go with the parent.
    assert.equal(await env.client.deleteInstances({ ids: ['d-parent'] }), 3);
    assert.deepEqual(ids(await listAll(env.client)), ['d-idle']);
    assert.deepEqual(await env.client.readStoredHistory('d-parent', 1), []);
    assert.equal(await env.client.deleteInstances({ completedBefore: new Date(Date.now() + 60000) }), 0);

    for (const id of ['d-x', 'd-y', 'd-z']) {
      await env.client.startOrchestration(id, 'Done');
      await env.client.waitForOrchestration(id, 10000);
    }
    assert.equal(await env.client.deleteInstances({ completedBefore: Date.now() + 60000, limit: 2 }), 2);
    assert.deepEqual(ids(await listAll(env.client)), ['d-idle', 'd-z'], 'oldest finish first');
    assert.deepEqual(counts(await env.client.getSystemMetrics()), { total: 2, running: 1, completed: 1, failed: 0 });

    await assert.rejects(env.client.deleteInstances({}), invalid('ids or completedBefore'));
    await assert.rejects(env.client.deleteInstances(), invalid('options'));
    await assert.rejects(env.client.deleteInstances({ ids: 'd-z' }), invalid('options.ids'));
    await assert.rejects(env.client.deleteInstances({ ids: ['ok', ''] }), invalid('options.ids[1]'));
    await assert.rejects(env.client.deleteInstances({ completedBefore: 1, status: 'Running' }), invalid('options.status'));
    await assert.rejects(env.client.deleteInstances({ completedBefore: 1, limit: -1 }), invalid('options.limit'));
  } finally {
    await env.drop();
  }
});

test('deleteInstance refuses a running instance without force and removes its sub-orchestrations', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Kid', function* (ctx) {
      return yield ctx.waitForEvent('never');
    });
    rt.registerOrchestration('Parent', function* (ctx) {
      return yield ctx.scheduleSubOrchestration('Kid', null);
    });
    rt.registerOrchestration('Done', function* () {
      return 1;
    });
  });
  try {
    await env.client.startOrchestration('del-parent', 'Parent');
    await eventually(async () => (await env.client.getStatus('del-parent:1:1')).status === 'Running', 10000, 'the child');
    await assert.rejects(env.client.deleteInstance('del-parent'), (e) => e.code === 'ERR_INVALID_STATE' && /is running/.test(e.message));
    assert.equal((await env.client.getStatus('del-parent')).status, 'Running');
    assert.equal(await env.client.deleteInstance('del-parent', { force: true }), 2);
    assert.equal((await env.client.getStatus('del-parent')).status, 'NotFound');
    assert.equal((await env.client.getStatus('del-parent:1:1')).status, 'NotFound');
    assert.deepEqual(await env.client.readStoredHistory('del-parent', 1), []);
    await env.client.startOrchestration('del-done', 'Done');
    await env.client.waitForOrchestration('del-done', 10000);
    const removed = await env.client.deleteInstance('del-done');
    assert.deepEqual(removed, { instancesDeleted: 1, executionsDeleted: 1, eventsDeleted: removed.eventsDeleted, queueMessagesDeleted: 0 });
    assert.ok(removed.eventsDeleted >= 2);
    assert.deepEqual(await env.client.deleteInstance('del-done', false), { instancesDeleted: 0, executionsDeleted: 0, eventsDeleted: 0, queueMessagesDeleted: 0 });
    assert.equal(await env.client.deleteInstance('del-done', {}), 0, "reprise's form counts instances");
  } finally {
    await env.drop();
  }
});
