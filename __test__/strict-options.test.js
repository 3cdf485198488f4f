'use strict';
// Every options object is strict: an unknown (often misspelt) key is refused with
// ERR_INVALID_ARGUMENT and the list of known keys, instead of silently meaning the default.
// Nothing is stored or changed by a refused call.
const test = require('node:test');
const assert = require('node:assert/strict');
const { SqliteProvider, PostgresProvider, Runtime, OrchestrationContext, InvalidArgumentError } = require('..');
const { startEnv, dbPath, psql, eventually } = require('./helpers');

const invalid = (message) => (e) => e instanceof InvalidArgumentError && e.code === 'ERR_INVALID_ARGUMENT' && e.message === message;
const matches = (pattern) => (e) => e instanceof InvalidArgumentError && e.code === 'ERR_INVALID_ARGUMENT' && pattern.test(e.message);

test('Runtime options: unknown keys and non-objects are refused with the known keys', async () => {
  const provider = await SqliteProvider.inMemory();
  const known =
    'orchestrationConcurrency, workerConcurrency, generatorCacheSize, lockTimeoutMs, pollIntervalMs, maxDeliveries, notRegisteredGraceMs, unservedGraceMs, maxTurnMs, activityTimeoutMs, metricsIntervalMs, heartbeatIntervalMs, heartbeatTimeoutMs, workerLockTimeoutMs, dispatcherPollIntervalMs, maxSessionsPerRuntime, sessionIdleTimeoutMs, keepAlive, workerNodeId, workerTagFilter, logFormat, logLevel, serviceName, serviceVersion';
  assert.throws(() => new Runtime(provider, { workerConcurency: 2 }), invalid(`options.workerConcurency is not a Runtime option (known: ${known})`));
  assert.throws(() => new Runtime(provider, { keepalive: false }), invalid(`options.keepalive is not a Runtime option (known: ${known})`));
  assert.throws(() => new Runtime(provider, [1]), invalid('Runtime options must be an object, got an array'));
  assert.throws(() => new Runtime(provider, 5), invalid('Runtime options must be an object, got number 5'));
});

test("duroxide-node's option names: workerLockTimeoutMs and dispatcherPollIntervalMs are lockTimeoutMs and pollIntervalMs; both names of one option are refused", async () => {
  const provider = await SqliteProvider.inMemory();
  assert.throws(
    () => new Runtime(provider, { workerLockTimeoutMs: 5000, lockTimeoutMs: 5000 }),
    invalid('options.workerLockTimeoutMs and options.lockTimeoutMs are two names of one option; pass one of them'),
  );
  assert.throws(
    () => new Runtime(provider, { dispatcherPollIntervalMs: 50, pollIntervalMs: 50 }),
    invalid('options.dispatcherPollIntervalMs and options.pollIntervalMs are two names of one option; pass one of them'),
  );
  // The alias is checked with the option's limits, and named as given.
  assert.throws(() => new Runtime(provider, { workerLockTimeoutMs: 5 }), invalid('options.workerLockTimeoutMs must be an integer >= 100, got number 5'));
  assert.throws(() => new Runtime(provider, { dispatcherPollIntervalMs: 'fast' }), invalid('options.dispatcherPollIntervalMs must be an integer >= 10, got "fast"'));
});

test('start options in orchestration code: an unknown key is refused at the call', () => {
  const ctx = new OrchestrationContext({ instanceId: 'i', executionId: 1, name: 'O', version: '1.0.0', commands: [], customStatus: null });
  const unknown = invalid('options.verison is not an option (known: version)');
  assert.throws(() => ctx.scheduleSubOrchestration('C', null, { verison: '1.0.0' }), unknown);
  assert.throws(() => ctx.scheduleSubOrchestrationWithId('C', 'c-1', null, { verison: '1.0.0' }), unknown);
  assert.throws(() => ctx.startOrchestration('C', 'c-2', null, { verison: '1.0.0' }), unknown);
  assert.throws(() => ctx.scheduleSubOrchestration('C', null, null), invalid('options must be an object, got null'));
  assert.throws(() => ctx.scheduleSubOrchestration('C', null, '1.0.0'), invalid('options must be an object, got "1.0.0"'));
});

test('a misspelt sub-orchestration option fails the instance at once instead of running the latest version', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestrationVersioned('Child', '1.0.0', function* () {
      return 'old';
    });
    rt.registerOrchestrationVersioned('Child', '2.0.0', function* () {
      return 'new';
    });
    rt.registerOrchestration('Parent', function* (ctx) {
      return yield ctx.scheduleSubOrchestration('Child', null, { Version: '1.0.0' });
    });
    rt.registerOrchestration('Pinned', function* (ctx) {
      return yield ctx.scheduleSubOrchestration('Child', null, { version: '1.0.0' });
    });
  });
  try {
    await env.client.startOrchestration('parent', 'Parent');
    await env.client.startOrchestration('pinned', 'Pinned');
    const s = await env.client.waitForOrchestration('parent', 10000);
    assert.equal(s.status, 'Failed');
    assert.equal(s.errorCode, 'ERR_INVALID_ARGUMENT');
    assert.equal(s.error, 'options.Version is not an option (known: version)');
    assert.equal((await env.client.waitForOrchestration('pinned', 10000)).output, 'old');
  } finally {
    await env.drop();
  }
});

test('client options: unknown keys are refused with the known keys, and nothing is stored or removed', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Echo', function* (ctx, x) {
      return x;
    });
  });
  const c = env.client;
  try {
    await assert.rejects(c.startOrchestration('s1', 'Echo', 1, { verison: '1.0.0' }), invalid('options.verison is not an option (known: version)'));
    await assert.rejects(c.startOrchestration('s1', 'Echo', 1, null), invalid('options must be an object, got null'));
    assert.equal((await c.getStatus('s1')).status, 'NotFound');

    await c.startOrchestration('kept', 'Echo', 1);
    await c.waitForOrchestration('kept', 10000);
    await assert.rejects(c.deleteInstance('kept', { forse: true }), invalid('options.forse is not an option (known: force)'));
    await assert.rejects(c.deleteInstance('kept', []), invalid('options must be an object, got an array'));
    await assert.rejects(
      c.deleteInstances({ ids: ['kept'], limt: 1 }),
      invalid('options.limt is not an option (known: ids, completedBefore, status, limit)'),
    );
    await assert.rejects(c.deleteInstances(), invalid('options must be an object, got undefined'));
    await assert.rejects(c.pruneExecutions('kept', { keep: 1 }), invalid('options.keep is not an option (known: keepLast, completedBefore)'));
    assert.equal((await c.getStatus('kept')).status, 'Completed', 'nothing was removed');
    await assert.rejects(
      c.listInstances({ limt: 5 }),
      invalid('options.limt is not an option (known: status, storedStatus, name, createdAfter, createdBefore, parentId, limit, cursor)'),
    );
    await assert.rejects(
      (async () => {
        for await (const e of c.watch('kept', { sinse: 'now' })) assert.fail(`unexpected ${e.type}`);
      })(),
      matches(/^options\.sinse is not an option \(.*signal, since, types\)$/),
    );
    assert.throws(() => env.runtime.events({ instanceID: 'kept' }), matches(/^options\.instanceID is not an option \(.*signal, instanceId, types, bufferSize\)$/));
  } finally {
    await env.drop();
  }
});

test('provider options: a misspelt key is refused before anything is opened', async () => {
  // A misspelt `synchronous` would otherwise keep the weaker default durability.
  await assert.rejects(SqliteProvider.open(dbPath('strict'), { synchronus: 'full' }), matches(/^options\.synchronus is not a .*option \(known: synchronous\b/));
  await assert.rejects(SqliteProvider.open(dbPath('strict'), 'full'), matches(/options must be an object, got "full"/));
  await assert.rejects(
    PostgresProvider.connect('postgres://nobody@127.0.0.1:1/none', { poolsize: 3 }),
    matches(/^options\.poolsize is not a PostgresProvider option \(known: poolSize, pollIntervalMs, connectTimeoutMs\b/),
  );
});

test('metricsPrometheus and retry policy options: unknown keys are refused with the known keys', async () => {
  const env = await startEnv(() => {});
  try {
    assert.throws(() => env.runtime.metricsPrometheus({ lables: { app: 'x' } }), invalid('options.lables is not a prometheusText option (known: prefix, labels)'));
    assert.throws(() => env.runtime.metricsPrometheus({ labels: { 'app-name': 'x' } }), matches(/'app-name' is not a Prometheus label name/));
    assert.throws(() => env.runtime.metricsPrometheus({ prefix: 'my app' }), matches(/options\.prefix must be a Prometheus metric name prefix/));
    assert.match(env.runtime.metricsPrometheus({ prefix: 'app_', labels: { app: 'x' } }), /^app_driver_calls_total\{app="x"\} \d+$/m);
    const ctx = new OrchestrationContext({ instanceId: 'i', executionId: 1, name: 'O', version: '1.0.0', commands: [], customStatus: null });
    assert.throws(
      () => ctx.scheduleActivityWithRetry('A', 1, { maxAttempts: 2, maxRetries: 3 }),
      invalid('retryPolicy.maxRetries is not a retry policy option (known: maxAttempts, backoff, initialDelayMs, maxDelayMs, timeoutMs, totalTimeoutMs, jitter)'),
    );
  } finally {
    await env.drop();
  }
});

test('a runtime configured with duroxide-node option names runs, and the lease is the one workerLockTimeoutMs gives', async () => {
  let release;
  const gate = new Promise((r) => (release = r));
  const env = await startEnv((rt) => {
    rt.registerActivity('Hold', () => gate);
    rt.registerOrchestration('O', function* (ctx) {
      return yield ctx.scheduleActivity('Hold');
    });
  }, { workerLockTimeoutMs: 5000, dispatcherPollIntervalMs: 50 });
  try {
    await env.client.startOrchestration('o', 'O');
    if (env.path.startsWith('pg:')) {
      // The running activity's lease, as the store holds it: 5 s, not the default 30 s.
      const schema = env.path.slice(3);
      const left = await eventually(() => {
        const v = psql(`SELECT lock_until - ${schema}.reprise_now_ms() FROM ${schema}.worker_queue WHERE lock_owner IS NOT NULL`);
        return v === '' ? false : Number(v);
      }, 10000, 'the activity to be leased');
      assert.ok(left > 0 && left <= 5000, `lease left: ${left} ms`);
    }
    release('done');
    assert.equal((await env.client.waitForOrchestration('o', 10000)).output, 'done');
  } finally {
    release('done');
    await env.drop();
  }
});
