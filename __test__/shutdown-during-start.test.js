'use strict';
// shutdown() while start() is still pending stops the runtime: the start settles, then
// nothing runs and the file lock is free. Concurrent shutdowns all wait for the one stop.
const test = require('node:test');
const assert = require('node:assert/strict');
const { SqliteProvider, Runtime, Client } = require('..');
const { dbPath, sleep } = require('./helpers');

function make(provider, counter) {
  const runtime = new Runtime(provider, { keepAlive: false, pollIntervalMs: 20 });
  runtime.registerActivity('Count', () => {
    counter.runs += 1;
    return counter.runs;
  });
  runtime.registerOrchestration('Counts', function* (ctx) {
    return yield ctx.scheduleActivity('Count');
  });
  return runtime;
}

test('shutdown() during a pending start(): the start settles, nothing runs afterwards, the file lock is released', async () => {
  const file = dbPath('stop-while-starting');
  const provider = await SqliteProvider.open(file);
  const counter = { runs: 0 };
  const runtime = make(provider, counter);
  const starting = runtime.start();
  const stopping = runtime.shutdown(5000);
  const [started] = await Promise.allSettled([starting]);
  assert.equal(started.status, 'fulfilled');
  await stopping;
  // Nothing runs now: work stored after the shutdown stays pending.
  const client = new Client(provider);
  await client.startOrchestration('after', 'Counts');
  await sleep(300);
  assert.equal((await client.getInstanceInfo('after')).storedStatus, 'Pending');
  assert.equal(counter.runs, 0);
  // The lock is free: a new runtime on the file starts and runs the waiting work.
  const next = make(await SqliteProvider.open(file), counter);
  await next.start();
  assert.equal((await client.waitForOrchestration('after', 10000)).output, 1);
  await next.shutdown(5000);
  // A shut-down runtime cannot be started again, and shutdown stays a no-op.
  await assert.rejects(runtime.start(), (e) => e.code === 'ERR_INVALID_STATE');
  await runtime.shutdown();
});

test('shutdown() during a start() that fails resolves, and leaves the runtime startable', async () => {
  const file = dbPath('stop-while-failing');
  const holder = make(await SqliteProvider.open(file), { runs: 0 });
  await holder.start();
  const runtime = make(await SqliteProvider.open(file), { runs: 0 });
  const starting = runtime.start();
  const stopping = runtime.shutdown(5000);
  await assert.rejects(starting, (e) => e.code === 'ERR_LOCKED');
  await stopping;
  await holder.shutdown(5000);
  await runtime.start();
  await runtime.shutdown(5000);
});

test('a second concurrent shutdown() resolves only when the first has finished', async () => {
  const provider = await SqliteProvider.open(dbPath('double-stop'));
  let release;
  const gate = new Promise((r) => (release = r));
  const runtime = new Runtime(provider, { keepAlive: false });
  runtime.registerActivity('Slow', async () => {
    await gate;
    return 'done';
  });
  runtime.registerOrchestration('Slowly', function* (ctx) {
    return yield ctx.scheduleActivity('Slow');
  });
  await runtime.start();
  const client = new Client(provider);
  await client.startOrchestration('slow', 'Slowly');
  while ((await client.getInstanceInfo('slow')).storedStatus === 'Pending') await sleep(10);
  await sleep(100); // the activity is running
  const order = [];
  const first = runtime.shutdown(10000).then(() => order.push('first'));
  const second = runtime.shutdown(10000).then(() => order.push('second'));
  await sleep(200);
  assert.deepEqual(order, [], 'both wait for the running activity');
  release();
  await Promise.all([first, second]);
  assert.deepEqual(order, ['first', 'second']);
});

test('two shutdown() calls during start(): both resolve once the runtime has stopped', async () => {
  const provider = await SqliteProvider.open(dbPath('stop-twice-during-start'));
  const runtime = make(provider, { runs: 0 });
  const starting = runtime.start();
  const a = runtime.shutdown(5000);
  const b = runtime.shutdown(5000);
  await starting;
  let aDone = false;
  a.then(() => (aDone = true));
  await b;
  assert.ok(aDone, 'the second call resolved before the first');
  await assert.rejects(runtime.start(), (e) => e.code === 'ERR_INVALID_STATE');
});
