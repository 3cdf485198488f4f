'use strict';
// Bad input gets a clear error naming what is wrong, and nothing already stored is lost.
const test = require('node:test');
const assert = require('node:assert/strict');
const { SqliteProvider, Client, Runtime, OrchestrationContext, InvalidArgumentError, InvalidStateError } = require('..');
const { startEnv, dbPath, runtimeOptions } = require('./helpers');

const invalid = (pattern) => (e) => e instanceof InvalidArgumentError && e.code === 'ERR_INVALID_ARGUMENT' && pattern.test(e.message);

test('runtime options are validated by name', async () => {
  const provider = await SqliteProvider.inMemory();
  assert.throws(() => new Runtime(provider, { orchestrationConcurrency: -1 }), invalid(/options\.orchestrationConcurrency must be an integer >= 0, got number -1/));
  assert.throws(() => new Runtime(provider, { workerConcurrency: 0 }), invalid(/options\.workerConcurrency must be an integer >= 1, got number 0/));
  assert.throws(() => new Runtime(provider, { workerConcurrency: 1.5 }), invalid(/options\.workerConcurrency/));
  assert.throws(() => new Runtime(provider, { generatorCacheSize: -1 }), invalid(/options\.generatorCacheSize must be an integer >= 0/));
  assert.throws(() => new Runtime(provider, { generatorCacheSize: '10' }), invalid(/generatorCacheSize must be an integer >= 0, got "10"/));
  assert.throws(() => new Runtime(provider, { orchestrationConcurency: 2 }), invalid(/options\.orchestrationConcurency is not a Runtime option/));
  assert.throws(() => new Runtime({}, {}), invalid(/provider must come from/));
  assert.doesNotThrow(() => new Runtime(provider, { orchestrationConcurrency: 4, workerConcurrency: 8, generatorCacheSize: 0 }));
});

test('retry policies: maxAttempts is required, numbers are integers in range, backoff and jitter are checked', () => {
  const ctx = new OrchestrationContext({ instanceId: 'i', executionId: 1, name: 'O', version: '1.0.0', commands: [], customStatus: null });
  /** Asserts that `policy` throws InvalidArgumentError with exactly `message`. */
  const refused = (policy, message) =>
    assert.throws(
      () => ctx.scheduleActivityWithRetry('A', null, policy),
      (e) => e instanceof InvalidArgumentError && e.code === 'ERR_INVALID_ARGUMENT' && e.message === message,
      JSON.stringify(policy, (k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)),
    );
  refused({}, 'retryPolicy.maxAttempts must be an integer >= 1, got undefined');
  refused({ backoff: 'fixed', initialDelayMs: 10 }, 'retryPolicy.maxAttempts must be an integer >= 1, got undefined');
  for (const [key, min] of [['maxAttempts', 1], ['initialDelayMs', 0], ['maxDelayMs', 0], ['timeoutMs', 1]]) {
    const base = key === 'maxAttempts' ? {} : { maxAttempts: 2 };
    refused({ ...base, [key]: 1.5 }, `retryPolicy.${key} must be an integer >= ${min}, got number 1.5`);
    refused({ ...base, [key]: '10' }, `retryPolicy.${key} must be an integer >= ${min}, got "10"`);
    refused({ ...base, [key]: NaN }, `retryPolicy.${key} must be an integer >= ${min}, got number NaN`);
    refused({ ...base, [key]: Infinity }, `retryPolicy.${key} must be an integer >= ${min}, got number Infinity`);
    refused({ ...base, [key]: min - 1 }, `retryPolicy.${key} must be an integer >= ${min}, got number ${min - 1}`);
  }
  refused({ maxAttempts: 2, timeoutMs: 0 }, 'retryPolicy.timeoutMs must be an integer >= 1, got number 0');
  refused({ maxAttempts: 2, backoff: 'quadratic' }, "retryPolicy.backoff must be 'fixed', 'exponential' or 'linear', got \"quadratic\"");
  refused({ maxAttempts: 2, backoff: null }, "retryPolicy.backoff must be 'fixed', 'exponential' or 'linear', got null");
  refused({ maxAttempts: 2, jitter: 'yes' }, 'retryPolicy.jitter must be a boolean, got "yes"');
  refused({ maxAttempts: 2, jitter: 1 }, 'retryPolicy.jitter must be a boolean, got number 1');
  refused({ maxAttempts: 2, retries: 1 }, 'retryPolicy.retries is not a retry policy option (known: maxAttempts, backoff, initialDelayMs, maxDelayMs, timeoutMs, totalTimeoutMs, jitter)');
  refused({ maxAttempts: 2, totalTimeoutMs: 0 }, 'retryPolicy.totalTimeoutMs must be an integer >= 1, got number 0');
  refused(null, 'retryPolicy must be an object, got null');

  // The smallest valid values, and what the defaults fill in.
  const retry = (policy) => ctx.scheduleActivityWithRetry('A', null, policy).args.retry;
  assert.deepEqual(retry({ maxAttempts: 1 }), { maxAttempts: 1, backoff: 'exponential', initialDelayMs: 1000, jitter: false });
  assert.deepEqual(retry({ maxAttempts: 1, backoff: 'linear', initialDelayMs: 0, maxDelayMs: 0, timeoutMs: 1, jitter: true }), {
    maxAttempts: 1,
    backoff: 'linear',
    initialDelayMs: 0,
    maxDelayMs: 0,
    timeoutMs: 1,
    jitter: true,
  });
  assert.deepEqual(retry({ maxAttempts: 3, backoff: 'fixed', jitter: false }), { maxAttempts: 3, backoff: 'fixed', initialDelayMs: 1000, jitter: false });
});

test('registration refuses async functions, non-generators, bad versions, and anything after start', async () => {
  const provider = await SqliteProvider.inMemory();
  const rt = new Runtime(provider, runtimeOptions());
  assert.throws(() => rt.registerOrchestration('A', async function (ctx) {}), invalid(/orchestration 'A' is an async function; orchestrations must be generator functions \(function\*\)/));
  assert.throws(() => rt.registerOrchestration('B', async function* (ctx) {}), invalid(/'B' is an async function/));
  assert.throws(() => rt.registerOrchestration('C', function (ctx) {}), invalid(/must be a generator function/));
  assert.throws(() => rt.registerOrchestration('', function* () {}), invalid(/orchestration name must be a non-empty string/));
  assert.throws(() => rt.registerOrchestrationVersioned('D', 'v1', function* () {}), invalid(/semantic version/));
  assert.throws(() => rt.registerActivity('E', 'nope'), invalid(/activity 'E' must be a function/));
  rt.registerOrchestration('Ok', function* () {});
  await rt.start();
  assert.throws(() => rt.registerActivity('Late', async () => 1), (e) => e instanceof InvalidStateError && /cannot register activity 'Late' after the runtime has started/.test(e.message));
  assert.throws(() => rt.registerOrchestration('Late', function* () {}), InvalidStateError);
  await assert.rejects(rt.start(), InvalidStateError);
  await rt.shutdown(1000);
});

test('client input that JSON cannot carry, bad ids and oversized payloads are refused and store nothing', async () => {
  const env = await startEnv((rt) => rt.registerOrchestration('Echo', function* (ctx, x) { return x; }));
  try {
    const circular = {};
    circular.self = circular;
    await assert.rejects(env.client.startOrchestration('x1', 'Echo', { n: 10n }), invalid(/input cannot be stored as JSON: it contains a BigInt/));
    await assert.rejects(env.client.startOrchestration('x2', 'Echo', circular), invalid(/input cannot be stored as JSON: it contains a circular reference/));
    await assert.rejects(env.client.startOrchestration('', 'Echo', 1), invalid(/instanceId must be a non-empty string/));
    await assert.rejects(env.client.startOrchestration('a'.repeat(257), 'Echo', 1), invalid(/instanceId is 257 characters long; the limit is 256/));
    await assert.rejects(env.client.startOrchestration('x3', 'Echo', 'y'.repeat(17 * 1024 * 1024)), invalid(/input is \d+ bytes as JSON; the limit is 16777216 bytes/));
    await assert.rejects(env.client.raiseEvent('x4', 'ev', 5n), invalid(/event data cannot be stored as JSON/));
    await assert.rejects(env.client.waitForOrchestration('x1', -1), invalid(/timeoutMs/));
    for (const id of ['x1', 'x2', 'x3']) assert.equal((await env.client.getStatus(id)).status, 'NotFound');
    // What was stored before is untouched.
    await env.client.startOrchestration('kept', 'Echo', { a: 1 });
    assert.deepEqual((await env.client.waitForOrchestration('kept', 10000)).output, { a: 1 });
  } finally {
    await env.drop();
  }
});

test('malformed SQLite URLs are refused with a clear error', async () => {
  await assert.rejects(SqliteProvider.open(''), invalid(/url must be a non-empty string/));
  await assert.rejects(SqliteProvider.open('postgres://localhost/db'), invalid(/is not a SQLite URL/));
  await assert.rejects(SqliteProvider.open('sqlite::memory:'), invalid(/inMemory/));
  await assert.rejects(SqliteProvider.open(dbPath(), { synchronous: 'sometimes' }), invalid(/options\.synchronous must be 'normal' or 'full'/));
  const p = await SqliteProvider.open(`sqlite:${dbPath('nested/deeper/x')}`, { synchronous: 'full' });
  assert.ok(p);
});

test('inside an orchestration: a negative timer, a non-task yield and unserializable input fail clearly', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Id', async (ctx, x) => x);
    rt.registerOrchestration('NegativeTimer', function* (ctx) {
      yield ctx.scheduleTimer(-5);
    });
    rt.registerOrchestration('YieldsPromise', function* (ctx) {
      yield Promise.resolve(1);
    });
    rt.registerOrchestration('YieldsValue', function* (ctx) {
      yield 42;
    });
    rt.registerOrchestration('BadInput', function* (ctx) {
      try {
        yield ctx.scheduleActivity('Id', { big: 1n });
      } catch (e) {
        return `caught: ${e.code}: ${e.message}`;
      }
    });
    rt.registerOrchestration('BadOutput', function* (ctx) {
      return { big: 2n };
    });
  });
  try {
    const cases = ['NegativeTimer', 'YieldsPromise', 'YieldsValue', 'BadInput', 'BadOutput'];
    for (const name of cases) await env.client.startOrchestration(name, name);
    const r = {};
    for (const name of cases) r[name] = await env.client.waitForOrchestration(name, 10000);
    assert.equal(r.NegativeTimer.status, 'Failed');
    assert.equal(r.NegativeTimer.errorCode, 'ERR_INVALID_ARGUMENT');
    assert.equal(r.NegativeTimer.error, 'timer delay must be a finite number of milliseconds >= 0, got number -5');
    const notATask = 'which is not a task: yield only what ctx methods return (use activities for async work; a Promise cannot be replayed)';
    assert.equal(r.YieldsPromise.errorCode, 'ERR_INVALID_ARGUMENT');
    assert.equal(r.YieldsPromise.error, `the orchestration yielded a Promise, ${notATask}`);
    assert.equal(r.YieldsValue.errorCode, 'ERR_INVALID_ARGUMENT');
    assert.equal(r.YieldsValue.error, `the orchestration yielded number 42, ${notATask}`);
    assert.equal(r.BadInput.output, "caught: ERR_INVALID_ARGUMENT: input of activity 'Id' cannot be stored as JSON: it contains a BigInt (convert it to a string or number first)");
    assert.equal(r.BadOutput.status, 'Failed');
    assert.equal(r.BadOutput.errorCode, 'ERR_INVALID_ARGUMENT');
    assert.equal(r.BadOutput.error, 'the orchestration output cannot be stored as JSON: it contains a BigInt (convert it to a string or number first)');
  } finally {
    await env.drop();
  }
});

test('an unknown orchestration name waits for a grace period, then fails with ERR_NOT_REGISTERED', async () => {
  const env = await startEnv((rt) => rt.registerOrchestration('Known', function* () { return 1; }), { notRegisteredGraceMs: 300 });
  try {
    await env.client.startOrchestration('u-1', 'Unknown', null);
    const r = await env.client.waitForOrchestration('u-1', 10000);
    assert.equal(r.status, 'Failed');
    assert.equal(r.errorCode, 'ERR_NOT_REGISTERED');
    assert.match(r.error, /orchestration 'Unknown' is not registered/);
  } finally {
    await env.drop();
  }
});

test('an unknown activity name fails at its yield with ERR_NOT_REGISTERED after the grace period', async () => {
  const env = await startEnv(
    (rt) =>
      rt.registerOrchestration('CallsMissing', function* (ctx) {
        try {
          yield ctx.scheduleActivity('Missing', 1);
        } catch (e) {
          return e.code;
        }
      }),
    { notRegisteredGraceMs: 300 },
  );
  try {
    await env.client.startOrchestration('m-1', 'CallsMissing');
    assert.equal((await env.client.waitForOrchestration('m-1', 10000)).output, 'ERR_NOT_REGISTERED');
  } finally {
    await env.drop();
  }
});

test('one runtime per SQLite file: a second one is refused, a client is fine', async () => {
  const file = dbPath('locked');
  const env = await startEnv((rt) => rt.registerOrchestration('X', function* () { return 1; }), {}, file);
  try {
    const other = await SqliteProvider.open(file);
    const rt2 = new Runtime(other, runtimeOptions());
    rt2.registerOrchestration('X', function* () { return 1; });
    await assert.rejects(rt2.start(), (e) => e.code === 'ERR_LOCKED' && /another runtime is already running/.test(e.message));
    await new Client(other).startOrchestration('from-client', 'X');
    assert.equal((await env.client.waitForOrchestration('from-client', 10000)).output, 1);
  } finally {
    await env.drop();
  }
});
