'use strict';
// Routing between processes on one PostgreSQL schema (SQLite allows one runtime per file):
// two applications with disjoint orchestrations, one of them down for longer than
// notRegisteredGraceMs, lose nothing to each other; and the activities of a session run in
// one process at a time, moving when that process is SIGKILLed.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { PostgresProvider, Client, Runtime } = require('..');
const { sleep, eventually, uniqueSchema, psql, spawnWorker } = require('./helpers');

const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const WORKER = path.join(__dirname, 'fixtures', 'routing-worker.js');

function startWorker(schema, app, options = {}) {
  return spawnWorker(WORKER, [url, schema, app, JSON.stringify(options)]);
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
  const b = new Runtime(provider, { pollIntervalMs: 200, metricsIntervalMs: 500, notRegisteredGraceMs: 1500, unservedGraceMs: 6000 });
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

/** The pid that ran each session's activities in each round: `{'s1': [pid per round], 's2': [...]}`. */
function sessionPids(ran) {
  const out = { s1: [], s2: [] };
  for (const r of ran) if (r.session) out[r.session][r.round] = r.pid;
  return out;
}

test("a session's activities run in one process at a time, across continue-as-new and a version upgrade, mixed with plain ones in `all`; when its process is SIGKILLed the session moves; a process restarted with the same workerNodeId takes its sessions back", async () => {
  const schema = uniqueSchema('sessions');
  const provider = await PostgresProvider.connectWithSchema(url, schema);
  const client = new Client(provider);
  // 6 instances hold 12 sessions: room for all of them in any one worker.
  const start = (id) => startWorker(schema, 'sessions', { workerNodeId: id, maxSessionsPerRuntime: 16 });
  const workers = { w1: start('w1'), w2: start('w2') };
  const N = 6;
  const ids = Array.from({ length: N }, (_, i) => `pin-${i}`);
  const atRound = async (round) => {
    for (const id of ids) {
      await eventually(async () => ((await client.getStatus(id)).customStatus || {}).round === round, 20000, `${id} round ${round}`);
    }
  };
  const go = () => Promise.all(ids.map((id) => client.raiseEvent(id, 'go')));
  try {
    await Promise.all(Object.values(workers).map((w) => w.ready));
    for (const id of ids) await client.startOrchestration(id, 'Pinned', { rounds: 5 }, { version: '1.0.0' });
    // Round 1, 'go', round 2 and continue-as-new on 2.0.0, round 3.
    await atRound(1);
    await go();
    await atRound(3);
    // The owner of pin-0's s1 dies; a third worker joins. Round 4 moves its sessions.
    const done3 = (await client.readStoredHistory('pin-0')).filter((e) => e.kind === 'ActivityCompleted').map((e) => e.data.result);
    const victimPid = done3.find((r) => r.session === 's1').pid;
    const [victimId, survivorId] = workers.w1.pid === victimPid ? ['w1', 'w2'] : ['w2', 'w1'];
    workers[victimId].kill('SIGKILL');
    await workers[victimId].exited;
    workers.w3 = start('w3');
    await workers.w3.ready;
    await go();
    await atRound(4);
    // The survivor dies and comes straight back under its workerNodeId: round 5 of the
    // sessions it held runs in its new process, not in w3.
    const survivorPid = workers[survivorId].pid;
    workers[survivorId].kill('SIGKILL');
    await workers[survivorId].exited;
    workers[survivorId] = start(survivorId);
    await workers[survivorId].ready;
    const restartedPid = workers[survivorId].pid;
    await go();
    let moved = 0;
    let takenBack = 0;
    for (const id of ids) {
      const s = await client.waitForOrchestration(id, 30000);
      assert.equal(s.status, 'Completed', `${id}: ${s.error}`);
      assert.equal((await client.getInstanceInfo(id)).version, '2.0.0', 'upgraded by continue-as-new');
      assert.equal(s.output.length, 5 * 3, 'every round ran its three activities once');
      for (const [session, pids] of Object.entries(sessionPids(s.output))) {
        const where = `${id} ${session}`;
        assert.equal(new Set(pids.slice(0, 3)).size, 1, `${where}: rounds 1-3 (across continue-as-new and the upgrade) in one process`);
        if (pids[2] === victimPid) {
          assert.notEqual(pids[3], victimPid, `${where}: moved off the dead process`);
          moved += 1;
        } else {
          assert.equal(pids[3], pids[2], `${where}: stayed with its live owner`);
        }
        if (pids[3] === survivorPid) {
          assert.equal(pids[4], restartedPid, `${where}: taken back by the restarted ${survivorId}`);
          takenBack += 1;
        } else {
          assert.equal(pids[4], pids[3], `${where}: stayed with its live owner`);
        }
      }
    }
    assert.ok(moved >= 1, 'sessions moved off the dead process');
    assert.ok(takenBack >= 1, 'sessions were taken back');
  } finally {
    await Promise.all(Object.values(workers).map(stopWorker));
    psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  }
});
