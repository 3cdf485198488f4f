'use strict';
// Shared by the node:test suites. REPRISE_TEST_CACHE_SIZE=0 runs every suite with the
// generator cache off (each turn replays the whole history).

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { SqliteProvider, PostgresProvider, Client, Runtime } = require('..');

const cacheSize = process.env.REPRISE_TEST_CACHE_SIZE === undefined ? undefined : Number(process.env.REPRISE_TEST_CACHE_SIZE);
/** REPRISE_TEST_PROVIDER=postgres runs the provider-independent suites on PostgreSQL. */
const providerKind = process.env.REPRISE_TEST_PROVIDER || 'sqlite';
const databaseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

let counter = 0;
/** A fresh folder for this test file's databases. */
function tempDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `reprise-test-${process.pid}-${counter++}-`));
  return dir;
}

function dbPath(name = 'test') {
  return path.join(tempDir(), `${name}.db`);
}

function runtimeOptions(extra = {}) {
  const options = { ...extra };
  if (cacheSize !== undefined && options.generatorCacheSize === undefined) options.generatorCacheSize = cacheSize;
  return options;
}

/** A fresh store location for this run's provider: a SQLite file, or `pg:<schema>`. */
function storeLocation(name = 'test') {
  if (providerKind === 'postgres') return `pg:t_${name.replace(/\W/g, '_')}_${process.pid}_${counter++}_${Math.floor(Math.random() * 1e6)}`;
  return dbPath(name);
}

function openStore(location) {
  // Small pools: many tests (and processes) share one server's connection limit.
  if (location.startsWith('pg:')) return PostgresProvider.connectWithSchema(databaseUrl, location.slice(3), { poolSize: 4 });
  return SqliteProvider.open(location);
}

function dropStore(location) {
  if (!location.startsWith('pg:')) return;
  spawnSync('psql', [databaseUrl, '-c', `DROP SCHEMA IF EXISTS ${location.slice(3)} CASCADE`], { stdio: 'ignore' });
}

/**
 * Opens a fresh store (or `location` again), registers with `setup(runtime)`, starts;
 * returns {provider, client, runtime, path}. Call `env.stop()` at the end; `env.drop()`
 * also removes a PostgreSQL schema.
 */
async function startEnv(setup, options = {}, location = storeLocation()) {
  const provider = await openStore(location);
  const client = new Client(provider);
  const runtime = new Runtime(provider, runtimeOptions(options));
  setup(runtime);
  await runtime.start();
  const stop = () => runtime.shutdown(5000);
  return { provider, client, runtime, path: location, stop, drop: async () => { await stop(); dropStore(location); } };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A PostgreSQL schema name of its own for one test: `t_<tag>_<pid>_<random>`. */
const uniqueSchema = (tag) => `t_${tag}_${process.pid}_${Math.floor(Math.random() * 1e6)}`;

/** Runs one SQL statement on DATABASE_URL with psql; returns its unaligned output. */
function psql(sql) {
  const r = spawnSync('psql', [databaseUrl, '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql], { encoding: 'utf8' });
  if (r.error) throw new Error(`psql is needed for this test: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`psql failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim();
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
async function eventually(check, timeoutMs = 10000, what = 'condition') {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** History without timestamps, for comparing runs. */
function normalizedHistory(events) {
  return events.map((e) => {
    const data = { ...e.data };
    if ('fireAt' in data) data.fireAt = '<time>';
    return { eventId: e.eventId, kind: e.kind, taskId: e.taskId, data };
  });
}

/** Waits until the current execution of `id` has at least `n` history events of `kind`. */
const historyHas = (client, id, kind, n = 1) =>
  eventually(async () => (await client.readStoredHistory(id)).filter((e) => e.kind === kind).length >= n, 10000, `${n} ${kind} in ${id}`);

/** An activity that runs until its signal fires, and records who it was and why it stopped. */
function hanging(aborted) {
  return (ctx, who) =>
    new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        aborted.push({ who, reason: ctx.signal.reason.message });
        setTimeout(() => resolve(`late result of ${who}`), 30);
      });
    });
}

// The orchestrations and activities of the retryInstance, watch and runtime.events suites.

/** Calls per activity name, and switches the tests flip between runs. */
function makeSetup() {
  const calls = {};
  const flags = { failC: true, failX: true, broken: true, flaky: 0 };
  const count = (name) => {
    calls[name] = (calls[name] || 0) + 1;
  };
  const setup = (rt) => {
    rt.registerActivity('A', (ctx, n) => {
      count('A');
      return n + 1;
    });
    rt.registerActivity('B', (ctx, n) => {
      count('B');
      return n * 10;
    });
    rt.registerActivity('C', (ctx, n) => {
      count('C');
      if (flags.failC) throw new Error('C is down');
      return n + 5;
    });
    rt.registerActivity('X', () => {
      count('X');
      if (flags.failX) throw new Error('X is down');
      return 'x';
    });
    rt.registerActivity('Flaky', (ctx) => {
      count('Flaky');
      if (ctx.attempt === 1) throw new Error('first attempt fails');
      return ctx.attempt;
    });
    rt.registerOrchestration('ThreeSteps', function* (ctx, n) {
      const a = yield ctx.scheduleActivity('A', n);
      const b = yield ctx.scheduleActivity('B', a);
      ctx.setCustomStatus({ step: 'C' });
      const c = yield ctx.scheduleActivity('C', b);
      return { a, b, c };
    });
    rt.registerOrchestration('Kid', function* (ctx) {
      return yield ctx.scheduleActivity('X', null);
    });
    rt.registerOrchestration('Parent', function* (ctx) {
      const a = yield ctx.scheduleActivity('A', 1);
      const kid = yield ctx.scheduleSubOrchestration('Kid', null);
      return { a, kid };
    });
    rt.registerOrchestration('Buggy', function* (ctx) {
      const a = yield ctx.scheduleActivity('A', 1);
      if (flags.broken) throw new Error('a bug after A');
      return a;
    });
    rt.registerOrchestration('Idle', function* (ctx) {
      return yield ctx.waitForEvent('go');
    });
    rt.registerOrchestration('Tour', function* (ctx) {
      const flaky = yield ctx.scheduleActivityWithRetry('Flaky', null, { maxAttempts: 3, initialDelayMs: 300 });
      yield ctx.scheduleTimer(20);
      ctx.setCustomStatus('waiting');
      const go = yield ctx.waitForEvent('go');
      return { flaky, go };
    });
    rt.registerOrchestration('Loop', function* (ctx, n) {
      if (n < 2) return yield ctx.continueAsNew(n + 1);
      return n;
    });
  };
  return { calls, flags, setup };
}

/** The `type` of each lifecycle event. */
const types = (events) => events.map((e) => e.type);

/** Asserts `wanted` appear in `actual` in this order (others may come between). */
function assertInOrder(actual, wanted) {
  let i = 0;
  for (const t of actual) if (t === wanted[i]) i += 1;
  assert.equal(i, wanted.length, `expected ${wanted.join(' > ')} in order within ${actual.join(', ')}`);
}

/**
 * Spawns `node <script> ...args` as a worker process that prints 'ready' once it works:
 * the child, with `ready` (rejects if it exits first), `exited` ({code, signal}) and
 * `stderrText`.
 */
function spawnWorker(script, args) {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderrText = '';
  child.stderr.on('data', (d) => (child.stderrText += d));
  child.ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`worker exited early (${code}): ${child.stderrText}`)));
  });
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return child;
}

module.exports = {
  spawnWorker,
  psql, uniqueSchema, cacheSize, providerKind, databaseUrl, tempDir, dbPath, storeLocation, openStore, dropStore, runtimeOptions, startEnv, sleep, eventually, normalizedHistory,
  historyHas, hanging, makeSetup, types, assertInOrder,
};
