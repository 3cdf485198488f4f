'use strict';
// What RUST_LOG=info tells an operator: the runtime's start and stop with its store and
// options, work recovered from a dead process, lease takeovers, poison, and retries with
// their attempt and delay. And an error opening a SQLite file names the file.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { SqliteProvider } = require('..');
const { dbPath, eventually, uniqueSchema, psql } = require('./helpers');

const ROOT = JSON.stringify(path.join(__dirname, '..'));
const databaseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

// Opens the store named by argv[1] (a SQLite path, or pg:<schema>).
const OPEN = `
const { SqliteProvider, PostgresProvider, Client, Runtime } = require(${ROOT});
const where = process.argv[1];
const open = () => where.startsWith('pg:')
  ? PostgresProvider.connectWithSchema(${JSON.stringify(databaseUrl)}, where.slice(3), { poolSize: 2 })
  : SqliteProvider.open(where);
`;

function env(extra) {
  const e = { ...process.env, ...extra };
  if (!('RUST_LOG' in extra)) delete e.RUST_LOG;
  return e;
}

test('RUST_LOG=info: runtime start and stop with the store and options; a retry with its attempt and delay', () => {
  const file = dbPath('logs-retry');
  const script = `${OPEN}
  (async () => {
    const provider = await open();
    const runtime = new Runtime(provider, { pollIntervalMs: 50 });
    let calls = 0;
    runtime.registerActivity('Flaky', () => { calls += 1; if (calls < 3) throw new Error('flaky failure ' + calls); return calls; });
    runtime.registerOrchestration('Retries', function* (ctx) {
      return yield ctx.scheduleActivityWithRetry('Flaky', null, { maxAttempts: 3, backoff: 'fixed', initialDelayMs: 20 });
    });
    await runtime.start();
    const client = new Client(provider);
    await client.startOrchestration('r', 'Retries');
    console.log(JSON.stringify((await client.waitForOrchestration('r', 10000)).output));
    await runtime.shutdown();
  })();`;
  const r = spawnSync(process.execPath, ['-e', script, file], { env: env({ RUST_LOG: 'info' }), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '3');
  const lines = r.stderr.split('\n');
  const started = lines.find((l) => l.includes('runtime started'));
  assert.ok(started, r.stderr);
  assert.match(started, /INFO/);
  assert.ok(started.includes(`store=SQLite ${file}`), started);
  assert.match(started, /poll_interval_ms: 50/);
  assert.match(started, /orchestrations=1 activities=1/);
  const retries = lines.filter((l) => l.includes('activity attempt failed; retrying'));
  assert.equal(retries.length, 2, r.stderr);
  assert.match(retries[0], /INFO/);
  assert.match(retries[0], /instance_id=r activity=Flaky attempt=1 next_attempt=2 max_attempts=3 delay_ms=20 error=flaky failure 1/);
  assert.match(retries[1], /attempt=2 next_attempt=3 max_attempts=3 delay_ms=20 error=flaky failure 2/);
  const stopped = lines.find((l) => l.includes('runtime stopped'));
  assert.ok(stopped && stopped.includes(`store=SQLite ${file}`), r.stderr);
  assert.ok(lines.indexOf(started) < lines.indexOf(stopped));
});

/** Starts a worker whose activity hangs, waits until it runs, SIGKILLs it. */
async function killMidActivity(where, options = '{}') {
  const script = `${OPEN}
  (async () => {
    const provider = await open();
    const runtime = new Runtime(provider, ${options});
    runtime.registerActivity('Hang', () => { console.log('running'); return new Promise(() => {}); });
    runtime.registerOrchestration('Hangs', function* (ctx) { return yield ctx.scheduleActivity('Hang'); });
    await runtime.start();
    await new Client(provider).startOrchestration('stuck', 'Hangs');
  })();`;
  const child = spawn(process.execPath, ['-e', script, where], { env: env({}), stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await eventually(() => out.includes('running'), 15000, 'the activity to run');
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
}

/** Runs a second worker with RUST_LOG=info until `stuck` ends; returns its stderr. */
function recover(where, options) {
  const script = `${OPEN}
  (async () => {
    const provider = await open();
    const runtime = new Runtime(provider, ${options});
    runtime.registerActivity('Hang', () => 'finished');
    runtime.registerOrchestration('Hangs', function* (ctx) { return yield ctx.scheduleActivity('Hang'); });
    await runtime.start();
    const r = await new Client(provider).waitForOrchestration('stuck', 20000);
    console.log(JSON.stringify({ status: r.status, errorCode: r.errorCode ?? null }));
    await runtime.shutdown();
  })();`;
  return spawnSync(process.execPath, ['-e', script, where], { env: env({ RUST_LOG: 'info' }), encoding: 'utf8' });
}

test('RUST_LOG=info: work a dead process left is recovered, and a poisoned activity is logged', async () => {
  const file = dbPath('logs-recover');
  await killMidActivity(file);
  const r = recover(file, '{ maxDeliveries: 1 }');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { status: 'Failed', errorCode: 'ERR_POISON' });
  const recovered = r.stderr.split('\n').find((l) => l.includes('recovering work a previous process left leased'));
  assert.ok(recovered, r.stderr);
  assert.match(recovered, /INFO/);
  assert.match(recovered, /instances=0 activities=1/);
  assert.ok(recovered.includes(file));
  const poisoned = r.stderr.split('\n').find((l) => l.includes('activity poisoned'));
  assert.ok(poisoned, r.stderr);
  assert.match(poisoned, /INFO.*instance_id=stuck activity=Hang deliveries=2/);
});

test('RUST_LOG=info on PostgreSQL: a lease taken over from a dead process is logged with its previous holder', async () => {
  const schema = uniqueSchema('logs_takeover');
  try {
    await killMidActivity(`pg:${schema}`, '{ lockTimeoutMs: 1000 }');
    const r = recover(`pg:${schema}`, '{ lockTimeoutMs: 1000, pollIntervalMs: 100 }');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { status: 'Completed', errorCode: null });
    const takeover = r.stderr.split('\n').find((l) => l.includes('lease takeover'));
    assert.ok(takeover, r.stderr);
    assert.match(takeover, /INFO.*claimed activity 'Hang' of instance 'stuck' whose lease held by \d+:[0-9a-f-]+ ran out/);
    assert.ok(r.stderr.includes('runtime started') && r.stderr.includes(`schema ${schema}`), r.stderr);
  } finally {
    psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  }
});

test('an error opening a SQLite file names the file', async () => {
  const file = dbPath('not-a-database');
  fs.writeFileSync(file, 'this is not a SQLite database, only text that is long enough to be read as a header '.repeat(20));
  await assert.rejects(SqliteProvider.open(file), (e) => e.code === 'ERR_STORE' && e.message.includes(file));
  const folder = path.dirname(dbPath('folder'));
  await assert.rejects(SqliteProvider.open(folder), (e) => e.message.includes(folder));
});
