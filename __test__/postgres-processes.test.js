'use strict';
// Many processes on one PostgreSQL schema: three workers share 300 orchestrations, one is
// SIGKILLed while it runs activities, the others finish its work, and every step's side
// effect ran exactly once plus once if the victim was cut short in it; then every backend
// connection is killed and the runtime reconnects by itself.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { PostgresProvider, Client, Runtime } = require('..');
const { tempDir, sleep, eventually, psql, uniqueSchema, spawnWorker } = require('./helpers');

const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const WORKER = path.join(__dirname, 'fixtures', 'pg-worker.js');


function startWorker(schema, side, leaseMs) {
  return spawnWorker(WORKER, [url, schema, side, String(leaseMs)]);
}

const EXPECTED_KINDS = [
  'ExecutionStarted', 'ActivityScheduled', 'ActivityCompleted', 'TimerCreated', 'TimerFired',
  'ActivityScheduled', 'ActivityCompleted', 'ExecutionCompleted',
];

/** The side file's lines: {kind: 'start' | 'end', instance, step, pid}. */
function sideLines(side) {
  if (!fs.existsSync(side)) return [];
  return fs.readFileSync(side, 'utf8').split('\n').filter(Boolean).map((l) => {
    const [kind, instance, step, pid] = l.split(' ');
    return { kind, instance, step: Number(step), pid: Number(pid) };
  });
}

/** The `instance step` keys that `pid` started and did not end. */
function unfinished(lines, pid) {
  const open = new Set();
  for (const l of lines.filter((x) => x.pid === pid)) {
    const key = `${l.instance} ${l.step}`;
    if (l.kind === 'start') open.add(key);
    else open.delete(key);
  }
  return open;
}

test('three worker processes run 300 orchestrations; one is SIGKILLed mid-activity; each step runs once, plus once if the victim was running it; its instances resume within lease + 3 s', async (t) => {
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
    // Kill once the victim has finished some activities and has others under way.
    await eventually(() => {
      const ls = sideLines(side);
      return ls.filter((l) => l.kind === 'end' && l.pid === victim.pid).length >= 30 && unfinished(ls, victim.pid).size > 0;
    }, 30000, 'the victim to do some work');
    victim.kill('SIGKILL');
    const killedAt = Date.now();
    assert.equal((await victim.exited).signal, 'SIGKILL');
    // The victim's lines are final now: what it had started and not ended was cut short.
    const cut = unfinished(sideLines(side), victim.pid);
    assert.ok(cut.size > 0, 'the kill landed while the victim ran activities');
    const results = await Promise.all(Array.from({ length: N }, (_, i) => client.waitForOrchestration(`job-${i}`, 60000)));
    results.forEach((r, i) => {
      assert.equal(r.status, 'Completed', `job-${i}: ${r.error}`);
      assert.equal(r.output, 3 * i, `job-${i}`);
    });
    const ls = sideLines(side);
    const runs = new Map(); // key -> the pids of its starts, in order
    const ended = new Set();
    for (const l of ls) {
      const key = `${l.instance} ${l.step}`;
      if (l.kind === 'start') runs.set(key, [...(runs.get(key) || []), l.pid]);
      else ended.add(`${key} ${l.pid}`);
    }
    // A step run again for another reason than the kill would show here (e.g. a store error).
    const warnings = () => workers.map((w) => w.stderrText).join('').split('\n').filter((l) => /WARN|ERROR/.test(l)).join('\n');
    let slowestResume = 0;
    let interrupted = 0;
    for (let i = 0; i < N; i++) {
      const events = await client.readStoredHistory(`job-${i}`);
      assert.deepEqual(events.map((e) => e.kind), EXPECTED_KINDS, `job-${i} history`);
      assert.deepEqual(events.map((e) => e.eventId), EXPECTED_KINDS.map((_, k) => k + 1));
      const stepOf = new Map(events.filter((e) => e.kind === 'ActivityScheduled').map((e) => [e.taskId, e.data.input.step]));
      for (const done of events.filter((e) => e.kind === 'ActivityCompleted')) {
        const key = `job-${i} ${stepOf.get(done.taskId)}`;
        const committed = done.data.result.pid;
        const pids = runs.get(key) || [];
        // The victim was running this step at the kill if it began it and its run is not the committed one.
        const victimCut = pids.includes(victim.pid) && committed !== victim.pid;
        if (cut.has(key)) assert.ok(victimCut, `${key}: the victim's unfinished run was not committed`);
        assert.equal(pids.length, 1 + (victimCut ? 1 : 0), `${key} ran once, plus once if the victim was running it when killed (runs by ${pids}, victim ${victim.pid})\n${warnings()}`);
        assert.equal(pids[pids.length - 1], committed, `${key}: the committed result is the one of its last run`);
        assert.ok(ended.has(`${key} ${committed}`), `${key}: its committed run ended`);
        if (victimCut) interrupted++;
      }
      const before = events.filter((e) => e.timestamp < killedAt);
      if (before.length > 0 && before.length < events.length) {
        const resumedAt = events[before.length].timestamp;
        slowestResume = Math.max(slowestResume, resumedAt - killedAt);
      }
    }
    const victimRuns = ls.filter((l) => l.kind === 'start' && l.pid === victim.pid).length;
    t.diagnostic(`the victim began ${victimRuns} steps; ${interrupted} ran again (${cut.size} unfinished at the kill); slowest resume ${slowestResume} ms`);
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
