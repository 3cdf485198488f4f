'use strict';
// Jobs (createReprise, defineJob) through the public API on SQLite, or on PostgreSQL with
// REPRISE_TEST_PROVIDER=postgres: steps run once and answer from the store when the function
// re-runs after a suspension; repeated names get #2, #3; step retries and stored errors;
// Promise.all over steps; sleep, sleepUntil, awaitEvent, emitEvent (kept payloads,
// clearEvent, timeouts); spawn/join and cancellation of children. jobs-runs.test.js has keys,
// cancellation, progress, logs, events, schemas and run management.
const test = require('node:test');
const assert = require('node:assert/strict');
const { defineJob, TimeoutError, RunFailedError } = require('..');
const { eventually, sleep } = require('./helpers');
const { withApp, WAIT, statusOf, byName, stepNamed } = require('./jobs-helpers');

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
