'use strict';
// Crash recovery: a worker process is SIGKILLed at chosen points of a run; a new process
// finishes the instance. Right after each kill the test reads the store and the side file
// to record what the kill interrupted. At the end every activity's side effect ran exactly
// once, plus once for each kill that interrupted it, the committed result of each activity
// is the one of its last run, and the history has no duplicated or missing event.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { SqliteProvider, Client } = require('..');
const { tempDir, sleep } = require('./helpers');

const WORKER = path.join(__dirname, 'fixtures', 'crash-worker.js');
const SETTLED = ['ActivityCompleted', 'ActivityFailed', 'TaskCanceled', 'TimerFired'];

function setup(config) {
  const dir = tempDir();
  // `done`: activities whose completion was committed but not yet in the history at a kill.
  return { db: path.join(dir, 'crash.db'), side: path.join(dir, 'side.log'), id: 'crashy-1', config, client: null, done: new Set(), kills: [] };
}

function spawnWorker(s) {
  const child = spawn(process.execPath, [WORKER, s.db, s.side, s.id, JSON.stringify(s.config)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.startedAt = Date.now();
  child.stdout.on('data', (d) => {
    out += d;
    if (child.readyAt === undefined && out.includes('ready\n')) child.readyAt = Date.now();
  });
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
const wrote = (ls, kind, i, pid) => ls.some((l) => l.kind === kind && l.i === i && l.pid === pid);

/** Polls `check` (sync or async) until it returns a truthy value; fails if `child` exits first. */
async function waitFor(check, what, child = null, intervalMs = 2, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (child && child.exitCode !== null) throw new Error(`the worker exited (${child.exitCode}) while waiting for ${what}`);
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

async function clientOf(s) {
  if (!s.client) s.client = new Client(await SqliteProvider.open(s.db));
  return s.client;
}

async function history(s) {
  return (await clientOf(s)).readStoredHistory(s.id);
}

const stepOf = (events, taskId) => events.find((e) => e.kind === 'ActivityScheduled' && e.taskId === taskId).data.input.i;

/**
 * What the kill of process `pid` interrupted, read from the store and the side file while no
 * process runs: `running`, the activities it had begun (side effect started) whose completion
 * was not committed, which therefore run again; `timerPending`, a timer created and not yet
 * due nor fired. An activity that wrote "end" may or may not have committed its completion
 * before the kill: every activity not settled has exactly one worker-queue row, so the
 * number of rows left tells which.
 */
async function interrupted(s, pid, killedAt) {
  const client = await clientOf(s);
  const events = await client.readStoredHistory(s.id);
  const depths = await client.getQueueDepths();
  const ls = lines(s);
  const closed = new Set(events.filter((e) => SETTLED.includes(e.kind)).map((e) => e.taskId));
  const open = events.filter((e) => e.kind === 'ActivityScheduled' && !closed.has(e.taskId)).map((e) => e.data.input.i).filter((i) => !s.done.has(i));
  const running = open.filter((i) => wrote(ls, 'start', i, pid) && !wrote(ls, 'end', i, pid));
  const finished = open.filter((i) => wrote(ls, 'start', i, pid) && wrote(ls, 'end', i, pid));
  const notBegun = open.filter((i) => !wrote(ls, 'start', i, pid));
  const rows = depths.worker.visible + depths.worker.running + depths.worker.delayed;
  const finishedWithRow = rows - running.length - notBegun.length;
  if (finishedWithRow === 0) for (const i of finished) s.done.add(i);
  else if (finishedWithRow === finished.length) running.push(...finished);
  else throw new Error(`cannot tell which of ${finished} committed: ${rows} worker rows for ${open.length} open activities`);
  const timers = events.filter((e) => e.kind === 'TimerCreated' && !closed.has(e.taskId));
  const timerPending = timers.some((e) => killedAt < e.data.fireAt);
  return { pid, killedAt, running: running.sort((a, b) => a - b), timerPending, events };
}

async function kill(s, child, intent) {
  const killedAt = Date.now();
  child.kill('SIGKILL');
  const r = await child.done;
  assert.equal(r.signal, 'SIGKILL', `the worker was killed (${intent}) and did not exit ${r.code}: ${r.err}`);
  const k = await interrupted(s, child.pid, killedAt);
  k.intent = intent;
  s.kills.push(k);
  return k;
}

/** Runs a worker to the end: its result and when it started and was ready. */
async function finish(s) {
  const w = spawnWorker(s);
  const r = await w.done;
  assert.equal(r.code, 0, `the resuming worker failed: ${r.err}`);
  const result = JSON.parse(r.out.trim().split('\n').pop());
  return { result, startedAt: w.startedAt, readyAt: w.readyAt };
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
  for (const e of events.filter((x) => x.kind === 'TimerCreated')) {
    assert.equal(events.filter((x) => x.taskId === e.taskId && ['TimerFired', 'TaskCanceled'].includes(x.kind)).length, 1, `timer task ${e.taskId} settled once`);
  }
  assert.equal(events.filter((e) => e.kind === 'ExecutionStarted').length, 1);
  assert.equal(events.filter((e) => e.kind === 'ExecutionCompleted').length, 1);
  assert.equal(events[events.length - 1].kind, 'ExecutionCompleted');
}

/**
 * Each activity's side effect started exactly once plus once per kill that interrupted it,
 * and the committed result came from its last run, which ended.
 */
function assertExactRuns(s, events, steps, context = '') {
  const ls = lines(s);
  for (const i of steps) {
    const interrupting = s.kills.filter((k) => k.running.includes(i)).length;
    assert.equal(count(ls, 'start', i), 1 + interrupting, `step ${i} ran once plus once per kill that interrupted it (${interrupting})${context}`);
  }
  for (const e of events.filter((x) => x.kind === 'ActivityCompleted')) {
    const i = stepOf(events, e.taskId);
    const last = ls.filter((l) => l.kind === 'start' && l.i === i).pop();
    assert.equal(e.data.result.pid, last.pid, `step ${i}: the committed result is the one of its last run${context}`);
    assert.ok(wrote(ls, 'end', i, last.pid), `step ${i}: its last run ended${context}`);
  }
}

const expected = (steps) => Array.from({ length: steps }, (_, i) => i * 10);

test('(a) killed inside an activity: it runs exactly once more, earlier ones never again', async () => {
  const s = setup({ steps: 4, stepMs: 400 });
  const w = spawnWorker(s);
  await waitFor(() => wrote(lines(s), 'start', 2, w.pid), 'step 2 to start', w);
  const k = await kill(s, w, 'inside step 2');
  assert.deepEqual(k.running, [2], 'the kill landed while step 2 ran');
  const { result } = await finish(s);
  assert.deepEqual(result.output, expected(4), result.error);
  const ls = lines(s);
  assert.deepEqual([0, 1, 2, 3].map((i) => count(ls, 'start', i)), [1, 1, 2, 1]);
  const events = await history(s);
  assertCleanHistory(events);
  assertExactRuns(s, events, [0, 1, 2, 3]);
});

test('(b) killed after step 1 is committed, while step 2 has begun but not reached its side effect: step 2 begins again, every side effect happens once', async () => {
  const s = setup({ steps: 4, stepMs: 20, delayAt: 2, delayMs: 1000 });
  const w = spawnWorker(s);
  await waitFor(() => wrote(lines(s), 'enter', 2, w.pid), 'step 2 to begin', w);
  const k = await kill(s, w, 'before the side effect of step 2');
  const completed = k.events.filter((e) => e.kind === 'ActivityCompleted').map((e) => stepOf(k.events, e.taskId));
  assert.deepEqual(completed, [0, 1], 'steps 0 and 1 were committed at the kill');
  assert.ok(k.events.some((e) => e.kind === 'ActivityScheduled' && e.data.input.i === 2), 'step 2 was scheduled');
  assert.equal(count(lines(s), 'start', 2), 0, 'the side effect of step 2 had not started');
  assert.deepEqual(k.running, []);
  const { result } = await finish(s);
  assert.deepEqual(result.output, expected(4), result.error);
  const ls = lines(s);
  assert.equal(count(ls, 'enter', 2), 2, 'step 2 began again in the new process');
  for (const i of [0, 1, 2, 3]) assert.equal(count(ls, 'start', i), 1, `the side effect of step ${i} happened once`);
  const events = await history(s);
  assertCleanHistory(events);
  assertExactRuns(s, events, [0, 1, 2, 3]);
});

/** Waits for the (only) timer to be created: its TimerCreated event. */
async function timerCreated(s, w) {
  return waitFor(async () => (await history(s)).find((e) => e.kind === 'TimerCreated'), 'the timer to be created', w, 10);
}

/** The timer's events after the run: created and fired once, due `timerMs` after its creation turn. */
function timerEvents(events, timerMs) {
  const created = events.filter((e) => e.kind === 'TimerCreated');
  const fired = events.filter((e) => e.kind === 'TimerFired');
  assert.equal(created.length, 1);
  assert.equal(fired.length, 1, 'the timer fired once');
  assert.equal(created[0].data.fireAt, created[0].timestamp + timerMs, 'the due time is the creation turn time plus the duration');
  assert.ok(fired[0].timestamp >= created[0].data.fireAt, `fired at ${fired[0].timestamp}, not before its due time ${created[0].data.fireAt}`);
  return { fireAt: created[0].data.fireAt, firedAt: fired[0].timestamp };
}

test('(c) killed during a durable timer and restarted well before it is due: it fires at its original due time, once', async () => {
  const TIMER = 3000;
  const s = setup({ steps: 3, stepMs: 20, timerAfter: 1, timerMs: TIMER });
  const w = spawnWorker(s);
  const created = await timerCreated(s, w);
  // Halfway through the timer: a due time computed again at restart would be 1.5 s late.
  await sleep(created.data.fireAt - TIMER / 2 - Date.now());
  const k = await kill(s, w, 'halfway through the timer');
  assert.ok(k.timerPending, 'the timer was pending at the kill');
  assert.ok(!k.events.some((e) => e.kind === 'TimerFired'));
  assert.equal(count(lines(s), 'start', 2), 0, 'the step after the timer had not started');
  const { result, startedAt, readyAt } = await finish(s);
  assert.deepEqual(result.output, expected(3), result.error);
  assert.ok(startedAt < created.data.fireAt - 1000, 'the new process started at least 1 s before the due time');
  const events = await history(s);
  assertCleanHistory(events);
  assertExactRuns(s, events, [0, 1, 2]);
  const { fireAt, firedAt } = timerEvents(events, TIMER);
  assert.equal(fireAt, created.data.fireAt, 'the restart did not change the due time');
  assert.ok(firedAt < startedAt + TIMER, `fired at ${firedAt}: before a due time counted from the restart (${startedAt + TIMER})`);
  assert.ok(firedAt <= Math.max(fireAt, readyAt) + 1000, `fired ${firedAt - fireAt} ms after its due time`);
  const after = events.find((e) => e.kind === 'ActivityScheduled' && e.data.input.i === 2);
  assert.ok(after.timestamp >= firedAt, 'the next step was scheduled after the timer fired');
});

test('(c\') the timer falls due while no process runs: it fires once, as soon as a process starts', async () => {
  const TIMER = 3000;
  const s = setup({ steps: 3, stepMs: 20, timerAfter: 1, timerMs: TIMER });
  const w = spawnWorker(s);
  const created = await timerCreated(s, w);
  const k = await kill(s, w, 'right after the timer was created');
  assert.ok(k.timerPending, 'the timer was pending at the kill');
  // Nothing runs until well after the due time.
  await sleep(created.data.fireAt + 500 - Date.now());
  const { result, startedAt, readyAt } = await finish(s);
  assert.deepEqual(result.output, expected(3), result.error);
  const events = await history(s);
  assertCleanHistory(events);
  assertExactRuns(s, events, [0, 1, 2]);
  const { fireAt, firedAt } = timerEvents(events, TIMER);
  assert.equal(fireAt, created.data.fireAt, 'the restart did not change the due time');
  assert.ok(firedAt >= startedAt, 'it fired in the new process');
  assert.ok(firedAt <= Math.max(fireAt, readyAt) + 1000, `fired ${firedAt - readyAt} ms after the new process was ready`);
  assert.ok(firedAt < startedAt + TIMER, 'not re-armed for a full duration at restart');
});

/** A small seeded generator, so that a failing plan can be replayed with REPRISE_CRASH_SEED. */
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

test('(d) twelve kills spread over every step and the timer: each step runs once plus once per kill that interrupted it', async (t) => {
  const seed = Number(process.env.REPRISE_CRASH_SEED || Date.now() % 1e9);
  const rnd = random(seed);
  const STEPS = 6;
  const STEP_MS = 400;
  const TIMER = 1200;
  const s = setup({ steps: STEPS, stepMs: STEP_MS, timerAfter: 2, timerMs: TIMER });
  const ctx = ` (seed ${seed})`;
  // The phases in run order; every one is a target once, three steps at random once more.
  const phases = [0, 1, 2, 'timer', 3, 4, 5];
  const targets = [...phases];
  for (let n = 0; n < 3; n++) targets.push(Math.floor(rnd() * STEPS));
  targets.sort((a, b) => phases.indexOf(a) - phases.indexOf(b));
  // Two kills at a random moment of a new process's start-up (replay, lease takeover, first claims).
  const plan = targets.map((target) => ({ target }));
  for (let n = 0; n < 2; n++) plan.splice(1 + Math.floor(rnd() * (plan.length - 1)), 0, { early: true });

  let w = null;
  let last = null; // what the previous kill found
  const closedAt = (k, i) => k && (s.done.has(i) || k.events.some((e) => e.kind === 'ActivityCompleted' && stepOf(k.events, e.taskId) === i));
  for (const p of plan) {
    if (p.early) {
      w = w || spawnWorker(s);
      await sleep(Math.floor(rnd() * 250));
      last = await kill(s, w, 'during start-up');
      w = null;
    } else if (p.target === 'timer') {
      if (last && last.events.some((e) => e.kind === 'TimerFired')) continue;
      w = w || spawnWorker(s);
      const created = await timerCreated(s, w);
      const room = created.data.fireAt - 200 - Date.now();
      if (room <= 0) continue; // about to fire: the coverage check below says if no kill landed in it
      await sleep(Math.floor(rnd() * room));
      last = await kill(s, w, 'during the timer');
      w = null;
    } else {
      const i = p.target;
      if (closedAt(last, i)) continue;
      w = w || spawnWorker(s);
      const pid = w.pid;
      await waitFor(() => wrote(lines(s), 'start', i, pid), `step ${i} to start`, w);
      await sleep(Math.floor(rnd() * (STEP_MS / 2)));
      last = await kill(s, w, `inside step ${i}`);
      w = null;
    }
  }
  const { result } = await finish(s);
  assert.deepEqual(result.output, expected(STEPS), `${result.error}${ctx}`);
  const events = await history(s);
  assertCleanHistory(events);
  const summary = s.kills.map((k) => `${k.intent}: ${k.timerPending ? 'timer' : `[${k.running}]`}`).join(', ');
  t.diagnostic(`seed ${seed}; ${summary}; committed but not yet in history at a kill: [${[...s.done]}]`);
  assert.equal(s.kills.length, plan.length, `every planned kill happened: ${summary}${ctx}`);
  // Coverage: every step and the timer were interrupted by at least one kill.
  for (let i = 0; i < STEPS; i++) assert.ok(s.kills.some((k) => k.running.includes(i)), `a kill landed while step ${i} ran: ${summary}${ctx}`);
  const timerKills = s.kills.filter((k) => k.timerPending);
  assert.ok(timerKills.length >= 1, `a kill landed while the timer was pending: ${summary}${ctx}`);
  for (const k of timerKills) assert.deepEqual(k.running, [], 'nothing else ran during the timer');
  assertExactRuns(s, events, Array.from({ length: STEPS }, (_, i) => i), ctx);
  const { firedAt } = timerEvents(events, TIMER);
  const afterTimer = events.find((e) => e.kind === 'ActivityScheduled' && e.data.input.i === 3);
  assert.ok(afterTimer.timestamp >= firedAt, 'step 3 was scheduled after the timer fired');
});

test('kills in the middle of a race and of a fan-out: each activity runs once plus once per kill that interrupted it', async () => {
  const RACE_TIMER = 2000;
  const s = setup({ steps: 3, stepMs: 300, raceAt: 1, fanOutAt: 2, raceTimerMs: RACE_TIMER });
  // Kill while the race's activity runs, long before its timer wins ...
  let w = spawnWorker(s);
  const first = w.pid;
  await waitFor(() => wrote(lines(s), 'start', 101, first), 'the race activity to start', w);
  const k1 = await kill(s, w, 'in the race');
  assert.deepEqual(k1.running, [101], 'the kill landed while the race activity ran');
  const raceTimer = k1.events.find((e) => e.kind === 'TimerCreated');
  assert.ok(raceTimer && k1.timerPending, 'the race timer was pending at the kill');
  // ... and, in the next process, while the fan-out's three activities run (300, 600, 900 ms).
  w = spawnWorker(s);
  const second = w.pid;
  await waitFor(() => [200, 201, 202].every((i) => wrote(lines(s), 'start', i, second)), 'the fan-out to start', w);
  const k2 = await kill(s, w, 'in the fan-out');
  assert.ok(k2.running.includes(202), `the kill landed while the fan-out ran (${k2.running})`);
  assert.ok(w.readyAt < raceTimer.data.fireAt - 500, 'the second process was up long before the race timer was due');
  const { result } = await finish(s);
  assert.deepEqual(result.output, [0, 'race:1', 10, '2000+2010+2020', 20], result.error);
  const events = await history(s);
  assertCleanHistory(events);
  const raceActivity = events.find((e) => e.kind === 'ActivityScheduled' && e.data.input.i === 101);
  assert.ok(events.some((e) => e.kind === 'TaskCanceled' && e.taskId === raceActivity.taskId), 'the losing activity was cancelled');
  const ls = lines(s);
  // The race activity ran in the first process, again in the second until the timer won, never after.
  assert.deepEqual(ls.filter((l) => l.kind === 'start' && l.i === 101).map((l) => l.pid), [first, second]);
  assert.equal(count(ls, 'end', 101), 0, 'the cancelled activity was stopped');
  assertExactRuns(s, events, [0, 101, 1, 200, 201, 202, 2]);
});
