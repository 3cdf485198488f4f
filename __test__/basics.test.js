'use strict';
// The core of the programming model end to end: activities, a timer and an event in order,
// results parsed, the history they write.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv, eventually } = require('./helpers');

test('activities, timers and events run in order and results come back parsed', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Add', async (ctx, { a, b }) => a + b);
    rt.registerActivity('Echo', async (ctx, x) => ({ echoed: x, attempt: ctx.attempt, name: ctx.activityName }));
    rt.registerOrchestration('Flow', function* (ctx, input) {
      const sum = yield ctx.scheduleActivity('Add', { a: input.a, b: 2 });
      const timer = yield ctx.scheduleTimer(50);
      const approval = yield ctx.waitForEvent('approve');
      const echo = yield* ctx.scheduleActivity('Echo', approval);
      return { sum, timer, echo, id: ctx.instanceId, exec: ctx.executionId, name: ctx.orchestrationName };
    });
  });
  try {
    assert.equal(await env.client.startOrchestration('flow-1', 'Flow', { a: 40 }), true);
    await eventually(async () => (await env.client.readStoredHistory('flow-1')).some((e) => e.kind === 'EventWaitStarted'), 10000, 'the wait');
    await env.client.raiseEvent('flow-1', 'approve', { by: 'ana' });
    const r = await env.client.waitForOrchestration('flow-1', 10000);
    assert.equal(r.status, 'Completed');
    assert.deepEqual(r.output, {
      sum: 42,
      timer: null,
      echo: { echoed: { by: 'ana' }, attempt: 1, name: 'Echo' },
      id: 'flow-1',
      exec: 1,
      name: 'Flow',
    });
    assert.equal(r.error, null);
    const kinds = (await env.client.readStoredHistory('flow-1', 1)).map((e) => e.kind);
    assert.deepEqual(kinds, [
      'ExecutionStarted', 'ActivityScheduled', 'ActivityCompleted', 'TimerCreated', 'TimerFired',
      'EventWaitStarted', 'EventRaised', 'ActivityScheduled', 'ActivityCompleted', 'ExecutionCompleted',
    ]);
  } finally {
    await env.drop();
  }
});
