'use strict';
// Jobs: async functions with checkpointed steps (createReprise, defineJob), through the public
// API on SQLite, or on PostgreSQL with REPRISE_TEST_PROVIDER=postgres. Steps run once and
// answer from the store when the function re-runs after a suspension; repeated names get #2,
// #3; step retries and stored errors; Promise.all over steps; sleep, sleepUntil, awaitEvent,
// emitEvent (kept payloads, clearEvent, timeouts); spawn/join; idempotency and concurrency
// keys; cancellation (app.cancel, cancelAfterMs, cancelIfPendingMs); progress and logs, also
// read by a client-only app; app.on and app.subscribe; schemas; getRuns, retry, deleteRun,
// batchTrigger, getJob; a suspended run's frame is garbage; runs as instances.
const test = require('node:test');
const assert = require('node:assert/strict');
const v8 = require('node:v8');
const vm = require('node:vm');
const { createReprise, defineJob, TimeoutError, RunFailedError, InvalidArgumentError, InvalidStateError } = require('..');
const { storeLocation, dropStore, runtimeOptions, eventually, sleep } = require('./helpers');

const databaseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

// A provider has no close(): app.stop() leaves its store open, and a PostgreSQL app's
// connections (its pool and its LISTEN connection: about 5) are closed only when the app is
// garbage-collected. Twenty apps in one file would take most of a server's 100 connections,
// so each test ends with a collection (the memory test collects too).
v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc');
test.afterEach(async () => {
  for (let i = 0; i < 3; i++) {
    collectGarbage();
    await sleep(20);
  }
});

/** The storage options of a store location (a SQLite file, or `pg:<schema>`). */
function storageOf(location) {
  if (location.startsWith('pg:')) return { storage: databaseUrl, schema: location.slice(3), poolSize: 4 };
  return { storage: `sqlite:${location}` };
}

/**
 * An app on a fresh store (or `options.location`'s); `app.location` is where it is, and
 * `app.close()` stops it and drops a PostgreSQL schema it created.
 */
async function openApp(options = {}) {
  const { location: given, ...rest } = options;
  const location = given || storeLocation('jobs');
  let app;
  try {
    app = await createReprise({ ...storageOf(location), ...runtimeOptions({ pollIntervalMs: 50, ...rest }) });
  } catch (error) {
    if (!given) dropStore(location);
    throw error;
  }
  app.location = location;
  app.close = async () => {
    await app.stop();
    if (!given) dropStore(location);
  };
  return app;
}

/** Registers `jobs`, starts the app, runs `body(app, handles)`, and always closes the app. */
async function withApp(jobs, body, options = {}) {
  const app = await openApp(options);
  try {
    const handles = app.register(jobs);
    await app.start();
    await body(app, handles);
  } finally {
    await app.close();
  }
}

const ENDED = ['completed', 'failed', 'cancelled'];
const WAIT = { timeoutMs: 15000 };
const statusOf = async (app, id) => (await app.getRun(id)).status;
const byName = (steps) => Object.fromEntries(steps.map((s) => [s.name, s]));
const stepNamed = async (app, id, name) => (await app.getSteps(id)).find((s) => s.name === name);

test('step.run results are recorded once and answered from the store when the function re-runs after a sleep', async () => {
  const counts = { one: 0, two: 0, three: 0, top: 0 };
  const threeSteps = defineJob({
    name: 'three-steps',
    run: async (step, input) => {
      counts.top++;
      const a = await step.run('one', () => {
        counts.one++;
        return input.n + 1;
      });
      await step.sleep('pause', 150);
      const b = await step.run('two', () => {
        counts.two++;
        return a * 10;
      });
      const c = await step.run('three', () => {
        counts.three++;
        return { total: b + 5 };
      });
      return { a, b, c };
    },
  });
  await withApp({ threeSteps }, async (app, { threeSteps: job }) => {
    const { id, output } = await job.triggerAndWait({ n: 1 }, { timeout: 15000 });
    assert.deepEqual(output, { a: 2, b: 20, c: { total: 25 } });
    assert.deepEqual({ one: counts.one, two: counts.two, three: counts.three }, { one: 1, two: 1, three: 1 });
    assert.ok(counts.top >= 2, `the function re-ran from the top after the sleep (${counts.top} calls)`);
    const steps = byName(await app.getSteps(id));
    assert.deepEqual(Object.keys(steps).sort(), ['one', 'sleep:pause', 'three', 'two']);
    for (const step of Object.values(steps)) assert.equal(step.state, 'done');
    assert.deepEqual([steps.one.output, steps.two.output, steps.three.output], [2, 20, { total: 25 }]);
    assert.equal(steps.one.attempts, 1);
    const run = await app.getRun(id);
    assert.equal(run.status, 'completed');
    assert.deepEqual(run.output, output);
    assert.deepEqual(run.payload, { n: 1 });
    assert.equal(run.jobName, 'three-steps');
    for (const key of ['createdAt', 'updatedAt', 'startedAt', 'completedAt']) assert.ok(!Number.isNaN(Date.parse(run[key])), `${key} is a date`);
  });
});

test('a repeated step name gets #2, #3, stable across re-runs', async () => {
  let calls = 0;
  const repeat = defineJob({
    name: 'repeat',
    run: async (step) => {
      const out = [];
      for (let i = 0; i < 3; i++) {
        out.push(await step.run('item', () => {
          calls++;
          return i * 10;
        }));
        if (i === 1) await step.sleep('between', 100);
      }
      return out;
    },
  });
  await withApp({ repeat }, async (app, { repeat: job }) => {
    const { id, output } = await job.triggerAndWait(null, { timeout: 15000 });
    assert.deepEqual(output, [0, 10, 20]);
    assert.equal(calls, 3);
    const steps = byName(await app.getSteps(id));
    assert.deepEqual(Object.keys(steps).sort(), ['item', 'item#2', 'item#3', 'sleep:between']);
    assert.deepEqual([steps.item.output, steps['item#2'].output, steps['item#3'].output], [0, 10, 20]);
  });
});

test('getSteps lists the steps in the order they were first recorded', async () => {
  let midCalls = 0;
  const ordered = defineJob({
    name: 'ordered',
    run: async (step) => {
      await step.run('zeta', () => 'z');
      await step.run('mid', () => {
        midCalls++;
        if (midCalls === 1) throw new Error('once');
        return 'm';
      }, { retry: { maxAttempts: 2, initialDelayMs: 50, backoff: 'fixed' } });
      await step.run('alpha', () => 'a');
      await step.sleep('nap', 50);
      await step.run('alpha', () => 'a2');
      return 'ok';
    },
  });
  await withApp({ ordered }, async (app, { ordered: job }) => {
    const { id } = await job.triggerAndWait(null, { timeout: 15000 });
    const steps = await app.getSteps(id);
    assert.deepEqual(steps.map((s) => s.name), ['zeta', 'mid', 'alpha', 'sleep:nap', 'alpha#2']);
    assert.deepEqual(steps.map((s) => s.attempts), [1, 2, 1, 0, 1]);
  });
});

test('a failing step is retried by its policy; one that gives up throws the stored error (catchable), or fails the run', async () => {
  const calls = { flaky: 0, hopeless: 0, fatal: 0 };
  const retry = { maxAttempts: 3, initialDelayMs: 50, backoff: 'fixed' };
  const flaky = defineJob({
    name: 'flaky',
    run: async (step) => step.run('call', () => {
      calls.flaky++;
      if (calls.flaky < 3) throw new Error(`failure ${calls.flaky}`);
      return 'third time lucky';
    }, { retry }),
  });
  const fallback = defineJob({
    name: 'fallback',
    run: async (step) => {
      try {
        await step.run('hopeless', () => {
          calls.hopeless++;
          const error = new Error('the service is down');
          error.code = 'E_DOWN';
          throw error;
        }, { retry: { maxAttempts: 2, initialDelayMs: 50, backoff: 'fixed' } });
        return { caught: null };
      } catch (error) {
        const after = await step.run('after', () => 'fallback used');
        return { caught: { message: error.message, code: error.code, isError: error instanceof Error }, after };
      }
    },
  });
  const fatal = defineJob({
    name: 'fatal',
    run: async (step) => {
      await step.run('fatal', () => {
        calls.fatal++;
        throw new Error('no way through');
      }, { retry: { maxAttempts: 2, initialDelayMs: 50, backoff: 'fixed' } });
      return 'unreachable';
    },
  });
  await withApp({ flaky, fallback, fatal }, async (app, jobs) => {
    const ok = await jobs.flaky.triggerAndWait(null, { timeout: 15000 });
    assert.equal(ok.output, 'third time lucky');
    assert.equal(calls.flaky, 3);
    const [call] = await app.getSteps(ok.id);
    assert.equal(call.state, 'done');
    assert.equal(call.attempts, 3);

    const caught = await jobs.fallback.triggerAndWait(null, { timeout: 15000 });
    assert.deepEqual(caught.output, { caught: { message: 'the service is down', code: 'E_DOWN', isError: true }, after: 'fallback used' });
    assert.equal(calls.hopeless, 2);
    const hopeless = await stepNamed(app, caught.id, 'hopeless');
    assert.equal(hopeless.state, 'failed');
    assert.equal(hopeless.attempts, 2);
    assert.equal(hopeless.error.message, 'the service is down');
    assert.equal(hopeless.error.code, 'E_DOWN');

    let runId;
    await assert.rejects(jobs.fatal.triggerAndWait(null, { timeout: 15000 }), (error) => {
      assert.ok(error instanceof RunFailedError, `a RunFailedError, got ${error}`);
      assert.equal(error.code, 'ERR_RUN_FAILED');
      assert.equal(error.status, 'failed');
      assert.match(error.error, /no way through/);
      assert.match(error.message, /no way through/);
      runId = error.runId;
      return true;
    });
    assert.equal(calls.fatal, 2);
    const run = await app.getRun(runId);
    assert.equal(run.status, 'failed');
    assert.match(run.error, /no way through/);
    assert.equal(run.output, undefined);
  });
});

test('Promise.all over five steps runs each once', async () => {
  const counts = [0, 0, 0, 0, 0];
  const fanOut = defineJob({
    name: 'fan-out',
    run: async (step) => {
      const results = await Promise.all(counts.map((_, i) => step.run(`part-${i}`, async () => {
        counts[i]++;
        await sleep(10 * (5 - i));
        return i * i;
      })));
      await step.sleep('after', 100);
      const sum = await step.run('sum', () => results.reduce((a, b) => a + b, 0));
      return { results, sum };
    },
  });
  await withApp({ fanOut }, async (app, { fanOut: job }) => {
    const { id, output } = await job.triggerAndWait(null, { timeout: 15000 });
    assert.deepEqual(output, { results: [0, 1, 4, 9, 16], sum: 30 });
    assert.deepEqual(counts, [1, 1, 1, 1, 1]);
    const names = (await app.getSteps(id)).map((s) => s.name).sort();
    assert.deepEqual(names, ['part-0', 'part-1', 'part-2', 'part-3', 'part-4', 'sleep:after', 'sum']);
  });
});

test('sleep and sleepUntil: the run is running while it sleeps, and completes after the time', async () => {
  const napper = defineJob({
    name: 'napper',
    run: async (step, input) => {
      const before = await step.run('before', () => Date.now());
      if (input.until) await step.sleepUntil('until', new Date(input.until));
      else await step.sleep('nap', input.ms);
      const after = await step.run('after', () => Date.now());
      return { before, after };
    },
  });
  await withApp({ napper }, async (app, { napper: job }) => {
    const run = await job.trigger({ ms: 400 });
    assert.equal(run.status, 'pending');
    const sleeping = await eventually(() => stepNamed(app, run.id, 'sleep:nap'), 10000, 'the sleep step');
    assert.equal(sleeping.state, 'sleeping');
    assert.ok(!Number.isNaN(Date.parse(sleeping.until)));
    assert.equal(await statusOf(app, run.id), 'running');
    const ended = await app.waitForRun(run.id, WAIT);
    assert.equal(ended.status, 'completed');
    assert.ok(ended.output.after - ended.output.before >= 400, `slept ${ended.output.after - ended.output.before} ms`);
    assert.equal((await stepNamed(app, run.id, 'sleep:nap')).state, 'done');

    const until = Date.now() + 400;
    const second = await job.trigger({ until });
    await eventually(async () => (await stepNamed(app, second.id, 'sleep:until'))?.state === 'sleeping', 10000, 'the sleepUntil step');
    assert.equal(await statusOf(app, second.id), 'running');
    const done = await app.waitForRun(second.id, WAIT);
    assert.equal(done.status, 'completed');
    assert.ok(done.output.after >= until, `woke ${until - done.output.after} ms early`);
  });
});

test('awaitEvent and app.emitEvent: wakes the waiting runs, keeps the last payload until clearEvent, times out with a TimeoutError', async () => {
  const waiter = defineJob({
    name: 'waiter',
    run: async (step, input) => ({ got: await step.awaitEvent(input.event) }),
  });
  const patient = defineJob({
    name: 'patient',
    run: async (step) => {
      try {
        return { got: await step.awaitEvent('never', { timeoutMs: 300 }) };
      } catch (error) {
        return { timedOut: error instanceof TimeoutError, code: error.code, message: error.message };
      }
    },
  });
  const waiting = (app, id, name) => eventually(async () => (await stepNamed(app, id, `event:${name}`))?.state === 'waiting', 10000, `run ${id} to wait for ${name}`);
  await withApp({ waiter, patient }, async (app, jobs) => {
    const first = await jobs.waiter.trigger({ event: 'approved' });
    await waiting(app, first.id, 'approved');
    assert.equal(await statusOf(app, first.id), 'running');
    assert.equal(await app.emitEvent('approved', { by: 'ann' }), 1);
    assert.deepEqual((await app.waitForRun(first.id, WAIT)).output, { got: { by: 'ann' } });

    // The last payload is kept: a later run receives it at once.
    const later = await jobs.waiter.trigger({ event: 'approved' });
    assert.deepEqual((await app.waitForRun(later.id, WAIT)).output, { got: { by: 'ann' } });
    assert.equal((await stepNamed(app, later.id, 'event:approved')).state, 'done');

    // Cleared: the next run waits for a new emit.
    await app.clearEvent('approved');
    const after = await jobs.waiter.trigger({ event: 'approved' });
    await waiting(app, after.id, 'approved');
    await sleep(200);
    assert.equal(await statusOf(app, after.id), 'running');
    assert.equal(await app.emitEvent('approved', 'second'), 1);
    assert.deepEqual((await app.waitForRun(after.id, WAIT)).output, { got: 'second' });

    // Every waiting run is woken; the count says how many.
    const two = [await jobs.waiter.trigger({ event: 'go' }), await jobs.waiter.trigger({ event: 'go' })];
    for (const run of two) await waiting(app, run.id, 'go');
    assert.equal(await app.emitEvent('go', 7), 2);
    for (const run of two) assert.deepEqual((await app.waitForRun(run.id, WAIT)).output, { got: 7 });
    assert.equal(await app.emitEvent('nobody-waits'), 0);

    const started = Date.now();
    const timed = await jobs.patient.trigger(null);
    const ended = await app.waitForRun(timed.id, WAIT);
    assert.ok(Date.now() - started >= 300, 'not before the timeout');
    assert.equal(ended.status, 'completed');
    assert.equal(ended.output.timedOut, true);
    assert.equal(ended.output.code, 'ERR_TIMEOUT');
    assert.match(ended.output.message, /never/);
    assert.equal((await stepNamed(app, timed.id, 'event:never')).state, 'failed');
  });
});

test('step.emitEvent inside one job wakes another job awaiting the event', async () => {
  const listener = defineJob({ name: 'listener', run: async (step) => step.awaitEvent('ping') });
  const emitter = defineJob({
    name: 'emitter',
    run: async (step, input) => {
      await step.emitEvent('ping', { from: input.from });
      return 'sent';
    },
  });
  await withApp({ listener, emitter }, async (app, jobs) => {
    const waiting = await jobs.listener.trigger(null);
    await eventually(async () => (await stepNamed(app, waiting.id, 'event:ping'))?.state === 'waiting', 10000, 'the listener to wait');
    const sent = await jobs.emitter.triggerAndWait({ from: 'emitter' }, { timeout: 15000 });
    assert.equal(sent.output, 'sent');
    assert.deepEqual((await app.getSteps(sent.id)).map((s) => [s.name, s.state]), [['emit:ping', 'done']]);
    assert.deepEqual((await app.waitForRun(waiting.id, WAIT)).output, { from: 'emitter' });
  });
});

test('spawn and join: children are runs, join returns their outputs or throws their error, cancelling the parent cancels its children', async () => {
  const childCalls = { n: 0 };
  const child = defineJob({
    name: 'child',
    run: async (step, input) => {
      if (input.sleepMs) await step.sleep('long', input.sleepMs);
      return step.run('double', () => {
        childCalls.n++;
        if (input.fail) throw new Error(`child ${input.n} broke`);
        return input.n * 2;
      });
    },
  });
  const parent = defineJob({
    name: 'parent',
    run: async (step, input) => {
      const handles = [];
      for (const [i, item] of input.items.entries()) handles.push(await step.spawn(`kid-${i}`, child, item));
      const outputs = [];
      for (const [i, handle] of handles.entries()) {
        try {
          outputs.push({ ok: await step.join(`kid-${i}`, handle) });
        } catch (error) {
          outputs.push({ error: error.message });
        }
      }
      return { outputs, children: handles.map((h) => h.runId) };
    },
  });
  await withApp({ child, parent }, async (app, jobs) => {
    const { id, output } = await jobs.parent.triggerAndWait({ items: [{ n: 1 }, { n: 2 }] }, { timeout: 15000 });
    assert.deepEqual(output.outputs, [{ ok: 2 }, { ok: 4 }]);
    assert.equal(childCalls.n, 2);
    const children = await jobs.child.getRuns();
    assert.equal(children.length, 2);
    for (const run of children) {
      assert.equal(run.status, 'completed');
      assert.equal(run.parentId, id);
      assert.ok(output.children.includes(run.id));
    }

    const failing = await jobs.parent.triggerAndWait({ items: [{ n: 3 }, { n: 4, fail: true }] }, { timeout: 15000 });
    assert.equal(failing.output.outputs[0].ok, 6);
    assert.match(failing.output.outputs[1].error, /child 4 broke/);
    assert.equal(await statusOf(app, failing.output.children[1]), 'failed');

    // Cancelling the parent cancels the child it waits for.
    const waitingParent = await jobs.parent.trigger({ items: [{ n: 5, sleepMs: 60000 }] });
    const kid = await eventually(async () => {
      const runs = await jobs.child.getRuns({ status: 'running' });
      return runs.find((r) => r.parentId === waitingParent.id);
    }, 10000, 'the sleeping child');
    await eventually(async () => (await stepNamed(app, waitingParent.id, 'join:kid-0'))?.state === 'waiting', 10000, 'the parent to join');
    assert.equal(await app.cancel(waitingParent.id), true);
    assert.equal((await app.waitForRun(waitingParent.id, WAIT)).status, 'cancelled');
    assert.equal((await app.waitForRun(kid.id, WAIT)).status, 'cancelled');
    assert.equal(await app.cancel(waitingParent.id), false, 'nothing left to cancel');

    // A parent cancelled through the client (as `reprise cancel` does) takes its child with
    // it at the child's next attempt (here: when its sleep ends).
    const other = await jobs.parent.trigger({ items: [{ n: 6, sleepMs: 400 }] });
    await eventually(async () => (await stepNamed(app, other.id, 'join:kid-0'))?.state === 'waiting', 10000, 'the second parent to join');
    const calls = childCalls.n;
    await app.client.cancelInstance(other.id, 'from the command line');
    assert.equal((await app.waitForRun(other.id, WAIT)).status, 'cancelled');
    const orphan = (await jobs.child.getRuns()).find((r) => r.parentId === other.id);
    assert.equal((await app.waitForRun(orphan.id, WAIT)).status, 'cancelled');
    assert.equal(childCalls.n, calls, 'the child of a cancelled parent ran no more steps');
  });
});

test('idempotencyKey: a second trigger with the key returns the existing run, also under concurrent triggers', async () => {
  let calls = 0;
  const once = defineJob({
    name: 'once',
    run: async (step, input) => step.run('work', () => {
      calls++;
      return input;
    }),
  });
  await withApp({ once }, async (app, { once: job }) => {
    const first = await job.trigger('a', { idempotencyKey: 'key-1' });
    const second = await job.trigger('b', { idempotencyKey: 'key-1' });
    assert.equal(second.id, first.id);
    assert.deepEqual(second.payload, 'a', 'the existing run, with its input');
    assert.equal((await app.getRuns({ jobName: 'once' })).length, 1);

    const concurrent = await Promise.all(Array.from({ length: 8 }, (_, i) => job.trigger(i, { idempotencyKey: 'key-2' })));
    assert.equal(new Set(concurrent.map((r) => r.id)).size, 1);
    assert.notEqual(concurrent[0].id, first.id);
    const runs = await app.getRuns({ jobName: 'once' });
    assert.equal(runs.length, 2);
    for (const run of runs) assert.equal((await app.waitForRun(run.id, WAIT)).status, 'completed');
    assert.equal(calls, 2);
    assert.equal((await job.trigger('c', { idempotencyKey: 'key-1' })).status, 'completed', 'a finished run is returned too');
    assert.equal((await app.getRuns({ jobName: 'once' })).length, 2);
  });
});

/** A job whose runs record, in steps, when they started and ended (200 ms apart). */
const serialJob = () => defineJob({
  name: 'serial',
  run: async (step, input) => {
    const start = await step.run('start', () => Date.now());
    await step.sleep('work', 200);
    const end = await step.run('end', () => Date.now());
    return { i: input.i, start, end };
  },
});

/** Polls the runs' statuses until all have ended: the distinct snapshots seen, in order. */
async function watchStatuses(app, runs) {
  const snapshots = [];
  for (;;) {
    const statuses = await Promise.all(runs.map((r) => statusOf(app, r.id)));
    if (snapshots.length === 0 || snapshots.at(-1).join() !== statuses.join()) snapshots.push(statuses);
    if (statuses.every((s) => ENDED.includes(s))) return snapshots;
    await sleep(10);
  }
}

test('concurrencyKey: one run of a key at a time, the others pending meanwhile; another key is not blocked', async () => {
  await withApp({ serial: serialJob() }, async (app, { serial: job }) => {
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await job.trigger({ i }, { concurrencyKey: 'org-1' }));
    assert.equal(runs[0].concurrencyKey, 'org-1');
    const other = await job.trigger({ i: 99 }, { concurrencyKey: 'org-2' });

    const snapshots = await watchStatuses(app, runs);
    const first = snapshots.find((s) => s.includes('running'));
    assert.deepEqual([...first].sort(), ['pending', 'pending', 'running'], `while the first runs, the others are pending (${snapshots.join(' | ')})`);
    const outputs = [];
    for (const run of runs) {
      const ended = await app.waitForRun(run.id, WAIT);
      assert.equal(ended.status, 'completed');
      assert.equal(ended.concurrencyKey, 'org-1');
      outputs.push(ended.output);
    }
    // The steps of the runs of one key never overlap in time.
    const byStart = [...outputs].sort((a, b) => a.start - b.start);
    for (let i = 1; i < byStart.length; i++) {
      assert.ok(byStart[i].start >= byStart[i - 1].end, `run ${byStart[i].i} started (${byStart[i].start}) before run ${byStart[i - 1].i} ended (${byStart[i - 1].end})`);
    }
    const alone = await app.waitForRun(other.id, WAIT);
    assert.equal(alone.status, 'completed');
    assert.ok(alone.output.start < byStart[2].start, 'the run of another key did not wait for the queue of org-1');
  });
});

// A run takes its place in the key's queue at trigger (job_queue_key), so the waiting runs
// start in trigger order even though their first attempts begin concurrently.
test('concurrencyKey: the runs of a key start in trigger order', async () => {
  await withApp({ serial: serialJob() }, async (app, { serial: job }) => {
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await job.trigger({ i }, { concurrencyKey: 'org-1' }));
    const outputs = [];
    for (const run of runs) outputs.push((await app.waitForRun(run.id, WAIT)).output);
    for (let i = 1; i < outputs.length; i++) {
      assert.ok(outputs[i].start >= outputs[i - 1].end, `run ${i} should start (${outputs[i].start}) after run ${i - 1} ended (${outputs[i - 1].end})`);
    }
  });
});

// A run frees its key once its instance has ended, so the next one never shows 'running'
// beside it (their steps never overlap either: the test above).
test('concurrencyKey: never two runs of a key show running at once', async () => {
  await withApp({ serial: serialJob() }, async (app, { serial: job }) => {
    const runs = [];
    for (let i = 0; i < 4; i++) runs.push(await job.trigger({ i }, { concurrencyKey: 'org-1' }));
    const snapshots = await watchStatuses(app, runs);
    assert.ok(snapshots.every((s) => s.filter((x) => x === 'running').length <= 1), `never two running (${snapshots.join(' | ')})`);
  });
});

test('app.cancel aborts step.signal and the run ends cancelled', async () => {
  const aborted = [];
  const stuck = defineJob({
    name: 'stuck',
    run: async (step) => step.run('wait', () => new Promise((resolve) => {
      step.signal.addEventListener('abort', () => {
        aborted.push(Date.now());
        resolve('aborted');
      });
    })),
  });
  await withApp({ stuck }, async (app, { stuck: job }) => {
    const started = [];
    app.on('step:start', (e) => started.push(e.runId));
    const cancelled = [];
    app.on('run:cancel', (e) => cancelled.push(e.runId));
    const run = await job.trigger(null);
    await eventually(() => started.includes(run.id), 10000, 'the step to start');
    assert.equal(await statusOf(app, run.id), 'running');
    const at = Date.now();
    assert.equal(await app.cancel(run.id, 'stop it'), true);
    await eventually(() => aborted.length === 1, 5000, 'the signal to abort');
    assert.ok(aborted[0] - at < 5000);
    const ended = await app.waitForRun(run.id, WAIT);
    assert.equal(ended.status, 'cancelled');
    assert.deepEqual(cancelled, [run.id]);
    // triggerAndWait gives up after its timeout (the run goes on until cancelled).
    await assert.rejects(job.triggerAndWait(null, { timeout: 200, idempotencyKey: 'second' }), (error) => error.code === 'ERR_TIMEOUT');
    assert.equal(await app.cancel('stuck:second'), true);
    assert.equal((await app.waitForRun('stuck:second', WAIT)).status, 'cancelled');
    await eventually(() => aborted.length === 2, 5000, 'the second signal');
  }, { lockTimeoutMs: 1500 });
});

test('cancelAfterMs cancels a long-sleeping run; cancelIfPendingMs cancels a run blocked behind a concurrency key', async () => {
  const sleeper = defineJob({
    name: 'sleeper',
    run: async (step) => {
      await step.sleep('long', 60000);
      return 'woke';
    },
  });
  const holder = defineJob({
    name: 'holder',
    run: async (step) => step.awaitEvent('let-go'),
  });
  await withApp({ sleeper, holder }, async (app, jobs) => {
    const started = Date.now();
    const long = await jobs.sleeper.trigger(null, { cancelAfterMs: 300 });
    const ended = await app.waitForRun(long.id, WAIT);
    assert.equal(ended.status, 'cancelled');
    assert.ok(Date.now() - started >= 300);
    await assert.rejects(jobs.sleeper.triggerAndWait(null, { cancelAfterMs: 200, timeout: 15000 }), (error) => {
      assert.ok(error instanceof RunFailedError);
      assert.equal(error.status, 'cancelled');
      assert.match(error.message, /was cancelled/);
      return true;
    });

    const first = await jobs.holder.trigger(null, { concurrencyKey: 'k' });
    await eventually(async () => (await stepNamed(app, first.id, 'event:let-go'))?.state === 'waiting', 10000, 'the holder to wait');
    const blocked = await jobs.holder.trigger(null, { concurrencyKey: 'k', cancelIfPendingMs: 300 });
    const gaveUp = await app.waitForRun(blocked.id, WAIT);
    assert.equal(gaveUp.status, 'cancelled');
    assert.equal(gaveUp.startedAt, undefined, 'it never started');
    assert.equal(await statusOf(app, first.id), 'running');
    // A pending limit does not touch a run that starts in time.
    const third = await jobs.holder.trigger(null, { concurrencyKey: 'k', cancelIfPendingMs: 60000 });
    assert.equal(await app.emitEvent('let-go', 'done'), 1);
    assert.equal((await app.waitForRun(first.id, WAIT)).output, 'done');
    assert.equal((await app.waitForRun(third.id, WAIT)).output, 'done', 'the kept payload');
  });
});

test('progress and logs are stored with the run, readable from a client-only app, and not repeated by re-runs', async () => {
  const reporter = defineJob({
    name: 'reporter',
    run: async (step) => {
      step.progress(2, 5, 'msg');
      step.log.info('hello', { a: 1 });
      step.log.warn('careful');
      const go = await step.awaitEvent('finish');
      step.log.info('resumed', { go });
      await step.sleep('settle', 100);
      await step.run('last', () => {
        step.log.error('inside a step', [1, 2]);
        return go;
      });
      step.progress(5, 5);
      return go;
    },
  });
  const app = await openApp();
  let client;
  try {
    const { reporter: job } = app.register({ reporter });
    await app.start();
    const run = await job.trigger(null);
    await eventually(async () => (await stepNamed(app, run.id, 'event:finish'))?.state === 'waiting', 10000, 'the run to wait');
    await eventually(async () => (await app.getRun(run.id)).progress, 5000, 'the progress');
    assert.deepEqual((await app.getRun(run.id)).progress, { current: 2, total: 5, message: 'msg' });

    client = await createReprise({ ...storageOf(app.location), worker: false });
    const seen = await client.getRun(run.id);
    assert.equal(seen.status, 'running');
    assert.deepEqual(seen.progress, { current: 2, total: 5, message: 'msg' });
    assert.deepEqual((await client.getLogs(run.id)).map((l) => [l.level, l.message, l.data]), [['info', 'hello', { a: 1 }], ['warn', 'careful', null]]);

    assert.equal(await client.emitEvent('finish', 'go'), 1, 'a client-only app emits too');
    assert.equal((await app.waitForRun(run.id, WAIT)).output, 'go');
    const logs = await app.getLogs(run.id);
    assert.deepEqual(logs.map((l) => [l.level, l.message, l.data]), [['info', 'hello', { a: 1 }], ['warn', 'careful', null], ['info', 'resumed', { go: 'go' }], ['error', 'inside a step', [1, 2]]]);
    for (const line of logs) {
      assert.equal(typeof line.seq, 'number');
      assert.ok(!Number.isNaN(Date.parse(line.createdAt)));
    }
    assert.deepEqual(logs.map((l) => l.seq), [...logs.map((l) => l.seq)].sort((a, b) => a - b));
    assert.deepEqual((await client.getRun(run.id)).progress, { current: 5, total: 5 });
    assert.deepEqual((await app.getLogs(run.id, { afterSeq: logs[0].seq })).map((l) => l.message), ['careful', 'resumed', 'inside a step']);
  } finally {
    if (client) await client.stop();
    await app.close();
  }
});

test('app.on delivers the run and step events of this process, unsubscribes; app.subscribe streams one run', async () => {
  let broken = true;
  const evented = defineJob({
    name: 'evented',
    run: async (step, input) => {
      const value = await step.run('compute', () => input * 2);
      step.progress(1, 1, 'computed');
      step.log.info('computed', { value });
      if (input < 0) await step.run('bad', () => {
        if (broken) throw new Error('negative input');
        return null;
      });
      return value;
    },
  });
  const gated = defineJob({
    name: 'gated',
    run: async (step) => {
      await step.run('first', () => 1);
      await step.awaitEvent('open');
      step.log.info('opened');
      return step.run('second', () => 2);
    },
  });
  await withApp({ evented, gated }, async (app, jobs) => {
    const types = ['run:trigger', 'run:start', 'run:complete', 'run:fail', 'run:retry', 'run:progress', 'step:start', 'step:complete', 'step:fail', 'log:write'];
    const events = [];
    const offs = types.map((type) => app.on(type, (e) => events.push(e)));
    assert.throws(() => app.on('run:nope', () => {}), InvalidArgumentError);

    const ok = await jobs.evented.triggerAndWait(21, { timeout: 15000 });
    const mine = events.filter((e) => e.runId === ok.id);
    assert.deepEqual(mine.map((e) => e.type), ['run:trigger', 'run:start', 'step:start', 'step:complete', 'run:progress', 'log:write', 'run:complete']);
    for (const e of mine) {
      assert.equal(e.jobName, 'evented');
      assert.ok(!Number.isNaN(Date.parse(e.timestamp)));
    }
    assert.equal(mine[0].input, 21);
    assert.equal(mine[3].stepName, 'compute');
    assert.equal(mine[3].output, 42);
    assert.deepEqual(mine[4].progress, { current: 1, total: 1, message: 'computed' });
    assert.deepEqual([mine[5].level, mine[5].message, mine[5].data], ['info', 'computed', { value: 42 }]);
    assert.equal(mine[6].output, 42);

    const failed = await jobs.evented.trigger(-1);
    assert.equal((await app.waitForRun(failed.id, WAIT)).status, 'failed');
    const failEvents = events.filter((e) => e.runId === failed.id);
    const stepFail = failEvents.find((e) => e.type === 'step:fail');
    assert.equal(stepFail.stepName, 'bad');
    assert.equal(stepFail.error, 'negative input');
    assert.match(failEvents.find((e) => e.type === 'run:fail').error, /negative input/);
    assert.equal(failEvents.at(-1).type, 'run:fail');

    // A retry re-runs only the failed step, and says so.
    broken = false;
    await app.retry(failed.id);
    assert.ok(events.some((e) => e.type === 'run:retry' && e.runId === failed.id));
    await eventually(async () => (await statusOf(app, failed.id)) === 'completed', 10000, 'the retried run');
    assert.equal((await app.getRun(failed.id)).output, -2);
    assert.deepEqual((await app.getLogs(failed.id)).map((l) => l.message), ['computed'], 'the retry does not log again');

    for (const off of offs) off();
    const count = events.length;
    await jobs.evented.triggerAndWait(1, { timeout: 15000 });
    assert.equal(events.length, count, 'no events after unsubscribing');

    // subscribe: a stream of one run's events, closed at its end.
    const gatedRun = await jobs.gated.trigger(null);
    const stream = app.subscribe(gatedRun.id, { intervalMs: 50 });
    const read = (async () => {
      const got = [];
      for await (const event of stream) got.push(event);
      return got;
    })();
    await eventually(async () => (await stepNamed(app, gatedRun.id, 'event:open'))?.state === 'waiting', 10000, 'the gated run to wait');
    await app.emitEvent('open', true);
    const streamed = await read;
    const kinds = streamed.map((e) => e.type);
    assert.equal(kinds[0], 'run:start');
    assert.equal(kinds.at(-1), 'run:complete');
    assert.equal(streamed.at(-1).output, 2);
    assert.deepEqual(streamed.filter((e) => e.type === 'step:complete').map((e) => e.stepName), ['first', 'event:open', 'second']);
    assert.deepEqual(streamed.filter((e) => e.type === 'log:write').map((e) => e.message), ['opened']);
    for (const e of streamed) assert.equal(e.runId, gatedRun.id);
  });
});

test('schemas: bad input is refused at trigger with nothing stored; a bad output fails the run', async () => {
  const numberInput = {
    parse(value) {
      if (!value || typeof value.n !== 'number') throw new Error('n must be a number');
      return { n: value.n, parsed: true };
    },
  };
  const okOutput = {
    parse(value) {
      if (!value || value.ok !== true) throw new Error('ok must be true');
      return value;
    },
  };
  const checked = defineJob({ name: 'checked', input: numberInput, output: okOutput, run: async (step, input) => ({ ok: input.n > 0, input }) });
  await withApp({ checked }, async (app, { checked: job }) => {
    for (const bad of [{ n: 'x' }, null, undefined]) {
      await assert.rejects(job.trigger(bad), (error) => {
        assert.ok(error instanceof InvalidArgumentError);
        assert.equal(error.code, 'ERR_INVALID_ARGUMENT');
        assert.match(error.message, /n must be a number/);
        return true;
      });
    }
    await assert.rejects(job.batchTrigger([{ n: 1 }, { n: 'y' }]), (error) => error.code === 'ERR_INVALID_ARGUMENT' && /items\[1\]/.test(error.message));
    assert.deepEqual(await app.getRuns(), []);
    assert.equal((await app.client.listInstances()).instances.length, 0);

    const good = await job.triggerAndWait({ n: 1, extra: 'dropped' }, { timeout: 15000 });
    assert.deepEqual(good.output, { ok: true, input: { n: 1, parsed: true } });
    assert.deepEqual((await app.getRun(good.id)).payload, { n: 1, parsed: true }, 'the parsed input is stored');

    await assert.rejects(job.triggerAndWait({ n: -1 }, { timeout: 15000 }), (error) => {
      assert.ok(error instanceof RunFailedError);
      assert.match(error.error, /output/);
      assert.match(error.error, /ok must be true/);
      return true;
    });
    assert.equal((await app.getRuns({ status: 'failed' })).length, 1);
  });
});

test('getRuns filters and pages; retry re-runs only the failed step; deleteRun; batchTrigger; getJob and the handle reads', async () => {
  const counts = { first: 0, second: 0 };
  let broken = true;
  const ok = defineJob({ name: 'ok', run: async (step, input) => step.run('id', () => input) });
  const fragile = defineJob({
    name: 'fragile',
    run: async (step) => {
      const a = await step.run('first', () => {
        counts.first++;
        return 'a';
      });
      const b = await step.run('second', () => {
        counts.second++;
        if (broken) throw new Error('second is broken');
        return 'b';
      });
      return a + b;
    },
  });
  await withApp({ ok, fragile }, async (app, jobs) => {
    assert.equal(app.getJob('ok'), jobs.ok);
    assert.equal(app.getJob('fragile'), jobs.fragile);
    assert.equal(app.getJob('missing'), undefined);

    const oks = [];
    for (let i = 0; i < 3; i++) {
      oks.push((await jobs.ok.triggerAndWait(i, { timeout: 15000 })).id);
      await sleep(5);
    }
    const bad = await jobs.fragile.trigger(null);
    assert.equal((await app.waitForRun(bad.id, WAIT)).status, 'failed');

    assert.equal((await app.getRuns()).length, 4);
    assert.deepEqual((await app.getRuns({ status: 'completed' })).map((r) => r.id).sort(), [...oks].sort());
    assert.deepEqual((await app.getRuns({ status: 'failed' })).map((r) => r.id), [bad.id]);
    assert.deepEqual(await app.getRuns({ status: 'running' }), []);
    assert.deepEqual(await app.getRuns({ jobName: 'ok', status: 'failed' }), []);
    const byName = await app.getRuns({ jobName: 'ok' });
    assert.deepEqual(byName.map((r) => r.id), [...oks].reverse(), 'newest first');
    assert.deepEqual((await app.getRuns({ jobName: 'ok', limit: 2 })).map((r) => r.id), [oks[2], oks[1]]);
    assert.deepEqual((await app.getRuns({ jobName: 'ok', limit: 2, offset: 2 })).map((r) => r.id), [oks[0]]);
    assert.deepEqual((await app.getRuns({ status: 'completed', limit: 1, offset: 1 })).map((r) => r.id), [oks[1]]);
    assert.deepEqual(await app.getRuns({ jobName: 'ok', offset: 3 }), []);
    await assert.rejects(app.getRuns({ status: 'done' }), InvalidArgumentError);

    // Handles read their own job's runs only.
    assert.equal((await jobs.ok.getRun(oks[0])).id, oks[0]);
    assert.equal(await jobs.fragile.getRun(oks[0]), null);
    assert.deepEqual((await jobs.fragile.getRuns()).map((r) => r.id), [bad.id]);
    assert.equal(await app.getRun('no-such-run'), null);

    // retry: after the fix, only the failed step runs again.
    assert.deepEqual(counts, { first: 1, second: 1 });
    await assert.rejects(app.retry(oks[0]), InvalidStateError);
    broken = false;
    await app.retry(bad.id);
    await eventually(async () => (await statusOf(app, bad.id)) === 'completed', 10000, 'the retried run');
    assert.equal((await app.getRun(bad.id)).output, 'ab');
    assert.deepEqual(counts, { first: 1, second: 2 });

    // deleteRun
    await app.deleteRun(oks[0]);
    assert.equal(await app.getRun(oks[0]), null);
    assert.deepEqual(await app.getSteps(oks[0]), []);
    assert.equal((await app.getRuns({ jobName: 'ok' })).length, 2);
    await assert.rejects(app.deleteRun(oks[0]), (error) => error.code === 'ERR_NOT_FOUND');

    // batchTrigger: plain inputs and { input, options } together.
    const batch = await jobs.ok.batchTrigger(['x', { input: 'y', options: { idempotencyKey: 'batch-y' } }, { input: 'z' }, 42]);
    assert.deepEqual(batch.map((r) => [r.status, r.payload]), [['pending', 'x'], ['pending', 'y'], ['pending', 'z'], ['pending', 42]]);
    assert.equal(new Set(batch.map((r) => r.id)).size, 4);
    const outputs = [];
    for (const run of batch) outputs.push((await app.waitForRun(run.id, WAIT)).output);
    assert.deepEqual(outputs, ['x', 'y', 'z', 42]);
    const again = await jobs.ok.batchTrigger([{ input: 'y2', options: { idempotencyKey: 'batch-y' } }]);
    assert.equal(again[0].id, batch[1].id, 'the idempotency key holds in a batch');
    assert.equal(again[0].status, 'completed');
    assert.equal((await app.getRuns({ jobName: 'ok' })).length, 6);
    await assert.rejects(app.deleteRun('no-such-run'), (error) => error.code === 'ERR_NOT_FOUND');
  });
});

test('a deleteRun of a run that has not ended is refused', async () => {
  const waits = defineJob({ name: 'waits', run: async (step) => step.awaitEvent('never-comes') });
  await withApp({ waits }, async (app, { waits: job }) => {
    const run = await job.trigger(null);
    await assert.rejects(app.deleteRun(run.id), InvalidStateError);
    await eventually(async () => (await statusOf(app, run.id)) === 'running', 10000, 'the run to start');
    await assert.rejects(app.deleteRun(run.id), InvalidStateError);
    assert.equal(await app.cancel(run.id), true);
    assert.equal((await app.waitForRun(run.id, WAIT)).status, 'cancelled');
    await app.deleteRun(run.id);
    assert.equal(await app.getRun(run.id), null);
  });
});

test('a suspended run holds no JavaScript memory: the frame of its function is collected while it waits', async () => {
  const frames = [];
  const held = defineJob({
    name: 'held',
    run: async (step) => {
      const big = { data: new Array(10000).fill(1) };
      frames.push(new WeakRef(big));
      const got = await step.awaitEvent('release');
      return big.data.length + got;
    },
  });
  await withApp({ held }, async (app, { held: job }) => {
    const runs = [await job.trigger(null), await job.trigger(null)];
    for (const run of runs) await eventually(async () => (await stepNamed(app, run.id, 'event:release'))?.state === 'waiting', 10000, 'the runs to wait');
    assert.equal(frames.length, 2);
    await eventually(async () => {
      collectGarbage();
      await sleep(20);
      return frames.every((f) => f.deref() === undefined);
    }, 5000, 'the suspended frames to be collected');
    assert.equal(await app.emitEvent('release', 1), 2);
    for (const run of runs) assert.equal((await app.waitForRun(run.id, WAIT)).output, 10001);
  });
});

test('runs are instances: listInstances and getInstanceInfo see them under the job name', async () => {
  const visible = defineJob({ name: 'visible', run: async (step, input) => step.run('echo', () => input) });
  await withApp({ visible }, async (app, { visible: job }) => {
    const { id } = await job.triggerAndWait({ hello: 'world' }, { timeout: 15000 });
    const listed = (await app.client.listInstances()).instances;
    const mine = listed.find((i) => i.instanceId === id);
    assert.ok(mine, 'the run is listed');
    assert.equal(mine.name, 'visible');
    assert.equal((await app.client.listInstances({ name: 'visible' })).instances.length, 1);
    const info = await app.client.getInstanceInfo(id);
    assert.equal(info.instanceId, id);
    assert.equal(info.name, 'visible');
    assert.equal(info.status, 'Completed');
    assert.deepEqual(info.output, { hello: 'world' });
  });
});
