'use strict';
// Many processes on one PostgreSQL schema: three workers share 300 orchestrations, one is
// SIGKILLed mid-run, the others finish its work; then every backend connection is killed
// and the runtime reconnects by itself.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { PostgresProvider, Client, Runtime } = require('..');
const { tempDir, sleep, eventually } = require('./helpers');

const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const WORKER = path.join(__dirname, 'fixtures', 'pg-worker.js');
const uniqueSchema = (tag) => `t_${tag}_${process.pid}_${Math.floor(Math.random() * 1e6)}`;

function psql(sql) {
  const r = spawnSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql], { encoding: 'utf8' });
  if (r.error) throw new Error(`psql is needed for this test: ${r.error.message}`);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

function startWorker(schema, side, leaseMs) {
  const child = spawn(process.execPath, [WORKER, url, schema, side, String(leaseMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderrText = '';
  child.stderr.on('data', (d) => (child.stderrText += d));
  child.ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`worker exited early (${code}): ${child.stderrText}`)));
  });
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return child;
}

const EXPECTED_KINDS = [
  'ExecutionStarted', 'ActivityScheduled', 'ActivityCompleted', 'TimerCreated', 'TimerFired',
  'ActivityScheduled', 'ActivityCompleted', 'ExecutionCompleted',
];

test('three worker processes run 300 orchestrations; one is SIGKILLed; its instances resume within lease + 3 s', async () => {
  const schema = uniqueSchema('procs');
  const side = path.join(tempDir(), 'side.log');
  const LEASE = 2000;
  const provider = await PostgresProvider.connectWithSchema(url, schema);
  const client = new Client(provider);
  const workers = [0, 1, 2].map(() => startWorker(schema, side, LEASE));
  try {
    await Promise.all(workers.map((w) => w.ready));
    const N = 300;
    await Promise.all(Array.from({ length: N }, (_, i) => client.startOrchestration(`job-${i}`, 'Job', i)));
    const victim = workers[0];
    const linesBy = (pid) => (fs.existsSync(side) ? fs.readFileSync(side, 'utf8').split('\n').filter((l) => l.endsWith(` ${pid}`)).length : 0);
    await eventually(() => linesBy(victim.pid) >= 20, 30000, 'the victim to do some work');
    victim.kill('SIGKILL');
    const killedAt = Date.now();
    assert.equal((await victim.exited).signal, 'SIGKILL');
    const results = await Promise.all(Array.from({ length: N }, (_, i) => client.waitForOrchestration(`job-${i}`, 60000)));
    results.forEach((r, i) => {
      assert.equal(r.status, 'Completed', `job-${i}: ${r.error}`);
      assert.equal(r.output, 3 * i, `job-${i}`);
    });
    let slowestResume = 0;
    for (let i = 0; i < N; i++) {
      const events = await client.readExecutionHistory(`job-${i}`);
      assert.deepEqual(events.map((e) => e.kind), EXPECTED_KINDS, `job-${i} history`);
      assert.deepEqual(events.map((e) => e.eventId), EXPECTED_KINDS.map((_, k) => k + 1));
      const before = events.filter((e) => e.timestamp < killedAt);
      if (before.length > 0 && before.length < events.length) {
        const resumedAt = events[before.length].timestamp;
        slowestResume = Math.max(slowestResume, resumedAt - killedAt);
      }
    }
    assert.ok(slowestResume <= LEASE + 3000, `the dead worker's instances resumed within ${slowestResume} ms (lease ${LEASE} ms + 3 s allowed)`);
  } finally {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));
    psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  }
});

test('the runtime reconnects by itself when every backend connection is terminated mid-run', async () => {
  const schema = uniqueSchema('gone');
  const provider = await PostgresProvider.connectWithSchema(url, schema);
  const client = new Client(provider);
  const runtime = new Runtime(provider, { pollIntervalMs: 200 });
  runtime.registerActivity('Step', async (ctx, n) => {
    await sleep(10);
    return n + 1;
  });
  runtime.registerOrchestration('Job', function* (ctx, n) {
    const a = yield ctx.scheduleActivity('Step', n);
    yield ctx.scheduleTimer(300);
    return yield ctx.scheduleActivity('Step', a);
  });
  await runtime.start();
  try {
    const N = 60;
    await Promise.all(Array.from({ length: N }, (_, i) => client.startOrchestration(`gone-${i}`, 'Job', i)));
    await sleep(150);
    const before = Number(psql(`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'reprise:${schema}'`));
    assert.ok(before >= 2, `the runtime's connections are visible by application_name (found ${before})`);
    const killed = Number(psql(`SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'reprise:${schema}') t`));
    assert.equal(killed, before);
    const results = await Promise.all(Array.from({ length: N }, (_, i) => client.waitForOrchestration(`gone-${i}`, 60000)));
    results.forEach((r, i) => assert.equal(r.output, i + 2, `gone-${i}: ${r.error}`));
    await eventually(() => Number(psql(`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'reprise:${schema}'`)) >= 1, 10000, 'new connections');
  } finally {
    await runtime.shutdown(5000);
    psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  }
});
