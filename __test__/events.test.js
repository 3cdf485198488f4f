'use strict';
// External events: kept when raised before the wait (even before the start), not taken by a
// wait that lost a race, and given to the oldest of two pending waits of one name.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv, sleep, historyHas, historyHas: waitingFor } = require('./helpers');

test('an event raised before the orchestration waits (even before it starts) is kept', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Slow', async () => { await sleep(100); return 1; });
    rt.registerOrchestration('Waiter', function* (ctx) {
      yield ctx.scheduleActivity('Slow');
      const a = yield ctx.waitForEvent('go');
      const b = yield ctx.waitForEvent('go');
      return [a, b];
    });
  });
  try {
    await env.client.raiseEvent('early-1', 'go', 'first'); // before the instance exists
    await env.client.startOrchestration('early-1', 'Waiter');
    await env.client.raiseEvent('early-1', 'go', 'second'); // while the activity runs
    const r = await env.client.waitForOrchestration('early-1', 10000);
    assert.deepEqual(r.output, ['first', 'second']);
  } finally {
    await env.drop();
  }
});

test('a wait that lost a race to a timer takes no event: the next wait of that name gets it', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('WaitsTwice', function* (ctx) {
      const first = yield ctx.race(ctx.waitForEvent('x'), ctx.scheduleTimer(10));
      const second = yield ctx.waitForEvent('x');
      return { first, second };
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('lost-wait', 'WaitsTwice');
    await waitingFor(client, 'lost-wait', 'EventWaitStarted', 2);
    await client.raiseEvent('lost-wait', 'x', 'only one');
    const r = await client.waitForOrchestration('lost-wait', 10000);
    assert.equal(r.status, 'Completed', r.error);
    assert.deepEqual(r.output, { first: { index: 1, value: null }, second: 'only one' });
    const history = await client.readStoredHistory('lost-wait');
    assert.deepEqual(history.filter((e) => e.kind === 'TaskCanceled').map((e) => e.taskId), [1]);
    assert.deepEqual(history.filter((e) => e.kind === 'EventWaitStarted').map((e) => [e.taskId, e.data.name]), [[1, 'x'], [3, 'x']]);
  } finally {
    await env.drop();
  }
});

test('an event that arrives while two waits of its name are pending goes to the oldest wait', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('TwoWaits', function* (ctx) {
      // Both waits are pending at once; the first bound (task 1) is the older.
      const r = yield ctx.all([ctx.waitForEvent('go'), ctx.waitForEvent('go'), ctx.waitForEvent('other')]);
      return r.map((x) => x.ok);
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('two-waits', 'TwoWaits');
    await historyHas(client, 'two-waits', 'EventWaitStarted', 3);
    await client.raiseEvent('two-waits', 'go', 'first');
    await historyHas(client, 'two-waits', 'EventRaised');
    await client.raiseEvent('two-waits', 'other', 'unrelated');
    await historyHas(client, 'two-waits', 'EventRaised', 2);
    assert.equal((await client.getStatus('two-waits')).status, 'Running', 'the newer wait still waits');
    await client.raiseEvent('two-waits', 'go', 'second');
    const r = await client.waitForOrchestration('two-waits', 10000);
    assert.deepEqual(r.output, ['first', 'second', 'unrelated']);
    const history = await client.readStoredHistory('two-waits');
    assert.deepEqual(history.filter((e) => e.kind === 'EventWaitStarted').map((e) => [e.taskId, e.data.name]), [[1, 'go'], [2, 'go'], [3, 'other']]);
    assert.deepEqual(history.filter((e) => e.kind === 'EventRaised').map((e) => e.data.data), ['first', 'unrelated', 'second']);
  } finally {
    await env.drop();
  }
});
