'use strict';
// Starting and waiting from the client: a start of an existing id creates nothing, an unknown
// id is NotFound, waitForOrchestration gives up with a TimeoutError.
const test = require('node:test');
const assert = require('node:assert/strict');
const { TimeoutError } = require('..');
const { startEnv, sleep } = require('./helpers');

test('starting an existing id creates nothing and does not fail; status of an unknown id is NotFound', async () => {
  let runs = 0;
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Once', function* (ctx, input) {
      runs++;
      return input;
    });
  });
  try {
    assert.equal(await env.client.startOrchestration('once-1', 'Once', 1), true);
    assert.equal((await env.client.waitForOrchestration('once-1', 10000)).output, 1);
    assert.equal(await env.client.startOrchestration('once-1', 'Once', 2), false);
    await sleep(100);
    const s = await env.client.getStatus('once-1');
    assert.equal(s.output, 1);
    assert.equal((await env.client.getStatus('nobody')).status, 'NotFound');
    assert.equal((await env.client.readStoredHistory('once-1')).filter((e) => e.kind === 'ExecutionStarted').length, 1);
    assert.equal(runs, 1, 'the second start ran nothing');
  } finally {
    await env.drop();
  }
});

test('waitForOrchestration rejects with a TimeoutError', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Forever', function* (ctx) {
      yield ctx.waitForEvent('never');
    });
  });
  try {
    await env.client.startOrchestration('forever-1', 'Forever');
    await assert.rejects(env.client.waitForOrchestration('forever-1', 200), (e) => e instanceof TimeoutError && e.code === 'ERR_TIMEOUT');
    assert.equal((await env.client.getStatus('forever-1')).status, 'Running');
  } finally {
    await env.drop();
  }
});
