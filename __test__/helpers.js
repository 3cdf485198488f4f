'use strict';
// Shared by the node:test suites. REPRISE_TEST_CACHE_SIZE=0 runs every suite with the
// generator cache off (each turn replays the whole history).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { SqliteProvider, Client, Runtime } = require('..');

const cacheSize = process.env.REPRISE_TEST_CACHE_SIZE === undefined ? undefined : Number(process.env.REPRISE_TEST_CACHE_SIZE);

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

/**
 * Opens a fresh database, registers with `setup(runtime)`, starts; returns {provider, client, runtime, path}.
 * Call `env.stop()` at the end.
 */
async function startEnv(setup, options = {}, file = dbPath()) {
  const provider = await SqliteProvider.open(file);
  const client = new Client(provider);
  const runtime = new Runtime(provider, runtimeOptions(options));
  setup(runtime);
  await runtime.start();
  return { provider, client, runtime, path: file, stop: () => runtime.shutdown(5000) };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

module.exports = { cacheSize, tempDir, dbPath, runtimeOptions, startEnv, sleep, eventually, normalizedHistory };
