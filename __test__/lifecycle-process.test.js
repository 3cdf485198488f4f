'use strict';
// A started runtime keeps its process alive like a listening server; unref() or
// keepAlive: false let a script exit by itself. SIGINT/SIGTERM with no listener of the
// application's shut every runtime down gracefully, then the process exits with 128 + the
// signal number; a second signal exits at once. Each case runs a worker in a child process.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { SqliteProvider, Client, Runtime } = require('..');
const { dbPath, sleep, runtimeOptions, eventually } = require('./helpers');

// argv: db file, options JSON ({activityMs, runtime options}), mode. Prints `ready` once
// started, `started <n>` and `finished <n>` around each Slow activity.
const WORKER = `
const { SqliteProvider, Client, Runtime } = require(${JSON.stringify(path.join(__dirname, '..'))});
const [db, optionsJson, mode] = process.argv.slice(1);
const { activityMs = 0, ...options } = JSON.parse(optionsJson);
(async () => {
  const provider = await SqliteProvider.open(db);
  const client = new Client(provider);
  const runtime = new Runtime(provider, options);
  runtime.registerActivity('Slow', async (ctx, n) => {
    console.log('started ' + n);
    await new Promise((r) => setTimeout(r, activityMs));
    console.log('finished ' + n);
    return 'result ' + n;
  });
  runtime.registerOrchestration('Flow', function* (ctx, n) {
    return yield ctx.scheduleActivity('Slow', n);
  });
  if (mode === 'unref') runtime.unref();
  if (mode === 'own-listener') {
    // The application owns SIGTERM: the runtime must keep working after it.
    process.on('SIGTERM', async () => {
      console.log('own listener');
      await client.startOrchestration('after-signal', 'Flow', 2);
      const r = await client.waitForOrchestration('after-signal', 10000);
      console.log('after signal ' + r.output);
      await runtime.shutdown();
    });
  }
  await runtime.start();
  console.log('ready');
  if (mode === 'flow') await client.startOrchestration('flow-1', 'Flow', 1);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
`;

function worker(db, options = {}, mode = '') {
  const child = spawn(process.execPath, ['-e', WORKER, db, JSON.stringify(runtimeOptions(options)), mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.out = '';
  child.err = '';
  child.stdout.on('data', (d) => (child.out += d));
  child.stderr.on('data', (d) => (child.err += d));
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.printed = (line) => eventually(() => child.out.split('\n').includes(line) || child.exitCode !== null, 10000, line).then(() => {
    assert.ok(child.out.split('\n').includes(line), `the worker exited (${child.exitCode}) before printing '${line}': ${child.err}`);
  });
  return child;
}

test('a runtime that is only started keeps its process alive; SIGINT then exits 130', async () => {
  const child = worker(dbPath('alive'));
  await child.printed('ready');
  await sleep(1500);
  assert.equal(child.exitCode, null, `the worker exited by itself: ${child.err}`);
  child.kill('SIGINT');
  assert.deepEqual(await child.exited, { code: 130, signal: null });
});

test('with keepAlive: false or unref() a started script exits 0 by itself', async () => {
  for (const [options, mode] of [[{ keepAlive: false }, ''], [{}, 'unref']]) {
    const child = worker(dbPath('unref'), options, mode);
    const exited = await child.exited;
    assert.deepEqual(exited, { code: 0, signal: null }, `${JSON.stringify(options)} ${mode}: ${child.err}`);
    assert.equal(child.out, 'ready\n');
  }
});

for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]]) {
  test(`${signal} lets the activity in flight finish, commits its result, then exits ${code}`, async () => {
    const db = dbPath(`drain-${signal}`);
    const child = worker(db, { activityMs: 500 }, 'flow');
    await child.printed('started 1');
    child.kill(signal);
    assert.deepEqual(await child.exited, { code, signal: null }, child.err);
    assert.equal(child.out, 'ready\nstarted 1\nfinished 1\n');

    // The result was recorded, not abandoned: no activity is left queued or leased, and
    // the instance finishes with it without running the activity again.
    const provider = await SqliteProvider.open(db);
    const client = new Client(provider);
    assert.deepEqual((await client.getQueueDepths()).worker, { delayed: 0, running: 0, visible: 0 });
    const runtime = new Runtime(provider, runtimeOptions());
    let reruns = 0;
    runtime.registerActivity('Slow', () => ++reruns);
    runtime.registerOrchestration('Flow', function* (ctx, n) {
      return yield ctx.scheduleActivity('Slow', n);
    });
    await runtime.start();
    try {
      const result = await client.waitForOrchestration('flow-1', 10000);
      assert.equal(result.output, 'result 1');
      assert.equal(reruns, 0);
    } finally {
      await runtime.shutdown(5000);
    }
  });
}

test('a second signal exits at once while the first shutdown waits on a long activity', async () => {
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
    const child = worker(dbPath('twice'), { activityMs: 60000 }, 'flow');
    await child.printed('started 1');
    child.kill(signal);
    await sleep(300);
    assert.equal(child.exitCode, null, 'the first signal waits for the activity');
    child.kill(signal);
    assert.deepEqual(await child.exited, { code, signal: null }, child.err);
    assert.ok(!child.out.includes('finished'), child.out);
  }
});

test('with its own SIGTERM listener the application owns the signal: the runtime keeps running', async () => {
  const child = worker(dbPath('own'), {}, 'own-listener');
  await child.printed('ready');
  child.kill('SIGTERM');
  // Exits 0 only because the listener shut the runtime down after using it.
  assert.deepEqual(await child.exited, { code: 0, signal: null }, child.err);
  assert.equal(child.out, 'ready\nown listener\nstarted 2\nfinished 2\nafter signal result 2\n');
});

test('the signal handlers are shared by the started runtimes and removed with the last one', async () => {
  const before = { SIGINT: process.listenerCount('SIGINT'), SIGTERM: process.listenerCount('SIGTERM') };
  const counts = () => ({ SIGINT: process.listenerCount('SIGINT') - before.SIGINT, SIGTERM: process.listenerCount('SIGTERM') - before.SIGTERM });
  const a = new Runtime(await SqliteProvider.open(dbPath('a')), runtimeOptions());
  const b = new Runtime(await SqliteProvider.open(dbPath('b')), runtimeOptions());
  assert.equal(a.unref(), a);
  assert.equal(a.ref(), a);
  assert.deepEqual(counts(), { SIGINT: 0, SIGTERM: 0 });
  await a.start();
  await b.start();
  assert.deepEqual(counts(), { SIGINT: 1, SIGTERM: 1 });
  await a.shutdown(5000);
  assert.deepEqual(counts(), { SIGINT: 1, SIGTERM: 1 });
  await b.shutdown(5000);
  assert.deepEqual(counts(), { SIGINT: 0, SIGTERM: 0 });
});
