'use strict';
// Whatever a call accepts, the engine can read: timer delays, retry delays and timeouts stop
// at 100 years (3155760000000 ms), counts at what their Rust and SQL types hold, versions are
// semantic versions, and time bounds at what a Date holds. A value past a limit is refused at
// the call (or fails the instance at once with ERR_INVALID_ARGUMENT naming it): no turn is
// abandoned as unreadable and then poisoned for it.
const test = require('node:test');
const assert = require('node:assert/strict');
const { SqliteProvider, Runtime, OrchestrationContext, InvalidArgumentError } = require('..');
const { startEnv, runtimeOptions } = require('./helpers');

const MAX = 3155760000000;
const invalid = (message) => (e) => e instanceof InvalidArgumentError && e.code === 'ERR_INVALID_ARGUMENT' && e.message === message;
const context = () => new OrchestrationContext({ instanceId: 'i', executionId: 1, name: 'O', version: '1.0.0', commands: [], customStatus: null });

test('timers and retry policies: past 100 years, or past what the engine counts in, is refused at the call', () => {
  const ctx = context();
  for (const delay of [MAX + 1, 1e20, Number.MAX_VALUE]) {
    assert.throws(() => ctx.scheduleTimer(delay), invalid(`timer delay must be at most ${MAX} ms (100 years), got number ${delay}`));
  }
  assert.equal(ctx.scheduleTimer(MAX).args.delayMs, MAX);
  assert.equal(ctx.scheduleTimer(0.5).args.delayMs, 0.5);

  const retry = (policy) => ctx.scheduleActivityWithRetry('A', null, policy).args.retry;
  for (const key of ['initialDelayMs', 'maxDelayMs', 'timeoutMs']) {
    for (const value of [MAX + 1, 2 ** 64]) {
      assert.throws(() => retry({ maxAttempts: 2, [key]: value }), invalid(`retryPolicy.${key} must be at most ${MAX} ms (100 years), got number ${value}`));
    }
    assert.equal(retry({ maxAttempts: 2, [key]: MAX })[key], MAX);
  }
  assert.throws(() => retry({ maxAttempts: 2 ** 31 }), invalid('retryPolicy.maxAttempts must be at most 2147483647, got number 2147483648'));
  assert.throws(() => retry({ maxAttempts: 2 ** 53 + 2 }), invalid(`retryPolicy.maxAttempts must be at most 2147483647, got number ${2 ** 53 + 2}`));
  assert.equal(retry({ maxAttempts: 2 ** 31 - 1 }).maxAttempts, 2 ** 31 - 1);

  // Delays that would grow past the maximum stop at it; policies that cannot are unchanged.
  assert.equal(retry({ maxAttempts: 60, initialDelayMs: 3600000 }).maxDelayMs, MAX);
  assert.equal(retry({ maxAttempts: 5, backoff: 'linear', initialDelayMs: MAX }).maxDelayMs, MAX);
  assert.equal(retry({ maxAttempts: 2, backoff: 'exponential', initialDelayMs: MAX }).maxDelayMs, undefined);
  assert.equal(retry({ maxAttempts: 1000, backoff: 'fixed', initialDelayMs: MAX }).maxDelayMs, undefined);
  assert.equal(retry({ maxAttempts: 60, initialDelayMs: 3600000, maxDelayMs: 5000 }).maxDelayMs, 5000);
  assert.deepEqual(retry({ maxAttempts: 10 }), { maxAttempts: 10, backoff: 'exponential', initialDelayMs: 1000, jitter: false });
});

test('versions that are not semantic versions are refused at the call', async () => {
  const ctx = context();
  const bad = (got) => `options.version must be a semantic version like '1.2.0', got ${got}`;
  assert.throws(() => ctx.scheduleSubOrchestration('C', null, { version: 'v1' }), invalid(bad('"v1"')));
  assert.throws(() => ctx.scheduleSubOrchestrationWithId('C', 'c-1', null, { version: '1.0' }), invalid(bad('"1.0"')));
  assert.throws(() => ctx.startOrchestration('C', 'c-2', null, { version: 2 }), invalid(bad('number 2')));
  assert.throws(() => ctx.continueAsNewVersioned(null, 'latest'), invalid(`version must be a semantic version like '1.2.0', got "latest"`));
  assert.equal(ctx.scheduleSubOrchestration('C', null, { version: '1.2.0-beta.1' }).args.version, '1.2.0-beta.1');
  assert.equal(ctx.scheduleSubOrchestration('C', null, {}).args.version, null);
  assert.equal(ctx.scheduleSubOrchestration('C', null, { version: null }).args.version, null);
});

test('in a running orchestration: a bad timer, retry policy or version fails it at once, and no turn is abandoned', async () => {
  // A long grace period: a version nobody registers would otherwise wait that long.
  const env = await startEnv(
    (rt) => {
      rt.registerActivity('A', () => 'a');
      rt.registerOrchestration('Child', function* () {
        return 'child';
      });
      rt.registerOrchestration('FarTimer', function* (ctx) {
        yield ctx.scheduleTimer(1e300);
      });
      rt.registerOrchestration('HugeDelay', function* (ctx) {
        yield ctx.scheduleActivityWithRetry('A', null, { maxAttempts: 3, initialDelayMs: 1e20 });
      });
      rt.registerOrchestration('TooManyAttempts', function* (ctx) {
        yield ctx.scheduleActivityWithRetry('A', null, { maxAttempts: 2 ** 32 });
      });
      rt.registerOrchestration('BadVersion', function* (ctx) {
        yield ctx.scheduleSubOrchestration('Child', null, { version: 'v2' });
      });
      rt.registerOrchestration('LongestTimer', function* (ctx) {
        yield ctx.scheduleTimer(MAX);
      });
    },
    { notRegisteredGraceMs: 120000 },
  );
  try {
    const expected = {
      FarTimer: `timer delay must be at most ${MAX} ms (100 years), got number 1e+300`,
      HugeDelay: `retryPolicy.initialDelayMs must be at most ${MAX} ms (100 years), got number 100000000000000000000`,
      TooManyAttempts: 'retryPolicy.maxAttempts must be at most 2147483647, got number 4294967296',
      BadVersion: `options.version must be a semantic version like '1.2.0', got "v2"`,
    };
    for (const name of [...Object.keys(expected), 'LongestTimer']) await env.client.startOrchestration(name, name);
    for (const [name, error] of Object.entries(expected)) {
      const s = await env.client.waitForOrchestration(name, 10000);
      assert.equal(s.status, 'Failed', name);
      assert.equal(s.errorCode, 'ERR_INVALID_ARGUMENT', name);
      assert.equal(s.error, error, name);
    }
    // The longest timer is recorded, due 100 years after the turn.
    const created = await (async () => {
      for (;;) {
        const event = (await env.client.readStoredHistory('LongestTimer')).find((e) => e.kind === 'TimerCreated');
        if (event) return event;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    assert.equal(created.data.fireAt - created.timestamp, MAX);
    assert.equal((await env.client.getStatus('LongestTimer')).status, 'Running');
    assert.equal(env.runtime.metricsSnapshot().turnsAbandoned, 0);
  } finally {
    await env.drop();
  }
});

test('runtime options stop at what the engine holds, and name the field', async () => {
  const provider = await SqliteProvider.inMemory();
  for (const key of ['lockTimeoutMs', 'pollIntervalMs', 'notRegisteredGraceMs', 'maxTurnMs', 'activityTimeoutMs', 'metricsIntervalMs']) {
    assert.throws(() => new Runtime(provider, { [key]: MAX + 1 }), invalid(`options.${key} must be at most ${MAX} ms (100 years), got number ${MAX + 1}`));
    assert.doesNotThrow(() => new Runtime(provider, { [key]: MAX }));
  }
  assert.throws(() => new Runtime(provider, { maxDeliveries: 2 ** 32 }), invalid('options.maxDeliveries must be at most 2147483647, got number 4294967296'));
  assert.doesNotThrow(() => new Runtime(provider, runtimeOptions({ maxDeliveries: 2 ** 31 - 1 })));
});

test('client: time bounds past what a Date holds, an execution id past 32 bits and a bad version are refused', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Echo', function* (ctx, x) {
      return x;
    });
  });
  const c = env.client;
  try {
    const date = (field, got) => `options.${field} must be within ±8640000000000000 epoch milliseconds (what a Date can hold), got ${got}`;
    await assert.rejects(c.listInstances({ createdAfter: 1e300 }), invalid(date('createdAfter', 'number 1e+300')));
    await assert.rejects(c.listInstances({ createdBefore: -9e15 }), invalid(date('createdBefore', 'number -9000000000000000')));
    await assert.rejects(c.deleteInstances({ completedBefore: 1e17 }), invalid(date('completedBefore', 'number 100000000000000000')));
    await assert.rejects(c.pruneExecutions('x', { completedBefore: 1e17 }), invalid(date('completedBefore', 'number 100000000000000000')));
    assert.deepEqual((await c.listInstances({ createdAfter: -8.64e15, createdBefore: 8.64e15 })).instances, []);

    await c.startOrchestration('e', 'Echo', 1);
    await c.waitForOrchestration('e', 10000);
    // 2^32 + 1 would wrap to execution 1 in the native layer's 32-bit argument.
    await assert.rejects(c.readStoredHistory('e', 2 ** 32 + 1), invalid('executionId must be an integer from 1 to 4294967295, got number 4294967297'));
    assert.deepEqual(await c.readStoredHistory('e', 2 ** 32 - 1), []);

    await assert.rejects(c.startOrchestration('v', 'Echo', 1, { version: 'v1' }), invalid(`options.version must be a semantic version like '1.2.0', got "v1"`));
    assert.equal((await c.getStatus('v')).status, 'NotFound');
    await c.startOrchestration('v', 'Echo', 2, { version: '1.0.0' });
    assert.equal((await c.waitForOrchestration('v', 10000)).output, 2);
  } finally {
    await env.drop();
  }
});
