'use strict';
// Job runs through the public API on SQLite, or on PostgreSQL with REPRISE_TEST_PROVIDER=
// postgres: idempotency and concurrency keys; cancellation (app.cancel, cancelAfterMs,
// cancelIfPendingMs); progress and logs, also read by a client-only app; app.on and
// app.subscribe; schemas; getRuns, retry, deleteRun, batchTrigger, getJob; a suspended
// run's frame is garbage; runs as instances.
const test = require('node:test');
const assert = require('node:assert/strict');
const { createReprise, defineJob, RunFailedError, InvalidArgumentError, InvalidStateError } = require('..');
const { eventually, sleep } = require('./helpers');
const { openApp, withApp, storageOf, ENDED, WAIT, statusOf, stepNamed, collectGarbage } = require('./jobs-helpers');

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
