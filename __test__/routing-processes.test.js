'use strict';
// Routing between processes on one PostgreSQL schema (SQLite allows one runtime per file):
// two applications with disjoint orchestrations, one of them down for longer than
// notRegisteredGraceMs, lose nothing to each other; and the activities of a session run in
// one process at a time, moving when that process is SIGKILLed.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { PostgresProvider, Client, Runtime } = require('..');
const { sleep, eventually, uniqueSchema, psql } = require('./helpers');

const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const WORKER = path.join(__dirname, 'fixtures', 'routing-worker.js');

function startWorker(schema, app, options = {}) {
  const child = spawn(process.execPath, [WORKER, url, schema, app, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderrText = '';
  child.stderr.on('data', (d) => (child.stderrText += d));
  child.ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`worker exited early (${code}): ${child.stderrText}`)));
  });
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return child;
}

async function stopWorker(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await child.exited;
}

test('two applications share a schema: while one is down for 12 s (longer than notRegisteredGraceMs) the other neither claims nor fails its 20 new instances; they wait, visibly, and run when it is back', async () => {
  const schema = uniqueSchema('apps');
  const provider = await PostgresProvider.connectWithSchema(url, schema);
  const client = new Client(provider);
  // Application B runs in this process, with the default grace periods.
  const b = new Runtime(provider, { pollIntervalMs: 200 });
  b.registerActivity('StepB', (ctx, n) => n * 2);
  b.registerOrchestration('OrderB', function* (ctx, n) {
    return yield ctx.scheduleActivity('StepB', n);
  });
  let a = startWorker(schema, 'A');
  try {
    await a.ready;
    await b.start();
    await client.startOrchestration('a-before', 'OrderA', 0);
    assert.equal((await client.waitForOrchestration('a-before', 10000)).status, 'Completed');

    // A goes down (a deploy); its work keeps coming.
    await stopWorker(a);
    const downAt = Date.now();
    for (let i = 0; i < 20; i++) {
      await client.startOrchestration(`a-${i}`, 'OrderA', i);
      await client.startOrchestration(`b-${i}`, 'OrderB', i);
    }
    for (let i = 0; i < 20; i++) {
      assert.equal((await client.waitForOrchestration(`b-${i}`, 10000)).output, i * 2, 'B runs its own work meanwhile');
    }
    // Visible as waiting for a runtime, in the instance and in B's metrics.
    await eventually(() => b.metricsSnapshot().orchestrationsWithoutRuntime >= 20, 10000, "B's gauge to count A's waiting instances");
    const info = await client.getInstanceInfo('a-7');
    assert.equal(info.status, 'Running');
    assert.equal(info.waitingForRuntime, true);
    assert.equal((await client.getInstanceInfo('b-7')).waitingForRuntime, false);
    await sleep(Math.max(0, 12000 - (Date.now() - downAt)));
    for (let i = 0; i < 20; i++) {
      const s = await client.getStatus(`a-${i}`);
      assert.equal(s.status, 'Running', `a-${i} still waits after 12 s: ${s.error}`);
    }
    const touched = psql(`SELECT COUNT(*) FROM ${schema}.history WHERE instance_id LIKE 'a-%' AND instance_id <> 'a-before'`);
    assert.equal(touched.trim(), '0', 'B never ran a turn of an OrderA instance');

    // A is back: it runs all of them.
    a = startWorker(schema, 'A');
    await a.ready;
    for (let i = 0; i < 20; i++) {
      const s = await client.waitForOrchestration(`a-${i}`, 20000);
      assert.equal(s.status, 'Completed', `a-${i}: ${s.error}`);
      assert.equal(s.output.n, i);
      assert.equal(s.output.pid, a.pid, 'run by application A');
    }
    assert.equal(b.metricsSnapshot().orchConfigurationErrors, 0, 'nothing failed as not registered');
    await eventually(() => b.metricsSnapshot().orchestrationsWithoutRuntime === 0, 10000, 'the gauge to drop back');
  } finally {
    await stopWorker(a);
    await b.shutdown(2000);
    psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  }
});

test('the not-registered rule: a name no runtime ever had fails notRegisteredGraceMs after its start; a name whose application stopped fails unservedGraceMs after its last heartbeat, not before', async () => {
  const schema = uniqueSchema('rule');
  const provider = await PostgresProvider.connectWithSchema(url, schema);
  const client = new Client(provider);
  const b = new Runtime(provider, { pollIntervalMs: 200, notRegisteredGraceMs: 1500, unservedGraceMs: 6000 });
  b.registerOrchestration('OrderB', function* () {
    return 'b';
  });
  const a = startWorker(schema, 'A');
  try {
    await a.ready;
    await b.start();
    await client.startOrchestration('typo', 'OrderTypo', null);
    const typo = await client.waitForOrchestration('typo', 15000);
    assert.equal(typo.status, 'Failed');
    assert.equal(typo.errorCode, 'ERR_NOT_REGISTERED');
    assert.match(typo.error, /orchestration 'OrderTypo' is not registered/);

    await stopWorker(a);
    const stoppedAt = Date.now();
    await client.startOrchestration('orphan', 'OrderA', 1);
    // Past notRegisteredGraceMs, within unservedGraceMs of A's last heartbeat: it waits.
    await sleep(3000);
    assert.equal((await client.getStatus('orphan')).status, 'Running');
    const failed = await client.waitForOrchestration('orphan', 20000);
    assert.equal(failed.status, 'Failed');
    assert.match(failed.error, /orchestration 'OrderA' is not registered \(no runtime has had it for \d+ ms\)/);
    assert.ok(Date.now() - stoppedAt >= 6000 - 1000, 'not before unservedGraceMs after the last heartbeat');
    assert.equal((await client.getInstanceInfo('orphan')).errorCode, 'ERR_NOT_REGISTERED');
  } finally {
    await stopWorker(a);
    await b.shutdown(2000);
    psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  }
});

/** `{s1: Set(pids), s2: Set(pids), plain: Set(pids)}` of what ran. */
function where(ran) {
  const out = { s1: new Set(), s2: new Set(), plain: new Set() };
  for (const r of ran) out[r.session || 'plain'].add(r.pid);
  return out;
}

test("a session's activities run in one process at a time, across continue-as-new and mixed with plain ones in `all`; when that process is SIGKILLed the session moves to the other", async () => {
  const schema = uniqueSchema('sessions');
  const provider = await PostgresProvider.connectWithSchema(url, schema);
  const client = new Client(provider);
  // 6 instances hold 12 sessions: room for all of them in the survivor.
  const workers = ['w1', 'w2'].map((id) => startWorker(schema, 'sessions', { workerNodeId: id, maxSessionsPerRuntime: 16 }));
  try {
    await Promise.all(workers.map((w) => w.ready));
    const N = 6;
    for (let i = 0; i < N; i++) await client.startOrchestration(`pin-${i}`, 'Pinned', { rounds: 4 });
    // Round 1, 'go', round 2 and continue-as-new, round 3; then a kill before round 4.
    for (const round of [1, 3]) {
      for (let i = 0; i < N; i++) {
        await eventually(async () => ((await client.getStatus(`pin-${i}`)).customStatus || {}).round === round, 20000, `pin-${i} round ${round}`);
        if (round === 1) await client.raiseEvent(`pin-${i}`, 'go');
      }
    }
    const owners = {};
    // Kill the process that owns pin-0's s1: its sessions move to the survivor.
    const history = await client.readStoredHistory('pin-0');
    const done = history.filter((e) => e.kind === 'ActivityCompleted').map((e) => e.data.result);
    const victimPid = done.find((r) => r.session === 's1').pid;
    const victim = workers.find((w) => w.pid === victimPid);
    const survivor = workers.find((w) => w.pid !== victimPid);
    assert.ok(victim, 'the owner of s1 is one of the two workers');
    victim.kill('SIGKILL');
    await victim.exited;
    for (let i = 0; i < N; i++) await client.raiseEvent(`pin-${i}`, 'go');
    for (let i = 0; i < N; i++) {
      const s = await client.waitForOrchestration(`pin-${i}`, 30000);
      assert.equal(s.status, 'Completed', `pin-${i}: ${s.error}`);
      const ran = s.output;
      assert.equal(ran.length, 4 * 3, 'every round ran its three activities once');
      const before = where(ran.slice(0, 9));
      const after = where(ran.slice(9));
      for (const session of ['s1', 's2']) {
        assert.equal(before[session].size, 1, `pin-${i} ${session}: rounds 1-3 (across continue-as-new) ran in one process`);
        owners[`${i}/${session}`] = [...before[session]][0];
        assert.equal(after[session].size, 1, `pin-${i} ${session}: round 4 ran in one process`);
        if (owners[`${i}/${session}`] === victimPid) {
          assert.deepEqual([...after[session]], [survivor.pid], `pin-${i} ${session} moved to the survivor`);
        }
      }
    }
    assert.ok(Object.values(owners).includes(victimPid), 'the victim owned sessions');
  } finally {
    await Promise.all(workers.map(stopWorker));
    psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  }
});
