'use strict';
// Custom status: set by the orchestration, read by the client (undefined as null), followed
// with waitForStatusChange until the end.
const test = require('node:test');
const assert = require('node:assert/strict');
const { TimeoutError } = require('..');
const { startEnv, eventually } = require('./helpers');

test('custom status is visible to the client and undefined crosses as null', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Progress', function* (ctx) {
      ctx.setCustomStatus({ step: 1 });
      yield ctx.waitForEvent('next');
      ctx.setCustomStatus({ step: 2, seen: ctx.getCustomStatus() });
      return undefined;
    });
  });
  try {
    await env.client.startOrchestration('p-1', 'Progress');
    const s = await eventually(async () => {
      const st = await env.client.getStatus('p-1');
      return st.customStatusVersion === 1 && st;
    });
    assert.deepEqual(s.customStatus, { step: 1 });
    await env.client.raiseEvent('p-1', 'next', null);
    const r = await env.client.waitForOrchestration('p-1', 10000);
    assert.deepEqual(r.customStatus, { step: 2, seen: { step: 1 } });
    assert.equal(r.customStatusVersion, 2);
    assert.equal(r.output, null);
  } finally {
    await env.drop();
  }
});

test('waitForStatusChange follows custom status as progress, then the end', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Step', async (ctx, n) => n);
    rt.registerOrchestration('Progress', function* (ctx) {
      for (let i = 1; i <= 3; i++) {
        yield ctx.scheduleActivity('Step', i);
        ctx.setCustomStatus({ done: i, of: 3 });
        yield ctx.waitForEvent('next');
      }
      return 'finished';
    });
  });
  try {
    await env.client.startOrchestration('progress-1', 'Progress');
    let version = 0;
    const seen = [];
    for (;;) {
      const s = await env.client.waitForStatusChange('progress-1', version, 10000);
      if (s.status !== 'Running') {
        assert.equal(s.output, 'finished');
        break;
      }
      version = s.customStatusVersion;
      seen.push(s.customStatus.done);
      await env.client.raiseEvent('progress-1', 'next', null);
    }
    assert.deepEqual(seen, [1, 2, 3]);
    await assert.rejects(env.client.waitForStatusChange('nobody', 0, 50), TimeoutError);
    await assert.rejects(env.client.waitForStatusChange('progress-1', -1), /lastVersion must be an integer >= 0/);
  } finally {
    await env.drop();
  }
});
