'use strict';
// client.retryInstance: a failed instance resumes from its last good point (sub-orchestrations
// included, a bug fixed in the meantime), and refuses what it cannot retry.
const test = require('node:test');
const assert = require('node:assert/strict');
const { InvalidStateError, NotFoundError, InvalidArgumentError } = require('..');
const { startEnv, eventually, makeSetup } = require('./helpers');

test('retryInstance re-runs only the failed activity after two that succeeded', async () => {
  const { calls, flags, setup } = makeSetup();
  const env = await startEnv(setup);
  try {
    const { client } = env;
    await client.startOrchestration('r1', 'ThreeSteps', 1);
    const failed = await client.waitForOrchestration('r1', 10000);
    assert.equal(failed.status, 'Failed');
    assert.match(failed.error, /C is down/);
    assert.deepEqual(calls, { A: 1, B: 1, C: 1 });

    flags.failC = false;
    assert.deepEqual(await client.retryInstance('r1'), ['r1']);
    const done = await client.waitForOrchestration('r1', 10000);
    assert.equal(done.status, 'Completed');
    assert.deepEqual(done.output, { a: 2, b: 20, c: 25 });
    assert.deepEqual(calls, { A: 1, B: 1, C: 2 }, 'A and B ran once; only C ran again');
    assert.deepEqual(done.customStatus, { step: 'C' });

    const info = await client.getInstanceInfo('r1');
    assert.equal(info.status, 'Completed');
    assert.equal(info.error, null);
    const history = await client.readStoredHistory('r1');
    const kinds = history.map((e) => e.kind);
    assert.equal(kinds.filter((k) => k === 'ExecutionFailed').length, 0, 'the failure left the history');
    const retried = history.find((e) => e.kind === 'ExecutionRetried');
    assert.match(retried.data.error.message, /C is down/);
    assert.equal(kinds.filter((k) => k === 'ActivityScheduled').length, 3);
    assert.deepEqual(history.map((e) => e.eventId), history.map((_, i) => i + 1), 'event ids stay dense');
  } finally {
    await env.drop();
  }
});

test('retryInstance refuses unknown, running and completed instances and changes nothing', async () => {
  const { setup } = makeSetup();
  const env = await startEnv(setup);
  try {
    const { client } = env;
    await assert.rejects(client.retryInstance('nobody'), (e) => e instanceof NotFoundError && e.code === 'ERR_NOT_FOUND');
    await client.startOrchestration('idle', 'Idle');
    await eventually(async () => (await client.getStatus('idle')).status === 'Running');
    await assert.rejects(client.retryInstance('idle'), (e) => e instanceof InvalidStateError && /is Running/.test(e.message));
    await client.raiseEvent('idle', 'go', 1);
    await client.waitForOrchestration('idle', 10000);
    const before = await client.readStoredHistory('idle');
    await assert.rejects(client.retryInstance('idle'), (e) => e instanceof InvalidStateError && /is Completed/.test(e.message));
    assert.deepEqual(await client.readStoredHistory('idle'), before);
    await assert.rejects(client.retryInstance(''), InvalidArgumentError);
  } finally {
    await env.drop();
  }
});

test('retryInstance of a parent retries its failed sub-orchestration too', async () => {
  const { calls, flags, setup } = makeSetup();
  const env = await startEnv(setup);
  try {
    const { client } = env;
    await client.startOrchestration('p1', 'Parent');
    assert.equal((await client.waitForOrchestration('p1', 10000)).status, 'Failed');
    const kidId = (await client.listInstances({ parentId: 'p1' })).instances[0].instanceId;
    assert.equal((await client.getStatus(kidId)).status, 'Failed');

    flags.failX = false;
    assert.deepEqual(await client.retryInstance('p1'), ['p1', kidId]);
    const done = await client.waitForOrchestration('p1', 10000);
    assert.equal(done.status, 'Completed');
    assert.deepEqual(done.output, { a: 2, kid: 'x' });
    assert.equal((await client.getStatus(kidId)).status, 'Completed');
    assert.deepEqual(calls, { A: 1, X: 2 });
  } finally {
    await env.drop();
  }
});

test('retryInstance after a bug fix re-runs the code of the failed turn without repeating its activity', async () => {
  const { calls, flags, setup } = makeSetup();
  const env = await startEnv(setup);
  try {
    const { client } = env;
    await client.startOrchestration('b1', 'Buggy');
    const failed = await client.waitForOrchestration('b1', 10000);
    assert.match(failed.error, /a bug after A/);
    flags.broken = false; // the "deployed fix"
    await client.retryInstance('b1');
    const done = await client.waitForOrchestration('b1', 10000);
    assert.equal(done.status, 'Completed');
    assert.equal(done.output, 2);
    assert.deepEqual(calls, { A: 1 });
  } finally {
    await env.drop();
  }
});

test('retryInstance refuses when the sub-orchestration id it waits for belongs to another instance', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Idle', function* (ctx) {
      return yield ctx.waitForEvent('go');
    });
    rt.registerOrchestration('Taker', function* (ctx) {
      return yield ctx.scheduleSubOrchestrationWithId('Idle', 'taken', null);
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('taken', 'Idle');
    await client.startOrchestration('taker', 'Taker');
    const failed = await client.waitForOrchestration('taker', 10000);
    assert.equal(failed.errorCode, 'ERR_ALREADY_EXISTS');
    const before = await client.readStoredHistory('taker');
    await assert.rejects(client.retryInstance('taker'), (e) => e instanceof InvalidStateError && /'taken' it waits for is not its sub-orchestration/.test(e.message));
    assert.deepEqual(await client.readStoredHistory('taker'), before, 'nothing changed');
    assert.equal((await client.getStatus('taker')).status, 'Failed');
  } finally {
    await env.drop();
  }
});
