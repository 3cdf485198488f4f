'use strict';
// client.watch(): an async iterator of one instance's lifecycle events, from its start (or
// from now) through retries and continue-as-new, stopped by an AbortSignal.
const test = require('node:test');
const assert = require('node:assert/strict');
const { NotFoundError, InvalidArgumentError } = require('..');
const { startEnv, eventually, makeSetup, types, assertInOrder } = require('./helpers');

test('client.watch follows an instance from its start to its completion, retries included', async () => {
  const { setup } = makeSetup();
  const env = await startEnv(setup);
  try {
    const { client } = env;
    await client.startOrchestration('w1', 'Tour');
    const seen = [];
    for await (const event of client.watch('w1')) {
      seen.push(event);
      assert.equal(event.instanceId, 'w1');
      assert.equal(typeof event.timestamp, 'number');
      if (event.type === 'customStatusChanged') await client.raiseEvent('w1', 'go', 'now');
    }
    assertInOrder(types(seen), [
      'instanceStarted',
      'activityScheduled',
      'activityRetried',
      'activityCompleted',
      'timerCreated',
      'timerFired',
      'customStatusChanged',
      'eventWaitStarted',
      'eventReceived',
      'instanceCompleted',
    ]);
    const retried = seen.find((e) => e.type === 'activityRetried');
    assert.equal(retried.name, 'Flaky');
    assert.equal(retried.attempt, 2);
    assert.equal(retried.task, 1);
    assert.equal(seen.find((e) => e.type === 'activityCompleted').result, 2);
    assert.deepEqual(seen.at(-1).output, { flaky: 2, go: 'now' });
    assert.equal(seen.find((e) => e.type === 'customStatusChanged').value, 'waiting');
    const fromHistory = seen.filter((e) => e.eventId !== undefined).map((e) => e.eventId);
    assert.deepEqual(fromHistory, fromHistory.map((_, i) => i + 1), 'every history event once, in order');

    // A second watch of the finished instance replays its history and ends.
    const again = [];
    for await (const event of client.watch('w1', { types: ['instanceStarted', 'instanceCompleted'] })) again.push(event.type);
    assert.deepEqual(again, ['instanceStarted', 'instanceCompleted']);
  } finally {
    await env.drop();
  }
});

test('client.watch stops on abort, begins at now when asked, and follows continue-as-new', async () => {
  const { setup } = makeSetup();
  const env = await startEnv(setup);
  try {
    const { client } = env;
    await assert.rejects(async () => {
      for await (const e of client.watch('nobody')) assert.fail(`unexpected ${e.type}`);
    }, NotFoundError);
    await assert.rejects(async () => {
      for await (const e of client.watch('x', { since: 'later' })) assert.fail(`unexpected ${e.type}`);
    }, (e) => e instanceof InvalidArgumentError && e.message.includes('options.since'));

    await client.startOrchestration('idle', 'Idle');
    await eventually(async () => (await client.readStoredHistory('idle')).length >= 2);
    const controller = new AbortController();
    const seen = [];
    const watching = (async () => {
      for await (const event of client.watch('idle', { since: 'now', signal: controller.signal })) {
        seen.push(event.type);
        if (event.type === 'eventReceived') controller.abort();
      }
    })();
    // Let the watch begin before the event arrives.
    await new Promise((r) => setTimeout(r, 100));
    await client.raiseEvent('idle', 'go', 1);
    await watching;
    assert.deepEqual(seen, ['eventReceived'], 'nothing from before the watch began; nothing after the abort');

    const aborted = new AbortController();
    aborted.abort();
    for await (const e of client.watch('idle', { signal: aborted.signal })) assert.fail(`unexpected ${e.type}`);

    await client.startOrchestration('loop', 'Loop', 0);
    const loop = [];
    for await (const event of client.watch('loop', { types: ['instanceStarted', 'instanceContinuedAsNew', 'instanceCompleted'] })) {
      loop.push(`${event.type}@${event.executionId}`);
    }
    assert.deepEqual(loop, [
      'instanceStarted@1',
      'instanceContinuedAsNew@1',
      'instanceStarted@2',
      'instanceContinuedAsNew@2',
      'instanceStarted@3',
      'instanceCompleted@3',
    ]);
  } finally {
    await env.drop();
  }
});
