'use strict';
// Crash recovery: a worker process is SIGKILLed at chosen points; a new process finishes the
// instance. Nothing completed before a kill runs again, an activity killed mid-run runs
// exactly once more, and the history has no duplicated or missing event.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { SqliteProvider, Client } = require('..');
const { tempDir, sleep } = require('./helpers');

const WORKER = path.join(__dirname, 'fixtures', 'crash-worker.js');

function setup(config) {
  const dir = tempDir();
  return { db: path.join(dir, 'crash.db'), side: path.join(dir, 'side.log'), id: 'crashy-1', config };
}

function spawnWorker(s) {
  const child = spawn(process.execPath, [WORKER, s.db, s.side, s.id, JSON.stringify(s.config)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  child.done = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, out, err })));
  return child;
}

function lines(s) {
  if (!fs.existsSync(s.side)) return [];
  return fs.readFileSync(s.side, 'utf8').split('\n').filter(Boolean).map((l) => {
    const [kind, i, pid] = l.split(' ');
    return { kind, i: Number(i), pid: Number(pid) };
  });
}

const count = (ls, kind, i) => ls.filter((l) => l.kind === kind && l.i === i).length;

async function waitFor(check, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting for the worker');
    await sleep(2);
  }
}

async function kill(child) {
  child.kill('SIGKILL');
  const r = await child.done;
  assert.equal(r.signal, 'SIGKILL');
}

async function finish(s) {
  const r = await spawnWorker(s).done;
  assert.equal(r.code, 0, `the resuming worker failed: ${r.err}`);
  return JSON.parse(r.out);
}

async function history(s) {
  const provider = await SqliteProvider.open(s.db);
  return new Client(provider).readExecutionHistory(s.id);
}

/** Every task's events appear once, event ids are dense, the run ended once. */
function assertCleanHistory(events) {
  assert.deepEqual(events.map((e) => e.eventId), events.map((_, i) => i + 1), 'event ids are dense');
  const seen = new Set();
  for (const e of events) {
    const key = `${e.kind}:${e.taskId}`;
    if (e.taskId !== null) {
      assert.ok(!seen.has(key), `duplicated ${key}`);
      seen.add(key);
    }
  }
  for (const e of events.filter((x) => x.kind === 'ActivityScheduled')) {
    const settled = events.filter((x) => x.taskId === e.taskId && ['ActivityCompleted', 'ActivityFailed', 'TaskCanceled'].includes(x.kind));
    assert.equal(settled.length, 1, `activity task ${e.taskId} settled once`);
  }
  assert.equal(events.filter((e) => e.kind === 'ExecutionStarted').length, 1);
  assert.equal(events.filter((e) => e.kind === 'ExecutionCompleted').length, 1);
  assert.equal(events[events.length - 1].kind, 'ExecutionCompleted');
}

const expected = (steps) => Array.from({ length: steps }, (_, i) => i * 10);

test('(a) killed inside an activity: it runs exactly once more, earlier ones never again', async () => {
  const s = setup({ steps: 4, stepMs: 400 });
  const w = spawnWorker(s);
  await waitFor(() => count(lines(s), 'start', 2) === 1);
  await kill(w);
  const r = await finish(s);
  assert.deepEqual(r.output, expected(4), r.error);
  const ls = lines(s);
  for (const i of [0, 1]) assert.equal(count(ls, 'start', i), 1, `step ${i} ran once`);
  assert.equal(count(ls, 'start', 2), 2, 'the interrupted step ran exactly once more');
  assert.equal(count(ls, 'end', 2), 1);
  assert.equal(count(ls, 'start', 3), 1);
  assertCleanHistory(await history(s));
});

test('(b) killed between activities: the next one runs once, none repeats', async () => {
  const s = setup({ steps: 4, stepMs: 20, delayMs: 500 });
  const w = spawnWorker(s);
  // Step 1 ended; step 2 is scheduled but has not begun its side effect (500 ms delay).
  await waitFor(() => count(lines(s), 'end', 1) === 1);
  await sleep(150);
  assert.equal(count(lines(s), 'start', 2), 0);
  await kill(w);
  const r = await finish(s);
  assert.deepEqual(r.output, expected(4), r.error);
  const ls = lines(s);
  for (const i of [0, 1, 2, 3]) assert.equal(count(ls, 'start', i), 1, `step ${i} ran once`);
  assertCleanHistory(await history(s));
});

test('(c) killed during a durable timer: the timer fires once after restart', async () => {
  const s = setup({ steps: 4, stepMs: 20, timerAfter: 1, timerMs: 1200 });
  const w = spawnWorker(s);
  await waitFor(() => count(lines(s), 'end', 1) === 1);
  await sleep(300);
  await kill(w);
  const killedAt = Date.now();
  assert.equal(count(lines(s), 'start', 2), 0, 'the timer was still pending');
  const r = await finish(s);
  assert.deepEqual(r.output, expected(4), r.error);
  const ls = lines(s);
  for (const i of [0, 1, 2, 3]) assert.equal(count(ls, 'start', i), 1);
  const events = await history(s);
  assertCleanHistory(events);
  assert.equal(events.filter((e) => e.kind === 'TimerFired').length, 1);
  const created = events.find((e) => e.kind === 'TimerCreated');
  assert.ok(created.data.fireAt <= killedAt + 1200, 'the timer kept its original due time');
});

async function killRepeatedly(s, kills, minMs, maxMs) {
  const committedAtKill = [];
  for (let k = 0; k < kills; k++) {
    const w = spawnWorker(s);
    await sleep(minMs + Math.floor(Math.random() * (maxMs - minMs)));
    await kill(w);
    const events = fs.existsSync(s.db) ? await history(s) : [];
    const completed = new Set(events.filter((e) => e.kind === 'ActivityCompleted').map((e) => e.taskId));
    committedAtKill.push({ linesBefore: lines(s).length, completed, events });
  }
  return committedAtKill;
}

test('(d) ten kills at random offsets in one run: finishes right, nothing completed reruns', async () => {
  const s = setup({ steps: 12, stepMs: 200, timerAfter: 5, timerMs: 300 });
  const kills = await killRepeatedly(s, 10, 100, 350);
  const r = await finish(s);
  assert.deepEqual(r.output, expected(12), r.error);
  const ls = lines(s);
  const events = await history(s);
  assertCleanHistory(events);
  // Map task numbers to step numbers through the scheduled inputs.
  const stepOfTask = new Map(events.filter((e) => e.kind === 'ActivityScheduled').map((e) => [e.taskId, e.data.input.i]));
  for (const k of kills) {
    for (const task of k.completed) {
      const step = stepOfTask.get(task);
      const later = ls.slice(k.linesBefore).filter((l) => l.kind === 'start' && l.i === step);
      assert.equal(later.length, 0, `step ${step} completed before a kill but ran again`);
    }
  }
  for (let i = 0; i < 12; i++) assert.ok(count(ls, 'end', i) >= 1, `step ${i} ran`);
});

test('kills in the middle of a race and of a fan-out', async () => {
  const s = setup({ steps: 3, stepMs: 150, raceAt: 1, fanOutAt: 2, timerMs: 300 });
  // Kill while the race's activity runs (before the timer wins) ...
  let w = spawnWorker(s);
  await waitFor(() => count(lines(s), 'start', 101) === 1);
  await kill(w);
  // ... and while the fan-out's three activities run.
  w = spawnWorker(s);
  await waitFor(() => count(lines(s), 'start', 200) >= 1 && count(lines(s), 'end', 200) === 0 && count(lines(s), 'end', 202) === 0);
  await kill(w);
  const r = await finish(s);
  assert.deepEqual(r.output, [0, 'race:1', 10, '2000+2010+2020', 20]);
  const events = await history(s);
  assertCleanHistory(events);
  const raceActivity = events.find((e) => e.kind === 'ActivityScheduled' && e.data.input.i === 101);
  assert.ok(events.some((e) => e.kind === 'TaskCanceled' && e.taskId === raceActivity.taskId), 'the losing activity was cancelled');
});
