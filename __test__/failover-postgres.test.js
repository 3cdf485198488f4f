'use strict';
// Fast failover on PostgreSQL, with the default 30 s lease: a worker SIGKILLed mid-activity
// stops heartbeating, a live runtime takes it for dead after the heartbeat timeout (3 s by
// default) and releases its leases, and the work resumes elsewhere within seconds; a worker
// restarted with the same workerNodeId takes its old work back at once.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { PostgresProvider, Client, Runtime } = require('..');
const { psql, uniqueSchema } = require('./helpers');

const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const WORKER = path.join(__dirname, 'fixtures', 'failover-worker.js');

/** Starts a worker; `child.lines` waits for a line of its stdout matching `re`. */
function startWorker(schema, options, mode) {
  const child = spawn(process.execPath, [WORKER, url, schema, JSON.stringify(options), mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  const seen = [];
  const waiters = [];
  child.stderrText = '';
  child.stderr.on('data', (d) => (child.stderrText += d));
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    seen.push(line);
    for (const w of waiters.splice(0)) if (!w(line)) waiters.push(w);
  });
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.line = (re, ms = 20000) =>
    new Promise((resolve, reject) => {
      const hit = seen.find((l) => re.test(l));
      if (hit) return resolve(hit);
      const timer = setTimeout(() => reject(new Error(`worker ${child.pid}: no line ${re} within ${ms} ms; stderr: ${child.stderrText}`)), ms);
      waiters.push((line) => {
        if (!re.test(line)) return false;
        clearTimeout(timer);
        resolve(line);
        return true;
      });
      child.exited.then(({ code }) => reject(new Error(`worker exited (${code}) before ${re}: ${child.stderrText}`)));
    });
  return child;
}

async function fresh(tag) {
  const schema = uniqueSchema(tag);
  const provider = await PostgresProvider.connectWithSchema(url, schema, { poolSize: 4 });
  return { schema, provider, client: new Client(provider), drop: () => psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`) };
}

test('work of a SIGKILLed worker resumes on another process within seconds, not after the 30 s lease', async (t) => {
  const { schema, provider, client, drop } = await fresh('failover');
  const dead = startWorker(schema, {}, 'hang');
  let survivor;
  try {
    await dead.line(/^ready$/);
    await client.startOrchestration('f1', 'OneStep', 7);
    await dead.line(/^started f1$/);
    // The survivor runs the same code, with default options (lease 30 s).
    survivor = new Runtime(provider, { keepAlive: false });
    survivor.registerActivity('Step', async (ctx, input) => ({ input, pid: process.pid }));
    survivor.registerOrchestration('OneStep', function* (ctx, input) {
      return yield ctx.scheduleActivity('Step', input);
    });
    await survivor.start();
    const killedAt = Date.now();
    dead.kill('SIGKILL');
    await dead.exited;
    const result = await client.waitForOrchestration('f1', 25000);
    const resumedAfter = Date.now() - killedAt;
    t.diagnostic(`resumed ${resumedAfter} ms after the kill`);
    assert.equal(result.status, 'Completed');
    assert.deepEqual(result.output, { input: 7, pid: process.pid });
    assert.ok(resumedAfter < 10000, `resumed ${resumedAfter} ms after the kill; the lease alone would take 30 s`);
    assert.ok(survivor.metricsSnapshot().runtimesReaped >= 1, 'the survivor removed the dead runtime');
    const runtimes = await client.listRuntimes();
    assert.deepEqual(runtimes.map((r) => r.pid), [process.pid], 'only the survivor is registered');
  } finally {
    dead.kill('SIGKILL');
    if (survivor) await survivor.shutdown(2000);
    drop();
  }
});

test('a worker restarted with the same workerNodeId takes its work back at once; a live one with it is refused', async (t) => {
  const { schema, provider, client, drop } = await fresh('nodeid');
  const first = startWorker(schema, { workerNodeId: 'pod-a' }, 'hang');
  let second;
  try {
    await first.line(/^ready$/);
    await client.startOrchestration('n1', 'OneStep', 1);
    await first.line(/^started n1$/);
    first.kill('SIGKILL');
    await first.exited;
    const restartedAt = Date.now();
    second = startWorker(schema, { workerNodeId: 'pod-a' }, 'quick');
    await second.line(/^ready$/);
    const result = await client.waitForOrchestration('n1', 25000);
    const resumedAfter = Date.now() - restartedAt;
    t.diagnostic(`the restarted worker finished the work ${resumedAfter} ms after it was started`);
    assert.equal(result.output.pid, second.pid, 'the restarted worker ran it');
    assert.ok(resumedAfter < 10000, `took ${resumedAfter} ms; the lease alone would take 30 s`);
    // Two live pods must never share a workerNodeId.
    const clash = new Runtime(provider, { workerNodeId: 'pod-a', keepAlive: false });
    clash.registerActivity('Step', async () => null);
    await assert.rejects(clash.start(), (e) => e.code === 'ERR_LOCKED' && /pod-a/.test(e.message));
    const registry = await client.listRuntimes();
    assert.deepEqual(registry.map((r) => [r.workerNodeId, r.pid]), [['pod-a', second.pid]]);
  } finally {
    first.kill('SIGKILL');
    if (second) second.kill('SIGKILL');
    drop();
  }
});
