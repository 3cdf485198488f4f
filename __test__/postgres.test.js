'use strict';
// The quick start on PostgreSQL through the package entry: an orchestration with an
// activity, a durable timer and an external event. Each test uses a schema of its own on
// DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), dropped at the end when
// psql is available. An unreachable server fails these tests.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { PostgresProvider, Client, Runtime, InvalidArgumentError, StoreError } = require('..');
const { runtimeOptions, eventually } = require('./helpers');

const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

let counter = 0;
function freshSchema(t, label) {
  const schema = `js_${label}_${process.pid}_${counter++}_${Math.random().toString(36).slice(2, 8)}`;
  t.after(() => {
    spawnSync('psql', [url, '-q', '-c', `DROP SCHEMA IF EXISTS "${schema}" CASCADE`], { stdio: 'ignore', timeout: 10000 });
  });
  return schema;
}

const invalid = (pattern) => (e) => e instanceof InvalidArgumentError && e.code === 'ERR_INVALID_ARGUMENT' && pattern.test(e.message);

function greetWorkflow(runtime) {
  runtime.registerActivity('Greet', async (ctx, name) => {
    ctx.traceInfo(`greeting ${name}`);
    return `Hello, ${name}!`;
  });
  runtime.registerOrchestration('GreetWorkflow', function* (ctx, input) {
    const greeting = yield ctx.scheduleActivity('Greet', input.name);
    yield ctx.scheduleTimer(100);
    const signoff = yield ctx.waitForEvent('signoff');
    return `${greeting} ${signoff}`;
  });
}

const waiting = (client, id) =>
  eventually(async () => (await client.readStoredHistory(id)).some((e) => e.kind === 'EventWaitStarted'), 10000, 'the wait for the event');

test('the quick start runs on PostgreSQL: an activity, a timer and an event', async (t) => {
  const schema = freshSchema(t, 'quickstart');
  const provider = await PostgresProvider.connectWithSchema(url, schema);
  assert.equal(provider.schema, schema);
  const client = new Client(provider);
  const runtime = new Runtime(provider, runtimeOptions());
  greetWorkflow(runtime);
  await runtime.start();
  try {
    assert.equal(await client.startOrchestration('greet-1', 'GreetWorkflow', { name: 'World' }), true);
    await waiting(client, 'greet-1');
    await client.raiseEvent('greet-1', 'signoff', 'Bye!');
    const result = await client.waitForOrchestration('greet-1', 10000);
    assert.equal(result.status, 'Completed');
    assert.equal(result.output, 'Hello, World! Bye!');
    assert.equal(result.error, null);

    const history = await client.readStoredHistory('greet-1');
    assert.deepEqual(history.map((e) => e.kind), [
      'ExecutionStarted', 'ActivityScheduled', 'ActivityCompleted', 'TimerCreated', 'TimerFired',
      'EventWaitStarted', 'EventRaised', 'ExecutionCompleted',
    ]);
    const created = history.find((e) => e.kind === 'TimerCreated');
    const fired = history.find((e) => e.kind === 'TimerFired');
    assert.ok(fired.timestamp >= created.data.fireAt, 'the timer fired at its time (the database clock)');
    // Starting an existing id changes nothing.
    assert.equal(await client.startOrchestration('greet-1', 'GreetWorkflow', { name: 'Again' }), false);
    assert.equal((await client.getStatus('greet-1')).output, 'Hello, World! Bye!');
  } finally {
    await runtime.shutdown(5000);
  }
});

test('a client on its own connection pool is woken by the runtime over LISTEN/NOTIFY', async (t) => {
  const schema = freshSchema(t, 'notify');
  // Polling is pushed out of the way: only notifications can make this finish in time.
  const slow = { pollIntervalMs: 600000 };
  const runtimeSide = await PostgresProvider.connectWithSchema(url, schema, slow);
  const clientSide = await PostgresProvider.connectWithSchema(url, schema, { poolSize: 2, ...slow });
  const runtime = new Runtime(runtimeSide, runtimeOptions({ pollIntervalMs: 600000 }));
  greetWorkflow(runtime);
  await runtime.start();
  try {
    const client = new Client(clientSide);
    await client.startOrchestration('remote-1', 'GreetWorkflow', { name: 'there' });
    await waiting(client, 'remote-1');
    await client.raiseEvent('remote-1', 'signoff', 'Cheers.');
    const started = Date.now();
    const result = await client.waitForOrchestration('remote-1', 10000);
    assert.equal(result.output, 'Hello, there! Cheers.');
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  } finally {
    await runtime.shutdown(5000);
  }
});

test('schemas are separate stores', async (t) => {
  const [a, b] = await Promise.all([
    PostgresProvider.connectWithSchema(url, freshSchema(t, 'tenant_a')),
    PostgresProvider.connectWithSchema(url, freshSchema(t, 'tenant_b')),
  ]);
  const runtime = new Runtime(a, runtimeOptions());
  runtime.registerOrchestration('Echo', function* (ctx, x) { return x; });
  await runtime.start();
  try {
    const clientA = new Client(a);
    const clientB = new Client(b);
    assert.equal(await clientA.startOrchestration('same-id', 'Echo', 'from a'), true);
    assert.equal((await clientA.waitForOrchestration('same-id', 10000)).output, 'from a');
    assert.equal((await clientB.getStatus('same-id')).status, 'NotFound');
    assert.equal(await clientB.startOrchestration('same-id', 'Echo', 'from b'), true);
    assert.equal((await clientB.getStatus('same-id')).status, 'Running', 'no runtime serves schema b');
  } finally {
    await runtime.shutdown(5000);
  }
});

test('bad URLs, schemas and options are refused with a clear error naming the field', async () => {
  await assert.rejects(PostgresProvider.connect(''), invalid(/url must be a non-empty string/));
  await assert.rejects(PostgresProvider.connect(42), invalid(/url must be a non-empty string.*got number 42/));
  await assert.rejects(PostgresProvider.connect('sqlite:app.db'), invalid(/url must start with postgres:\/\/ or postgresql:\/\//));
  await assert.rejects(
    PostgresProvider.connect('mysql://root:hunter2@db/app'),
    (e) => invalid(/url must start with postgres:\/\//)(e) && !e.message.includes('hunter2'),
  );
  await assert.rejects(PostgresProvider.connect('postgres://u@h:notaport/db'), invalid(/invalid PostgreSQL URL/));
  await assert.rejects(PostgresProvider.connectWithSchema(url, 'bad-name'), invalid(/schema must be 1 to 63 letters, digits or underscores, got "bad-name"/));
  await assert.rejects(PostgresProvider.connectWithSchema(url, ''), invalid(/schema must be/));
  await assert.rejects(PostgresProvider.connectWithSchema(url, 's'.repeat(64)), invalid(/schema must be/));
  await assert.rejects(PostgresProvider.connectWithSchema(url), invalid(/schema must be .* got undefined/));
  await assert.rejects(PostgresProvider.connectWithSchema(url, 'pg_mine'), invalid(/reserved by PostgreSQL/));
  await assert.rejects(PostgresProvider.connect(url, { poolSize: 0 }), invalid(/options\.poolSize must be an integer from 1 to 1000, got number 0/));
  await assert.rejects(PostgresProvider.connect(url, { poolSize: 2.5 }), invalid(/options\.poolSize/));
  await assert.rejects(PostgresProvider.connect(url, { pollIntervalMs: '5' }), invalid(/options\.pollIntervalMs must be an integer .* got "5"/));
  await assert.rejects(PostgresProvider.connect(url, { pool: 3 }), invalid(/options\.pool is not a PostgresProvider option \(known: poolSize, pollIntervalMs, connectTimeoutMs, unknownEventTtlMs, createSchema\)/));
  await assert.rejects(PostgresProvider.connect(url, 'fast'), invalid(/options must be an object/));
});

test('an unreachable server fails fast, saying where it looked', async () => {
  const started = Date.now();
  await assert.rejects(
    PostgresProvider.connectWithSchema('postgres://postgres:hunter2@127.0.0.1:1/test', 'unused'),
    (e) => e instanceof StoreError && e.code === 'ERR_UNAVAILABLE' && /cannot connect to PostgreSQL at 127\.0\.0\.1:1\/test/.test(e.message) && !e.message.includes('hunter2'),
  );
  assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
});
