'use strict';
// Orchestration versions: the highest (semver) for new instances, pinned while running, the
// latest after continue-as-new.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv, historyHas: waitingFor } = require('./helpers');

test('versions: new instances get the highest, running ones stay pinned, continue-as-new moves to the latest', async () => {
  const seen = [];
  const env = await startEnv((rt) => {
    rt.registerOrchestrationVersioned('Versioned', '1.0.0', function* (ctx, input) {
      if (!ctx.isReplaying) seen.push(`${ctx.instanceId} ran 1.0.0 as ${ctx.orchestrationVersion}`);
      if (input === 'upgrade') return yield ctx.continueAsNew('after');
      yield ctx.waitForEvent('go');
      return `v1 ${input}`;
    });
    rt.registerOrchestrationVersioned('Versioned', '1.10.0', function* (ctx, input) {
      if (!ctx.isReplaying) seen.push(`${ctx.instanceId} ran 1.10.0 as ${ctx.orchestrationVersion}`);
      return `v1.10 ${input}`;
    });
    rt.registerOrchestrationVersioned('Versioned', '1.2.0', function* (ctx, input) {
      seen.push(`${ctx.instanceId} ran 1.2.0`);
      return `v1.2 ${input}`;
    });
  });
  try {
    await env.client.startOrchestration('v-latest', 'Versioned', 'a');
    assert.equal((await env.client.waitForOrchestration('v-latest', 10000)).output, 'v1.10 a', 'semver order, not string order');
    await env.client.startOrchestration('v-pinned', 'Versioned', 'b', { version: '1.0.0' });
    await waitingFor(env.client, 'v-pinned', 'EventWaitStarted');
    await env.client.raiseEvent('v-pinned', 'go', null);
    assert.equal((await env.client.waitForOrchestration('v-pinned', 10000)).output, 'v1 b');
    await env.client.startOrchestration('v-upgrade', 'Versioned', 'upgrade', { version: '1.0.0' });
    assert.equal((await env.client.waitForOrchestration('v-upgrade', 10000)).output, 'v1.10 after');
    const started = (await env.client.readStoredHistory('v-upgrade', 2))[0];
    assert.equal(started.data.version, '1.10.0');
    assert.deepEqual(seen, [
      'v-latest ran 1.10.0 as 1.10.0',
      'v-pinned ran 1.0.0 as 1.0.0',
      'v-upgrade ran 1.0.0 as 1.0.0',
      'v-upgrade ran 1.10.0 as 1.10.0',
    ], 'each function ran under its own version; 1.2.0 never ran');
  } finally {
    await env.drop();
  }
});
