'use strict';
// Crash tests of jobs (async functions with checkpointed steps), on SQLite and PostgreSQL:
// a worker process (fixtures/jobs-worker.js) is SIGKILLed in the middle of a step, during a
// durable sleep, and at random moments of five runs with a sleep and an awaited event; a
// restarted worker finishes the runs. Every step body appends its start and end to a side
// file outside the store, so the test counts how often each side effect really ran. On
// SQLite a restarted process takes the file (and the dead one's leases) over at once; on
// PostgreSQL it comes back under the dead one's workerNodeId and takes its work back at once.
// Last, on PostgreSQL, two worker processes share a concurrencyKey's runs.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { createReprise, defineJob } = require('..');
const { tempDir, uniqueSchema, dropStore, databaseUrl, sleep, eventually, spawnWorker } = require('./helpers');

const WORKER = path.join(__dirname, 'fixtures', 'jobs-worker.js');
const PROVIDERS = ['sqlite', 'postgres'];
/** Short leases: whatever a kill leaves leased is not waited for long. */
const LOCK_TIMEOUT_MS = 1000;

/** A store of its own for one test: where it is, its side file, its workers and client. */
function setup(kind, tag) {
  const dir = tempDir();
  const s = { kind, side: path.join(dir, 'side.log'), workers: [], app: null };
  if (kind === 'sqlite') {
    s.storage = `sqlite:${path.join(dir, 'jobs.db')}`;
    s.schema = '-';
  } else {
    s.storage = databaseUrl;
    s.schema = uniqueSchema(`jobs_${tag}`);
  }
  return s;
}

/**
 * Starts a worker process; on PostgreSQL under `nodeId` (a restart under the same name takes
 * the killed process's work back at once).
 */
function startWorker(s, nodeId = 'w1') {
  const options = { lockTimeoutMs: LOCK_TIMEOUT_MS };
  if (s.kind === 'postgres') options.workerNodeId = nodeId;
  const child = spawnWorker(WORKER, [s.storage, s.schema, s.side, JSON.stringify(options)]);
  s.workers.push(child);
  return child;
}

async function kill(child) {
  child.kill('SIGKILL');
  const { code, signal } = await child.exited;
  assert.equal(signal, 'SIGKILL', `the worker was killed, it did not exit with ${code}: ${child.stderrText}`);
}

/** A client-only app on the test's store (opened once a worker has made the store). */
async function client(s) {
  if (!s.app) {
    const options = { storage: s.storage, worker: false };
    if (s.kind === 'postgres') Object.assign(options, { schema: s.schema, poolSize: 2 });
    s.app = await createReprise(options);
  }
  return s.app;
}

/** A handle to trigger job `name` from the client (the body runs in the workers only). */
function jobHandle(app, name) {
  const definition = defineJob({
    name,
    run: () => {
      throw new Error('runs in the worker process');
    },
  });
  return app.register({ job: definition }).job;
}

async function cleanup(s) {
  for (const w of s.workers) {
    if (w.exitCode !== null || w.signalCode !== null) continue;
    w.kill('SIGTERM');
    const timer = setTimeout(() => w.kill('SIGKILL'), 5000);
    await w.exited;
    clearTimeout(timer);
  }
  if (s.kind === 'postgres') dropStore(`pg:${s.schema}`);
}

/** The side file: `{ runId, name, phase, at, pid }` per line. */
function sideLines(s) {
  if (!fs.existsSync(s.side)) return [];
  return fs.readFileSync(s.side, 'utf8').split('\n').filter(Boolean).map((line) => {
    const [, runId, name, phase, at, pid] = line.split(' ');
    return { runId, name, phase, at: Number(at), pid: Number(pid) };
  });
}

const linesOf = (ls, runId, name, phase) => ls.filter((l) => l.runId === runId && l.name === name && l.phase === phase);
const count = (ls, runId, name, phase) => linesOf(ls, runId, name, phase).length;

/** A small seeded generator (replay a failing plan with REPRISE_JOBS_CRASH_SEED). */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

for (const kind of PROVIDERS) {
  test(`[${kind}] killed in the middle of step 2 of 3: after a restart step 1 is not run again, step 2 runs again, step 3 once, the output is right`, async () => {
    const s = setup(kind, 'mid');
    try {
      const first = startWorker(s);
      await first.ready;
      const app = await client(s);
      const run = await jobHandle(app, 'three-steps').trigger({ n: 4, holdMs: 2000 });
      assert.equal(run.status, 'pending');
      await eventually(() => count(sideLines(s), run.id, 's2', 'start') === 1, 15000, 'step 2 to start');
      await kill(first);
      let ls = sideLines(s);
      assert.equal(count(ls, run.id, 's1', 'end'), 1, 'step 1 had ended at the kill');
      assert.equal(count(ls, run.id, 's2', 'end'), 0, 'the kill landed inside step 2');
      const atKill = await app.getRun(run.id);
      assert.equal(atKill.status, 'running');
      assert.deepEqual((await app.getSteps(run.id)).map((st) => [st.name, st.state]), [['s1', 'done']], 'only step 1 was recorded');

      const second = startWorker(s);
      await second.ready;
      const ended = await app.waitForRun(run.id, { timeoutMs: 20000 });
      assert.equal(ended.status, 'completed', ended.error);
      assert.deepEqual(ended.output, { a: 5, b: 10, c: 13 });
      ls = sideLines(s);
      assert.deepEqual(['s1', 's2', 's3'].map((n) => count(ls, run.id, n, 'start')), [1, 2, 1], 'starts of s1, s2, s3');
      assert.deepEqual(['s1', 's2', 's3'].map((n) => count(ls, run.id, n, 'end')), [1, 1, 1], 'ends of s1, s2, s3');
      assert.deepEqual(linesOf(ls, run.id, 's2', 'start').map((l) => l.pid), [first.pid, second.pid], 'step 2 ran again in the new process');
      assert.equal(linesOf(ls, run.id, 's3', 'start')[0].pid, second.pid);
      assert.deepEqual((await app.getSteps(run.id)).map((st) => [st.name, st.state, st.output]), [['s1', 'done', 5], ['s2', 'done', 10], ['s3', 'done', 13]]);
    } finally {
      await cleanup(s);
    }
  });

  test(`[${kind}] killed during a 2 s step.sleep: after a restart the run wakes on time and the step after the sleep runs once`, async () => {
    const SLEEP = 2000;
    const s = setup(kind, 'nap');
    try {
      const first = startWorker(s);
      await first.ready;
      const app = await client(s);
      const run = await jobHandle(app, 'sleeper').trigger({ sleepMs: SLEEP });
      const nap = await eventually(async () => (await app.getSteps(run.id)).find((st) => st.name === 'sleep:nap' && st.state === 'sleeping'), 15000, 'the sleep to be recorded');
      const until = Date.parse(nap.until);
      // Well into the sleep, with time left for the restart.
      await sleep(Math.max(0, until - SLEEP + 500 - Date.now()));
      await kill(first);
      assert.equal(count(sideLines(s), run.id, 'after', 'start'), 0, 'the step after the sleep had not started');
      assert.equal((await app.getRun(run.id)).status, 'running');

      const second = startWorker(s);
      await second.ready;
      assert.ok(Date.now() < until, 'the new worker was up before the sleep ended');
      const ended = await app.waitForRun(run.id, { timeoutMs: 20000 });
      assert.equal(ended.status, 'completed', ended.error);
      const { before, after } = ended.output;
      const ls = sideLines(s);
      assert.equal(count(ls, run.id, 'before', 'start'), 1, 'the step before the sleep ran once');
      assert.equal(count(ls, run.id, 'after', 'start'), 1, 'the step after the sleep ran once');
      assert.equal(linesOf(ls, run.id, 'after', 'start')[0].pid, second.pid);
      assert.ok(until - before >= SLEEP && until - before < SLEEP + 1000, `the sleep was due ${until - before} ms after the step before it`);
      assert.ok(after >= before + SLEEP, `woke ${after - before} ms after the sleep started: not before ${SLEEP} ms`);
      assert.ok(after >= until, `the step after the sleep ran at ${after}, not before the sleep's end (${until})`);
      assert.ok(after < until + 3000, `woke ${after - until} ms after the sleep's end`);
      assert.ok(Date.parse(ended.completedAt) < until + 3000, `completed ${Date.parse(ended.completedAt) - until} ms after the sleep's end`);
      const steps = await app.getSteps(run.id);
      assert.deepEqual(steps.map((st) => [st.name, st.state]), [['before', 'done'], ['sleep:nap', 'done'], ['after', 'done']]);
      assert.equal(steps[1].until, nap.until, 'the restart did not move the end of the sleep');
    } finally {
      await cleanup(s);
    }
  });

  test(`[${kind}] ten kills at random moments of five runs of a 5-step job with a sleep and an awaited event: every run completes, every step's side effect ends once`, async (t) => {
    const seed = Number(process.env.REPRISE_JOBS_CRASH_SEED || Date.now() % 1e9);
    const rnd = random(seed);
    const ctx = ` (seed ${seed}; replay with REPRISE_JOBS_CRASH_SEED=${seed})`;
    t.diagnostic(`seed ${seed}`);
    const RUNS = 5;
    const KILLS = 10;
    const STEPS = ['s1', 's2', 's3', 's4', 's5'];
    const s = setup(kind, 'random');
    // Per `runId step`: kills that found the step begun and not recorded (it runs again),
    // and kills that found it ended but not yet recorded (its side effect ends again).
    const interrupted = new Map();
    const endedUnrecorded = new Map();
    const bump = (map, key) => map.set(key, (map.get(key) || 0) + 1);
    const kills = [];
    try {
      let w = startWorker(s);
      await w.ready;
      const app = await client(s);
      const job = jobHandle(app, 'five-steps');
      const runs = [];
      const emit = (i) => app.emitEvent(`go-${i}`, { add: 100 * i });
      for (let k = 0; k < KILLS; k++) {
        // The runs start two kills apart, so the kills fall in every phase of some run. The
        // even runs' events come with the trigger (kept until the run awaits them), the odd
        // runs' three kills later (most often waking a run that waits).
        if (k % 2 === 0 && k / 2 < RUNS) {
          const i = k / 2;
          runs.push(await job.trigger({ i, stepMs: 200, sleepMs: 300, event: `go-${i}` }));
          if (i % 2 === 0) await emit(i);
        }
        const late = (k - 3) / 2;
        if (late % 2 === 1 && late < RUNS) await emit(late);
        if (!w) {
          w = startWorker(s);
          await w.ready;
        }
        const delay = 100 + Math.floor(rnd() * 500);
        await sleep(delay);
        const killedAt = Date.now();
        await kill(w);
        // No process runs now: the store says which steps the killed process left unrecorded.
        const ls = sideLines(s).filter((l) => l.pid === w.pid);
        const caught = [];
        for (const [i, run] of runs.entries()) {
          const steps = await app.getSteps(run.id);
          const done = new Set(steps.filter((st) => st.state === 'done').map((st) => st.name));
          const waiting = steps.filter((st) => st.state === 'sleeping' || st.state === 'waiting').map((st) => st.name);
          const inside = [];
          for (const name of STEPS) {
            if (count(ls, run.id, name, 'start') === 0 || done.has(name)) continue;
            const key = `${run.id} ${name}`;
            bump(interrupted, key);
            const [end] = linesOf(ls, run.id, name, 'end');
            if (end) bump(endedUnrecorded, key);
            inside.push(end ? `${name} (ended ${killedAt - end.at} ms before the kill, unrecorded)` : name);
          }
          if (done.size < STEPS.length + 2) caught.push(`run ${i} ${[...inside, ...waiting].join('+') || `after ${[...done].pop() || 'nothing'}`}`);
        }
        kills.push(`${delay} ms: [${caught.join(', ')}]`);
        w = null;
      }
      t.diagnostic(`kills: ${kills.join('; ')}`);
      w = startWorker(s);
      await w.ready;
      for (const [i, run] of runs.entries()) {
        const ended = await app.waitForRun(run.id, { timeoutMs: 30000 });
        assert.equal(ended.status, 'completed', `run ${i}: ${ended.error}${ctx}`);
        const s3 = i * 10 + 3;
        assert.deepEqual(ended.output, { s1: i * 10 + 1, s2: i * 10 + 2, s3, s4: s3 + 100 * i, s5: s3 + 100 * i + 1, got: { add: 100 * i } }, `run ${i}${ctx}`);
        const steps = await app.getSteps(run.id);
        assert.deepEqual(steps.map((st) => st.name).sort(), [...STEPS, 'event:go-' + i, 'sleep:nap'].sort(), `run ${i}${ctx}`);
        assert.ok(steps.every((st) => st.state === 'done'), `run ${i}: every step done${ctx}`);
      }
      const final = sideLines(s);
      for (const [i, run] of runs.entries()) {
        for (const name of STEPS) {
          const key = `${run.id} ${name}`;
          const again = interrupted.get(key) || 0;
          const where = `run ${i} ${name}${ctx}; kills: ${kills.join('; ')}`;
          assert.equal(count(final, run.id, name, 'start'), 1 + again, `${where}: started once plus once per kill that interrupted it (${again})`);
          assert.equal(count(final, run.id, name, 'end'), 1 + (endedUnrecorded.get(key) || 0), `${where}: its side effect ended once (plus once if a kill fell between its end and its record)`);
        }
      }
      t.diagnostic(`steps interrupted: ${[...interrupted.values()].reduce((a, b) => a + b, 0)}; ended but unrecorded at a kill: ${endedUnrecorded.size}`);
    } finally {
      await cleanup(s);
    }
  });
}

test('[postgres] concurrencyKey across processes: two workers, four runs of one key, never two step bodies at once, in trigger order, all complete', async (t) => {
  const HOLD = 300;
  const s = setup('postgres', 'key');
  try {
    const w1 = startWorker(s, 'w1');
    const w2 = startWorker(s, 'w2');
    await Promise.all([w1.ready, w2.ready]);
    const app = await client(s);
    const job = jobHandle(app, 'exclusive');
    const runs = [];
    for (let i = 0; i < 4; i++) runs.push(await job.trigger({ holdMs: HOLD }, { concurrencyKey: 'tenant-1' }));
    for (const run of runs) {
      const ended = await app.waitForRun(run.id, { timeoutMs: 30000 });
      assert.equal(ended.status, 'completed', ended.error);
      assert.equal(ended.concurrencyKey, 'tenant-1');
    }
    const ls = sideLines(s);
    const spans = runs.map((run, i) => {
      const starts = linesOf(ls, run.id, 'only', 'start');
      const ends = linesOf(ls, run.id, 'only', 'end');
      assert.equal(starts.length, 1, `run ${i} started once`);
      assert.equal(ends.length, 1, `run ${i} ended once`);
      return { i, start: starts[0].at, end: ends[0].at, pid: starts[0].pid };
    });
    spans.sort((a, b) => a.start - b.start);
    t.diagnostic(`order ${spans.map((x) => x.i).join(', ')}; pids ${spans.map((x) => (x.pid === w1.pid ? 'w1' : 'w2')).join(', ')}; gaps ${spans.slice(1).map((x, k) => x.start - spans[k].end).join(', ')} ms`);
    for (let k = 1; k < spans.length; k++) {
      assert.ok(spans[k].start >= spans[k - 1].end, `run ${spans[k].i} started at ${spans[k].start}, before run ${spans[k - 1].i} ended (${spans[k - 1].end})`);
    }
    assert.deepEqual(spans.map((x) => x.i), [0, 1, 2, 3], 'the runs of the key ran in trigger order');
  } finally {
    await cleanup(s);
  }
});
