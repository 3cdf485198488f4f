#!/usr/bin/env node
'use strict';
// Writes the upgrade fixtures of __test__/upgrade.test.js, __test__/fixtures/upgrade/:
//
//   v0.sqlite          a SQLite store, one self-contained file (WAL checkpointed, no -wal/-shm);
//   v0-postgres.sql    the same instances in the PostgreSQL schema `reprise_upgrade_v0`,
//                      dumped with `pg_dump --schema=reprise_upgrade_v0 --no-owner --no-privileges`
//                      (tables, the `reprise_now_ms()` clock function, sequences and data);
//   expected.json      per instance: its status, instance info and every execution's history
//                      as read back right after the generation, the output each running
//                      instance must reach once finished, the event the test raises, and the
//                      migration files (names and SHA-256) present at the generation.
//
// The instances (workflows.js beside the fixtures has their code): one completed with an
// output and a custom status; one failed (an activity that throws, no retries); and running
// ones waiting on a durable timer (due 5 s after the generation), on an external event (raced
// against a day-long timer), on an activity claimed by a worker that was SIGKILLed while it
// ran (its lease long expired when the test runs), on a sub-orchestration (itself on a
// timer), and one that continued as new twice and waits on a timer in its third execution.
// A child process of this script runs the runtime and is SIGKILLed once every instance is
// where it should be, so the stores hold what a crashed process leaves behind.
//
// The v0 fixtures were written by reprise 0.1.0 at commit 406c07e (2026-11-30), before the
// store and its statuses were reworked. DO NOT REGENERATE THEM with later code: their whole
// point is to be old, so that the test proves data written by that version still opens,
// finishes and reads back. The script refuses to overwrite them. A later release that wants
// its own fixtures adds a new set (v1, ...) beside these; it never replaces them.
//
//   node scripts/make-upgrade-fixtures.js        (needs DATABASE_URL's server, psql, pg_dump, sqlite3)
//
// DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/test.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn, spawnSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const OUT = path.join(ROOT, '__test__', 'fixtures', 'upgrade');
const SQLITE_FILE = path.join(OUT, 'v0.sqlite');
const PG_FILE = path.join(OUT, 'v0-postgres.sql');
const EXPECTED_FILE = path.join(OUT, 'expected.json');
const PG_SCHEMA = 'reprise_upgrade_v0';
const databaseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

const { SqliteProvider, PostgresProvider, Client, Runtime } = require('..');
const { register } = require(path.join(OUT, 'workflows.js'));

const EVENT = { instanceId: 'upgrade-event', name: 'Approval', data: { by: 'upgrade-test', ok: true } };

/** The instances, their state at the kill, and (for running ones) the output they must reach. */
const CASES = [
  { instanceId: 'upgrade-completed', name: 'Upgrade.Completed', input: { name: 'fixture' }, before: 'Completed' },
  { instanceId: 'upgrade-failed', name: 'Upgrade.Failing', input: { item: 7 }, before: 'Failed' },
  { instanceId: 'upgrade-timer', name: 'Upgrade.Timer', input: null, before: 'Running', waitsOn: 'timer', output: { slept: 5000 } },
  { instanceId: 'upgrade-event', name: 'Upgrade.Event', input: null, before: 'Running', waitsOn: 'event', output: { index: 0, approval: EVENT.data } },
  { instanceId: 'upgrade-activity', name: 'Upgrade.Activity', input: { n: 21 }, before: 'Running', waitsOn: 'activity', output: { slow: { doubled: 42 } } },
  { instanceId: 'upgrade-parent', name: 'Upgrade.Parent', input: { n: 5 }, before: 'Running', waitsOn: 'child', output: { child: { fromChild: 5 } } },
  { instanceId: 'upgrade-looping', name: 'Upgrade.Looping', input: { round: 0 }, before: 'Running', waitsOn: 'timer', executionId: 3, output: { rounds: 3 } },
];
/** The sub-orchestration of upgrade-parent; its id is found in the store. */
const CHILD = { name: 'Upgrade.Child', before: 'Running', waitsOn: 'timer', output: { fromChild: 5 } };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function openStore(location) {
  if (location.startsWith('pg:')) return PostgresProvider.connectWithSchema(databaseUrl, location.slice(3), { poolSize: 4 });
  return SqliteProvider.open(location);
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (r.error) throw new Error(`${cmd} is needed: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

const psql = (sql) => run('psql', [databaseUrl, '-v', 'ON_ERROR_STOP=1', '-q', '-At', '-c', sql]);

// ---------------------------------------------------------------------------------------
// The child: runs the instances to their fixture state, prints "ready", and waits to be killed.

/** True once instance `id`'s current execution has an event of `kind`. */
async function hasEvent(client, id, kind) {
  return (await client.readStoredHistory(id)).some((e) => e.kind === kind);
}

async function child(location) {
  const provider = await openStore(location);
  const client = new Client(provider);
  // A short lease: what the killed runtime held runs out a second after the kill.
  const runtime = new Runtime(provider, { lockTimeoutMs: 1000 });
  let activityStarted = false;
  register(runtime, {
    hang: () => {
      activityStarted = true;
      return new Promise(() => {});
    },
  });
  await runtime.start();
  for (const c of CASES) await client.startOrchestration(c.instanceId, c.name, c.input);
  for (const c of CASES.filter((x) => x.before !== 'Running')) {
    const s = await client.waitForOrchestration(c.instanceId, 10000);
    if (s.status !== c.before) throw new Error(`${c.instanceId} ended ${s.status}, not ${c.before}: ${s.error}`);
  }
  const end = Date.now() + 3000;
  for (;;) {
    const reached = [];
    for (const c of CASES.filter((x) => x.before === 'Running')) {
      const info = await client.getInstanceInfo(c.instanceId);
      if (info.status !== 'Running' || info.executionId !== (c.executionId || 1)) reached.push(false);
      else if (c.waitsOn === 'timer') reached.push(await hasEvent(client, c.instanceId, 'TimerCreated'));
      else if (c.waitsOn === 'event') reached.push(await hasEvent(client, c.instanceId, 'EventWaitStarted'));
      else if (c.waitsOn === 'activity') reached.push(activityStarted && (await hasEvent(client, c.instanceId, 'ActivityScheduled')));
      else if (c.waitsOn === 'child') {
        const { instances } = await client.listInstances({ parentId: c.instanceId });
        reached.push(instances.length === 1 && (await hasEvent(client, instances[0].instanceId, 'TimerCreated')));
      }
    }
    const depths = await client.getQueueDepths();
    // Nothing left to do but the timers, the event and the claimed activity.
    const idle = depths.orchestrator.visible === 0 && depths.worker.visible === 0 && depths.worker.running === 1;
    if (idle && reached.every(Boolean)) break;
    if (Date.now() > end) throw new Error(`the instances did not reach their fixture state in time: ${JSON.stringify({ reached, depths })}`);
    await sleep(20);
  }
  process.stdout.write('ready\n');
  await new Promise(() => setInterval(() => {}, 1000));
}

/** Runs the child on `location` and SIGKILLs it once it is ready. */
async function generate(location) {
  const proc = spawn(process.execPath, [__filename, '--child', location], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => (err += d));
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise((resolve) => proc.stdout.on('data', (d) => {
    out += d;
    if (out.includes('ready\n')) resolve();
  }));
  const first = await Promise.race([ready.then(() => 'ready'), exited.then(() => 'exited'), sleep(30000).then(() => 'timeout')]);
  if (first !== 'ready') {
    proc.kill('SIGKILL');
    throw new Error(`the generating process did not get ready (${first}): ${err}`);
  }
  proc.kill('SIGKILL');
  const r = await exited;
  if (r.signal !== 'SIGKILL') throw new Error(`the generating process exited ${r.code}: ${err}`);
}

// ---------------------------------------------------------------------------------------
// Reading back what the stores hold.

/** Every instance: its info, status and each execution's history. */
async function snapshot(provider) {
  const client = new Client(provider);
  const { instances, nextCursor } = await client.listInstances({ limit: 1000 });
  if (nextCursor !== null) throw new Error('more instances than expected');
  const out = {};
  for (const info of instances) {
    const id = info.instanceId;
    const executions = [];
    for (const e of await client.listExecutions(id, { details: true })) executions.push({ ...e, history: await client.readStoredHistory(id, e.executionId) });
    out[id] = { info: await client.getInstanceInfo(id), status: await client.getStatus(id), executions };
  }
  return out;
}

/** Checks a snapshot against the cases; returns the child's instance id. */
function check(label, snap) {
  const ids = Object.keys(snap);
  const children = ids.filter((id) => snap[id].info.parentId === 'upgrade-parent');
  if (children.length !== 1) throw new Error(`${label}: ${children.length} children of upgrade-parent`);
  const cases = [...CASES, { ...CHILD, instanceId: children[0] }];
  if (ids.length !== cases.length) throw new Error(`${label}: ${ids.length} instances, expected ${cases.length}`);
  for (const c of cases) {
    const s = snap[c.instanceId];
    if (!s || s.status.status !== c.before) throw new Error(`${label}: ${c.instanceId} is ${s && s.status.status}, expected ${c.before}`);
    if (s.info.executionId !== (c.executionId || 1) || s.executions.length !== s.info.executionId) {
      throw new Error(`${label}: ${c.instanceId} has ${s.executions.length} executions`);
    }
  }
  const timerFired = ids.some((id) => snap[id].executions.some((e) => e.history.some((h) => h.kind === 'TimerFired')));
  if (timerFired) throw new Error(`${label}: a timer fired before the kill`);
  return children[0];
}

function migrations(kind) {
  const dir = path.join(ROOT, 'migrations', kind);
  return fs.readdirSync(dir).sort().map((file) => ({
    file,
    sha256: crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, file))).digest('hex'),
  }));
}

async function sqliteFixture() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reprise-upgrade-'));
  const db = path.join(dir, 'v0.sqlite');
  await generate(db);
  // The killed process left a WAL: fold it into the file. The sqlite3 shell is the last
  // connection to close, so it also removes the -wal and -shm files.
  run('sqlite3', [db, 'PRAGMA wal_checkpoint(TRUNCATE);']);
  if (run('sqlite3', [db, 'PRAGMA integrity_check;']).trim() !== 'ok') throw new Error('the SQLite fixture is damaged');
  for (const suffix of ['-wal', '-shm', '-journal']) {
    if (fs.existsSync(db + suffix)) throw new Error(`${db}${suffix} is still there`);
  }
  fs.copyFileSync(db, SQLITE_FILE);
  // Read back from a copy: opening a store creates -wal/-shm beside it.
  const copy = path.join(dir, 'read.sqlite');
  fs.copyFileSync(SQLITE_FILE, copy);
  return snapshot(await SqliteProvider.open(copy));
}

async function postgresFixture() {
  psql(`DROP SCHEMA IF EXISTS ${PG_SCHEMA} CASCADE`);
  await generate(`pg:${PG_SCHEMA}`);
  const dump = run('pg_dump', [`--schema=${PG_SCHEMA}`, '--no-owner', '--no-privileges', databaseUrl]);
  fs.writeFileSync(PG_FILE, dump);
  const snap = await snapshot(await PostgresProvider.connectWithSchema(databaseUrl, PG_SCHEMA, { poolSize: 2 }));
  return snap;
}

async function main() {
  for (const f of [SQLITE_FILE, PG_FILE, EXPECTED_FILE]) {
    if (fs.existsSync(f)) {
      throw new Error(`${path.relative(ROOT, f)} exists. The upgrade fixtures are never regenerated: they must stay as old code wrote them. Add a new fixture set instead.`);
    }
  }
  const sqlite = await sqliteFixture();
  const postgres = await postgresFixture();
  const childId = check('sqlite', sqlite);
  if (check('postgres', postgres) !== childId) throw new Error('the child ids differ between the stores');
  const commit = run('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).trim();
  const expected = {
    about: 'Written by scripts/make-upgrade-fixtures.js; never regenerate (see its header).',
    generatedBy: { package: require('../package.json').version, commit, date: new Date().toISOString(), node: process.version },
    pgSchema: PG_SCHEMA,
    migrations: { sqlite: migrations('sqlite'), postgres: migrations('postgres') },
    event: EVENT,
    cases: [...CASES, { ...CHILD, instanceId: childId, parentId: 'upgrade-parent' }].map(({ waitsOn, executionId, ...c }) => ({ ...c, waitsOn: waitsOn || null, executionId: executionId || 1 })),
    stores: { sqlite, postgres },
  };
  fs.writeFileSync(EXPECTED_FILE, `${JSON.stringify(expected, null, 2)}\n`);
  psql(`DROP SCHEMA IF EXISTS ${PG_SCHEMA} CASCADE`);
  console.log(`wrote ${[SQLITE_FILE, PG_FILE, EXPECTED_FILE].map((f) => path.relative(ROOT, f)).join(', ')} (commit ${commit})`);
}

if (process.argv[2] === '--child') {
  child(process.argv[3]).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().then(() => process.exit(0), (e) => {
    console.error(e);
    process.exit(1);
  });
}
