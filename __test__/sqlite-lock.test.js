'use strict';
// One runtime per SQLite file, whatever name the file is reached by: the lock is on the
// database file itself (by inode), so a symlink, a relative path from another folder or
// another process meets it; a file with two names (a hard link) is refused outright.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { SqliteProvider, Runtime, Client } = require('..');
const { dbPath, eventually, sleep } = require('./helpers');

const ROOT = path.join(__dirname, '..');

async function runtimeOn(location) {
  const provider = await SqliteProvider.open(location);
  const runtime = new Runtime(provider, { keepAlive: false });
  runtime.registerActivity('Touch', () => 'ok');
  runtime.registerOrchestration('Touches', function* (ctx) {
    return yield ctx.scheduleActivity('Touch');
  });
  return { provider, runtime };
}

const locked = (e) => e.code === 'ERR_LOCKED' && /another runtime is already running/.test(e.message);

test('a second runtime on the same file through a symlink, a relative path or another folder is refused with ERR_LOCKED', async () => {
  const file = dbPath('lock-names');
  const link = path.join(path.dirname(file), 'alias.db');
  fs.symlinkSync(file, link);
  const first = await runtimeOn(file);
  await first.runtime.start();
  try {
    const viaLink = await runtimeOn(link);
    await assert.rejects(viaLink.runtime.start(), locked);
    // Relative to another working folder: the same file by a different name.
    const relative = path.relative(process.cwd(), file);
    assert.notEqual(relative, file);
    const viaRelative = await runtimeOn(relative);
    await assert.rejects(viaRelative.runtime.start(), locked);
    const viaDots = await runtimeOn(path.join(path.dirname(file), '..', path.basename(path.dirname(file)), 'lock-names.db'));
    await assert.rejects(viaDots.runtime.start(), locked);
    // A client through the symlink is fine: clients never take the lock.
    const client = new Client(viaLink.provider);
    await client.startOrchestration('by-link', 'Touches');
    assert.deepEqual((await client.waitForOrchestration('by-link', 10000)).output, 'ok');
  } finally {
    await first.runtime.shutdown(5000);
  }
  // Released at shutdown: the link name may run the next runtime.
  const next = await runtimeOn(link);
  await next.runtime.start();
  await next.runtime.shutdown(5000);
});

test('a runtime in another process holds the file against a symlinked name here', async (t) => {
  const file = dbPath('lock-process');
  const link = path.join(path.dirname(file), 'other-name.db');
  fs.symlinkSync(file, link);
  const script = `
    const { SqliteProvider, Runtime } = require(${JSON.stringify(ROOT)});
    (async () => {
      const rt = new Runtime(await SqliteProvider.open(${JSON.stringify(file)}));
      rt.registerActivity('Touch', () => 'ok');
      await rt.start();
      console.log('started');
    })();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await eventually(() => out.includes('started'), 15000, 'the other process to start its runtime');
  const here = await runtimeOn(link);
  await assert.rejects(here.runtime.start(), locked);
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  // The OS dropped the dead process's lock: this one starts now, at once.
  await here.runtime.start();
  await here.runtime.shutdown(5000);
});

test('a database file with two names (a hard link) is refused, to runtimes and to clients, with ERR_LOCKED', async () => {
  const file = dbPath('lock-hard');
  // Create the database, then give it a second name.
  const provider = await SqliteProvider.open(file);
  await new Client(provider).getStatus('nothing');
  const second = path.join(path.dirname(file), 'hard.db');
  fs.linkSync(file, second);
  for (const name of [file, second]) {
    await assert.rejects(SqliteProvider.open(name), (e) => e.code === 'ERR_LOCKED' && /2 names \(hard links\)/.test(e.message) && e.message.includes(name));
  }
  // The provider opened before the link cannot start a runtime either.
  const runtime = new Runtime(provider, { keepAlive: false });
  await assert.rejects(runtime.start(), (e) => e.code === 'ERR_LOCKED' && /hard links/.test(e.message));
  fs.unlinkSync(second);
  // One name again: it opens, and nothing stored was lost.
  const again = await SqliteProvider.open(file);
  assert.equal((await new Client(again).getStatus('nothing')).status, 'NotFound');
});

test('two runtimes racing to start on one file through two names: exactly one starts, and an activity runs once', async () => {
  const file = dbPath('lock-race');
  const link = path.join(path.dirname(file), 'race.db');
  fs.symlinkSync(file, link);
  let runs = 0;
  const make = async (name) => {
    const provider = await SqliteProvider.open(name);
    const runtime = new Runtime(provider, { keepAlive: false });
    runtime.registerActivity('Count', async () => {
      runs += 1;
      await sleep(50);
      return runs;
    });
    runtime.registerOrchestration('Counts', function* (ctx) {
      return yield ctx.scheduleActivity('Count');
    });
    return { provider, runtime };
  };
  const a = await make(file);
  const b = await make(link);
  const results = await Promise.allSettled([a.runtime.start(), b.runtime.start()]);
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  assert.ok(locked(results.find((r) => r.status === 'rejected').reason));
  const client = new Client(a.provider);
  await client.startOrchestration('once', 'Counts');
  assert.equal((await client.waitForOrchestration('once', 10000)).output, 1);
  assert.equal(runs, 1);
  await Promise.all([a.runtime.shutdown(5000), b.runtime.shutdown(5000)]);
});
