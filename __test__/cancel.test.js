'use strict';
// cancelInstance: the cancel cascades to children and grandchildren with its reason, fires the
// running activities' signals, resumes no code, reaches a parent as ERR_CANCELED; a default
// reason; nothing to do once finished.
const test = require('node:test');
const assert = require('node:assert/strict');
const { TaskFailedError } = require('..');
const { startEnv, eventually, sleep, hanging, historyHas, historyHas: waitingFor } = require('./helpers');

test('cancelInstance cascades to children, fires running activities signals, and is a no-op when finished', async () => {
  const aborted = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('Hang', (ctx, who) => new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        aborted.push(who);
        resolve('stopped');
      });
    }));
    rt.registerOrchestration('Child', function* (ctx) {
      return yield ctx.scheduleActivity('Hang', 'child');
    });
    rt.registerOrchestration('Root', function* (ctx) {
      return yield ctx.all([ctx.scheduleSubOrchestrationWithId('Child', 'cancel-child', null), ctx.scheduleActivity('Hang', 'root')]);
    });
    rt.registerOrchestration('Quick', function* () {
      return 'done';
    });
  });
  try {
    await env.client.startOrchestration('cancel-root', 'Root');
    await eventually(() => aborted.length === 0 && env.runtime.metricsSnapshot().runningActivities === 2, 10000, 'both activities running');
    assert.equal(await env.client.cancelInstance('cancel-root', 'user pressed stop'), true);
    const root = await env.client.waitForOrchestration('cancel-root', 10000);
    assert.equal(root.status, 'Failed');
    assert.equal(root.error, 'canceled: user pressed stop');
    assert.equal(root.errorCode, 'ERR_CANCELED');
    const child = await env.client.waitForOrchestration('cancel-child', 10000);
    assert.equal(child.status, 'Failed');
    assert.equal(child.error, 'canceled: user pressed stop', 'the child gets the parent’s reason');
    assert.equal(child.errorCode, 'ERR_CANCELED');
    await eventually(() => aborted.length === 2, 5000, 'both signals');
    assert.deepEqual(aborted.sort(), ['child', 'root']);

    await env.client.startOrchestration('quick-1', 'Quick');
    await env.client.waitForOrchestration('quick-1', 10000);
    assert.equal(await env.client.cancelInstance('quick-1', 'too late'), false);
    assert.equal((await env.client.getStatus('quick-1')).status, 'Completed');
  } finally {
    await env.drop();
  }
});

test('cancelInstance without a reason fails the instance with “canceled: canceled by client”', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Idle', function* (ctx) {
      return yield ctx.waitForEvent('never');
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('cancel-default', 'Idle');
    await waitingFor(client, 'cancel-default', 'EventWaitStarted');
    assert.equal(await client.cancelInstance('cancel-default'), true);
    const r = await client.waitForOrchestration('cancel-default', 10000);
    assert.equal(r.status, 'Failed');
    assert.equal(r.error, 'canceled: canceled by client');
    assert.equal(r.errorCode, 'ERR_CANCELED');
    const history = await client.readStoredHistory('cancel-default');
    assert.deepEqual(history.slice(-2).map((e) => [e.kind, e.data]), [
      ['CancelRequested', { reason: 'canceled by client' }],
      ['ExecutionFailed', { error: { message: 'canceled: canceled by client', code: 'ERR_CANCELED' } }],
    ]);
  } finally {
    await env.drop();
  }
});

test('cancelling the root cancels its child and grandchild with the same reason; no code runs after the cancel', async () => {
  const aborted = [];
  const resumed = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('Hang', hanging(aborted));
    rt.registerOrchestration('Root', function* (ctx) {
      try {
        return yield ctx.scheduleSubOrchestration('Middle', null);
      } finally {
        resumed.push('Root');
      }
    });
    rt.registerOrchestration('Middle', function* (ctx) {
      try {
        return yield ctx.scheduleSubOrchestration('Leaf', null);
      } finally {
        resumed.push('Middle');
      }
    });
    rt.registerOrchestration('Leaf', function* (ctx) {
      try {
        return yield ctx.scheduleActivity('Hang', 'leaf');
      } finally {
        resumed.push('Leaf');
      }
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('root', 'Root');
    await eventually(() => env.runtime.metricsSnapshot().runningActivities === 1, 10000, 'the grandchild’s activity to run');
    assert.equal(await client.cancelInstance('root', 'stop everything'), true);
    for (const id of ['root', 'root:1:1', 'root:1:1:1:1']) {
      const r = await client.waitForOrchestration(id, 10000);
      assert.equal(r.status, 'Failed', id);
      assert.equal(r.error, 'canceled: stop everything', id);
      assert.equal(r.errorCode, 'ERR_CANCELED', id);
      const history = await client.readStoredHistory(id);
      assert.deepEqual(history.slice(-2).map((e) => [e.kind, e.data]), [
        ['CancelRequested', { reason: 'stop everything' }],
        ['ExecutionFailed', { error: { message: 'canceled: stop everything', code: 'ERR_CANCELED' } }],
      ], id);
    }
    await eventually(() => aborted.length === 1, 5000, 'the grandchild’s activity signal');
    assert.deepEqual(aborted, [{ who: 'leaf', reason: 'the orchestration no longer waits for this activity' }]);
    await sleep(100); // the late result arrives and must be dropped
    const leaf = await client.readStoredHistory('root:1:1:1:1');
    assert.equal(leaf.filter((e) => e.kind === 'ActivityCompleted').length, 0);
    assert.deepEqual(resumed, [], 'no finally block ran: cancelled code is not resumed');
  } finally {
    await env.drop();
  }
});

test('a cancelled child throws ERR_CANCELED with the reason at its parent’s yield', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Kid', function* (ctx) {
      return yield ctx.waitForEvent('never');
    });
    rt.registerOrchestration('Watcher', function* (ctx) {
      try {
        yield ctx.scheduleSubOrchestrationWithId('Kid', 'the-kid', null);
        return 'not reached';
      } catch (e) {
        return { caught: e instanceof TaskFailedError, name: e.name, code: e.code, message: e.message };
      }
    });
  });
  try {
    await env.client.startOrchestration('watcher', 'Watcher');
    await historyHas(env.client, 'the-kid', 'EventWaitStarted');
    assert.equal(await env.client.cancelInstance('the-kid', 'only the kid'), true);
    const r = await env.client.waitForOrchestration('watcher', 10000);
    assert.deepEqual(r.output, { caught: true, name: 'TaskFailedError', code: 'ERR_CANCELED', message: 'canceled: only the kid' });
    assert.equal((await env.client.getStatus('the-kid')).error, 'canceled: only the kid');
  } finally {
    await env.drop();
  }
});
