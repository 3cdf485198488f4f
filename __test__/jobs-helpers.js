'use strict';
// Shared by the jobs suites: an app on a fresh store of this run's provider (SQLite, or
// PostgreSQL with REPRISE_TEST_PROVIDER=postgres) and small readers of runs.
const test = require('node:test');
const v8 = require('node:v8');
const vm = require('node:vm');
const { createReprise } = require('..');
const { storeLocation, dropStore, runtimeOptions, sleep } = require('./helpers');


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

module.exports = { openApp, withApp, storageOf, ENDED, WAIT, statusOf, byName, stepNamed, collectGarbage };
