'use strict';
// Leases across processes on one PostgreSQL schema. Two worker processes (fixtures/
// lease-worker.js) poll every 50 ms, so a lease that lapses is taken over at once:
// - work that outlasts three leases, in an activity or in an orchestration turn, still runs
//   once, because the lease keeper renews it;
// - a worker SIGSTOPped past its lease loses the work to the other one, and when it resumes
//   its late activity result and its late turn commit are refused.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { PostgresProvider, Client } = require('..');
const { tempDir, sleep, eventually, psql, uniqueSchema } = require('./helpers');

const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const WORKER = path.join(__dirname, 'fixtures', 'lease-worker.js');


/** Bounds a promise, naming what was awaited. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function startWorker(schema, side, options) {
  const child = spawn(process.execPath, [WORKER, url, schema, side, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stderrText = '';
  child.stderr.on('data', (d) => (child.stderrText += d));
  const answers = [];
  let ready;
  child.ready = new Promise((resolve, reject) => {
    ready = resolve;
    child.on('exit', (code) => reject(new Error(`worker exited early (${code}): ${child.stderrText}`)));
  });
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    if (line === 'ready') ready();
    else if (line.startsWith('metrics ')) answers.shift()(JSON.parse(line.slice('metrics '.length)));
  });
  /** The worker's runtime.metricsSnapshot() (answered by its JS thread). */
  child.metrics = () =>
    within(
      new Promise((resolve) => {
        answers.push(resolve);
        child.stdin.write('metrics\n');
      }),
      15000,
      `metrics of worker ${child.pid}`,
    );
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return child;
}

/** Side file lines: {ts, pid, what, instance, losses, renewals} (the writer's lease counters then). */
function sideLines(side) {
  if (!fs.existsSync(side)) return [];
  return fs
    .readFileSync(side, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [ts, pid, what, instance, losses, renewals] = l.split(' ');
      return { ts: Number(ts), pid: Number(pid), what, instance, losses: Number(losses), renewals: Number(renewals) };
    });
}

/**
 * Between `from` and `to` (two side lines of one process, while it ran nothing but the busy
 * work) the lease keeper renewed at least once per lease and lost nothing.
 */
function assertRenewedThroughout(from, to, lease) {
  assert.equal(to.losses - from.losses, 0, 'no lease was lost while the work ran');
  const renewals = to.renewals - from.renewals;
  const leases = Math.floor((to.ts - from.ts) / lease);
  assert.ok(leases >= 2, `the measured stretch spans ${leases} leases`);
  assert.ok(renewals >= leases, `${renewals} renewals in ${to.ts - from.ts} ms (lease ${lease} ms)`);
}

/** Two workers on a fresh schema, both ready (so both poll before any work exists). */
async function twoWorkers(tag, options) {
  const schema = uniqueSchema(tag);
  const side = path.join(tempDir(), 'side.log');
  const client = new Client(await PostgresProvider.connectWithSchema(url, schema, { poolSize: 2 }));
  const workers = [startWorker(schema, side, options), startWorker(schema, side, options)];
  const cleanup = async () => {
    for (const w of workers) {
      if (w.exitCode !== null || w.signalCode !== null) continue;
      w.kill('SIGCONT');
      w.kill('SIGTERM');
    }
    await Promise.all(workers.map((w) => w.exited));
    psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  };
  try {
    await within(Promise.all(workers.map((w) => w.ready)), 30000, 'the workers to start');
  } catch (e) {
    await cleanup();
    throw e;
  }
  const byPid = (pid) => workers.find((w) => w.pid === pid);
  const otherThan = (w) => workers.find((x) => x !== w);
  return { schema, side, client, workers, byPid, otherThan, cleanup };
}

/** The whole history is one run: event ids 1..n and the expected kinds in order. */
async function assertHistory(client, id, kinds) {
  const events = await client.readStoredHistory(id);
  assert.deepEqual(events.map((e) => e.kind), kinds, `${id} history`);
  assert.deepEqual(events.map((e) => e.eventId), kinds.map((_, i) => i + 1), `${id} event ids are dense`);
  return events;
}

const LEASE = 800;
const SETTLE = LEASE; // the first lease: the commits around the start are done by then
const BUSY_MS = SETTLE + 3 * LEASE + 200; // more than three leases after that

for (const block of [true, false]) {
  const how = block ? 'blocks the JS thread' : 'awaits';
  test(`an activity that ${how} for more than three leases runs once while another process polls for lapsed leases`, async () => {
    // One worker slot each: the committing worker claims Busy, the other one runs Quick.
    const env = await twoWorkers(block ? 'lease_block' : 'lease_await', { lockTimeoutMs: LEASE, pollIntervalMs: 50, workerConcurrency: 1 });
    try {
      await env.client.startOrchestration('busy', 'BusyWithQuick', { ms: BUSY_MS, settle: SETTLE, block });
      const r = await env.client.waitForOrchestration('busy', 30000);
      assert.equal(r.status, 'Completed', r.error);
      const lines = sideLines(env.side);
      const starts = lines.filter((l) => l.what === 'busy-start');
      assert.equal(starts.length, 1, `Busy started once across both processes: ${JSON.stringify(lines)}`);
      const runner = env.byPid(starts[0].pid);
      const other = env.otherThan(runner);
      const mid = lines.find((l) => l.what === 'busy-mid');
      const end = lines.find((l) => l.what === 'busy-end');
      assertRenewedThroughout(mid, end, LEASE);
      const quick = lines.filter((l) => l.what === 'quick');
      assert.equal(quick.length, 1);
      assert.equal(quick[0].pid, other.pid, 'Quick ran in the other process');
      assert.ok(quick[0].ts < end.ts, 'the other process was claiming work while Busy ran');
      assert.deepEqual(r.output, { busy: { ok: runner.pid }, quick: { ok: other.pid } });

      const mr = await runner.metrics();
      const mo = await other.metrics();
      assert.equal(mr.activitiesStarted, 1, 'the runner started Busy only');
      assert.equal(mo.activitiesStarted, 1, 'the other process started Quick only, never Busy');
      assert.equal(mr.activitiesAbandoned + mo.activitiesAbandoned, 0);
      assert.equal(mr.leaseLosses + mo.leaseLosses, 0, 'no lease was lost in the whole run');
      await assertHistory(env.client, 'busy', [
        'ExecutionStarted', 'ActivityScheduled', 'ActivityScheduled', 'ActivityCompleted', 'ActivityCompleted', 'ExecutionCompleted',
      ]);
    } finally {
      await env.cleanup();
    }
  });
}

test('an orchestration turn that blocks the JS thread for more than three leases commits once while another process polls for lapsed leases', async () => {
  // One turn at a time each: while one worker's turn blocks, only the other can claim instances.
  const env = await twoWorkers('lease_turn', { lockTimeoutMs: LEASE, pollIntervalMs: 50, orchestrationConcurrency: 1 });
  try {
    await env.client.startOrchestration('turn', 'BusyTurn', { ms: BUSY_MS, settle: SETTLE, tag: 'turn' });
    const started = await eventually(() => sideLines(env.side).find((l) => l.what === 'turn-start'), 20000, 'the blocking turn to start');
    const runner = env.byPid(started.pid);
    const other = env.otherThan(runner);
    // Once an unrenewed lease would have lapsed, the other worker is still claiming instances.
    await sleep(started.ts + 1.5 * LEASE - Date.now());
    await env.client.startOrchestration('probe', 'Probe', 42);
    assert.equal((await env.client.waitForOrchestration('probe', 20000)).output, 42);
    const probeDoneAt = Date.now();

    const r = await env.client.waitForOrchestration('turn', 30000);
    assert.equal(r.status, 'Completed', r.error);
    const lines = sideLines(env.side);
    const turnStarts = lines.filter((l) => l.what === 'turn-start');
    assert.equal(turnStarts.length, 1, `the blocking turn ran once across both processes: ${JSON.stringify(lines)}`);
    const mid = lines.find((l) => l.what === 'turn-mid');
    const end = lines.find((l) => l.what === 'turn-end');
    assertRenewedThroughout(mid, end, LEASE);
    assert.ok(probeDoneAt < end.ts, 'the other process completed Probe while the turn was still blocked');
    const quick = lines.filter((l) => l.what === 'quick');
    assert.equal(quick.length, 1);
    assert.deepEqual(r.output, { tag: 'turn', quick: quick[0].pid });

    const mr = await runner.metrics();
    const mo = await other.metrics();
    assert.equal(mr.turnsAbandoned, 0);
    assert.equal(mr.leaseLosses + mo.leaseLosses, 0, 'no lease was lost in the whole run');
    assert.equal(mr.activations + mo.activations, 3, 'the turn, the Quick result and Probe each reached JS once');
    await assertHistory(env.client, 'turn', ['ExecutionStarted', 'ActivityScheduled', 'ActivityCompleted', 'ExecutionCompleted']);
  } finally {
    await env.cleanup();
  }
});

const PART_LEASE = 600;
const PART_MS = 1500;

test('a worker SIGSTOPped past its lease mid-activity: the other takes the activity over; the resumed one\'s late result is dropped', async () => {
  const env = await twoWorkers('lease_stop_act', { lockTimeoutMs: PART_LEASE, pollIntervalMs: 50 });
  try {
    await env.client.startOrchestration('part', 'BusyAlone', { ms: PART_MS, settle: PART_MS, block: false });
    const first = await eventually(() => sideLines(env.side).find((l) => l.what === 'busy-start'), 20000, 'Busy to start');
    const victim = env.byPid(first.pid);
    const taker = env.otherThan(victim);
    victim.kill('SIGSTOP');
    const stoppedAt = Date.now();

    const r = await env.client.waitForOrchestration('part', 30000);
    assert.equal(r.status, 'Completed', r.error);
    assert.deepEqual(r.output, { busy: taker.pid }, 'the result recorded is the taker\'s');
    const takeover = sideLines(env.side).find((l) => l.what === 'busy-start' && l.pid === taker.pid);
    assert.ok(takeover, 'the taker ran Busy');
    const after = takeover.ts - stoppedAt;
    assert.ok(after >= PART_LEASE / 2 && after <= PART_LEASE + 2000, `taken over once the lease lapsed (${after} ms after SIGSTOP, lease ${PART_LEASE} ms)`);
    const kinds = ['ExecutionStarted', 'ActivityScheduled', 'ActivityCompleted', 'ExecutionCompleted'];
    const before = await assertHistory(env.client, 'part', kinds);

    victim.kill('SIGCONT');
    await eventually(() => sideLines(env.side).some((l) => l.what === 'busy-end' && l.pid === victim.pid), 20000, 'the resumed worker to finish Busy');
    // Its lease was found lost at a renewal or its result refused (either is counted once).
    await eventually(async () => {
      const m = await victim.metrics();
      return m.leaseLosses > first.losses && m.runningActivities === 0;
    }, 20000, 'the resumed worker to count its lost lease');
    const mv = await victim.metrics();
    assert.equal(mv.activitiesStarted, 1);
    assert.equal(mv.activitiesAbandoned, 0);
    const mt = await taker.metrics();
    assert.equal(mt.activitiesStarted, 1);

    const lines = sideLines(env.side);
    assert.deepEqual(
      lines.filter((l) => l.what === 'busy-start').map((l) => l.pid),
      [victim.pid, taker.pid],
      'Busy started in both processes (at-least-once), the victim first',
    );
    assert.deepEqual(await env.client.readStoredHistory('part'), before, 'the late result changed nothing');
    assert.deepEqual((await env.client.getStatus('part')).output, { busy: taker.pid });
  } finally {
    await env.cleanup();
  }
});

test('a worker SIGSTOPped past its lease mid-turn: the other redoes the turn and finishes; the resumed one\'s late commit is refused', async () => {
  const env = await twoWorkers('lease_stop_turn', { lockTimeoutMs: PART_LEASE, pollIntervalMs: 50 });
  try {
    await env.client.startOrchestration('pturn', 'BusyTurn', { ms: PART_MS, settle: PART_MS, tag: 'pturn' });
    const first = await eventually(() => sideLines(env.side).find((l) => l.what === 'turn-start'), 20000, 'the blocking turn to start');
    const victim = env.byPid(first.pid);
    const taker = env.otherThan(victim);
    victim.kill('SIGSTOP');
    const stoppedAt = Date.now();

    const r = await env.client.waitForOrchestration('pturn', 30000);
    assert.equal(r.status, 'Completed', r.error);
    assert.deepEqual(r.output, { tag: 'pturn', quick: taker.pid });
    const takeover = sideLines(env.side).find((l) => l.what === 'turn-start' && l.pid === taker.pid);
    assert.ok(takeover, 'the taker ran the turn');
    const after = takeover.ts - stoppedAt;
    assert.ok(after >= PART_LEASE / 2 && after <= PART_LEASE + 2000, `taken over once the lease lapsed (${after} ms after SIGSTOP, lease ${PART_LEASE} ms)`);
    const kinds = ['ExecutionStarted', 'ActivityScheduled', 'ActivityCompleted', 'ExecutionCompleted'];
    const before = await assertHistory(env.client, 'pturn', kinds);

    victim.kill('SIGCONT');
    await eventually(() => sideLines(env.side).some((l) => l.what === 'turn-end' && l.pid === victim.pid), 20000, 'the resumed worker to finish its turn');
    // Its instance lease was found lost at renewals and its commit refused.
    await eventually(async () => {
      const m = await victim.metrics();
      return m.leaseLosses > first.losses && m.inflightTurns === 0;
    }, 20000, 'the resumed worker to have its commit refused');
    const mv = await victim.metrics();
    assert.equal(mv.turnsCommitted, 0, 'the late turn was not committed');
    assert.equal(mv.turnsAbandoned, 0, 'the late turn ended at the refused commit, not as abandoned');
    assert.equal(mv.activitiesStarted, 0);

    const lines = sideLines(env.side);
    assert.deepEqual(
      lines.filter((l) => l.what === 'turn-start').map((l) => l.pid),
      [victim.pid, taker.pid],
      'the first turn ran in both processes, the victim first',
    );
    assert.deepEqual(lines.filter((l) => l.what === 'quick').map((l) => l.pid), [taker.pid], 'Quick was scheduled and run once');
    assert.deepEqual(await env.client.readStoredHistory('pturn'), before, 'the late commit changed nothing');
  } finally {
    await env.cleanup();
  }
});
