'use strict';
// Stored data survives upgrades. __test__/fixtures/upgrade holds stores written by an old
// version of reprise (scripts/make-upgrade-fixtures.js, never regenerated): a SQLite file
// and a PostgreSQL schema dump, each with a completed and a failed instance and running ones
// left by a killed process, waiting on timers, an event, a claimed activity, a
// sub-orchestration and a third execution after continue-as-new. Each store is opened by
// the current code (its migrations run), everything reads back as it was recorded at the
// generation (expected.json), and the running instances finish with the expected outputs.
// The PostgreSQL dump is restored into a schema of its own (the fixture's schema name
// rewritten), dropped at the end. The migrations stay forward-only and numbered.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { SqliteProvider, PostgresProvider, Client, Runtime } = require('..');
const { tempDir, databaseUrl, runtimeOptions } = require('./helpers');
const { register } = require('./fixtures/upgrade/workflows');

const FIXTURES = path.join(__dirname, 'fixtures', 'upgrade');
const MIGRATIONS = path.join(__dirname, '..', 'migrations');
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8'));

/** `actual` has every key of `recorded` with an equal value (a field added later is allowed). */
function assertRecorded(actual, recorded, where) {
  assert.ok(actual && typeof actual === 'object', `${where}: nothing read back`);
  for (const [key, value] of Object.entries(recorded)) assert.deepEqual(actual[key], value, `${where}: ${key}`);
}

/** Each recorded event reads back the same at the same place; `prefix` allows events after them. */
function assertHistory(actual, recorded, where, prefix = false) {
  if (prefix) assert.ok(actual.length >= recorded.length, `${where}: ${actual.length} events, fewer than the ${recorded.length} recorded`);
  else assert.equal(actual.length, recorded.length, `${where}: event count`);
  recorded.forEach((event, i) => assertRecorded(actual[i], event, `${where} event ${i + 1}`));
}

/** The instances of the store read back as recorded. `finished`: ids whose current execution has grown since. */
async function assertReadsBack(client, stored, finished = new Set()) {
  const { instances } = await client.listInstances({ limit: 1000 });
  assert.deepEqual(instances.map((i) => i.instanceId).sort(), Object.keys(stored).sort(), 'the instances');
  for (const [id, before] of Object.entries(stored)) {
    const grown = finished.has(id);
    const info = await client.getInstanceInfo(id);
    if (grown) {
      // What finishing changes: the status and what comes with it, the custom status, updatedAt.
      const { status, output, error, errorCode, customStatus, customStatusVersion, updatedAt, ...stable } = before.info;
      assertRecorded(info, stable, `${id} info`);
    } else {
      assertRecorded(info, before.info, `${id} info`);
      assertRecorded(await client.getStatus(id), before.status, `${id} status`);
    }
    const executions = await client.listExecutions(id, { details: true });
    assert.equal(executions.length, before.executions.length, `${id}: executions`);
    for (const { history, ...execution } of before.executions) {
      const current = execution.executionId === before.info.executionId;
      const where = `${id} execution ${execution.executionId}`;
      const { lastEventAt, eventCount, ...stable } = execution;
      assertRecorded(executions.find((e) => e.executionId === execution.executionId), grown && current ? stable : execution, where);
      assertHistory(await client.readStoredHistory(id, execution.executionId), history, `${where} history`, grown && current);
    }
  }
}

/**
 * Opens the old store with the current code: everything reads back as recorded; once the
 * runtime runs and the awaited event is raised, every running instance completes with its
 * expected output, and the old histories are still there, unchanged, at the head of theirs.
 */
async function upgradeAndFinish(provider, stored) {
  const client = new Client(provider);
  await assertReadsBack(client, stored);

  const runtime = new Runtime(provider, runtimeOptions());
  register(runtime);
  await runtime.start();
  // Stopped before the test ends, so a PostgreSQL schema is dropped under no running runtime.
  try {
    await client.raiseEvent(expected.event.instanceId, expected.event.name, expected.event.data);
    const running = expected.cases.filter((c) => c.before === 'Running');
    assert.ok(running.length >= 6, 'the fixtures hold running instances');
    for (const c of running) {
      const s = await client.waitForOrchestration(c.instanceId, 10000);
      assert.equal(s.status, 'Completed', `${c.instanceId} completed (${s.error})`);
      assert.deepEqual(s.output, c.output, `${c.instanceId} output`);
      const history = await client.readStoredHistory(c.instanceId);
      assert.equal(history[history.length - 1].kind, 'ExecutionCompleted', `${c.instanceId} history ends with its completion`);
    }
    for (const c of expected.cases.filter((x) => x.before !== 'Running')) {
      assert.equal((await client.getStatus(c.instanceId)).status, c.before, `${c.instanceId} still ${c.before}`);
    }
    await assertReadsBack(client, stored, new Set(running.map((c) => c.instanceId)));
  } finally {
    await runtime.shutdown(5000);
  }
}

test('the fixtures hold what the test expects of them', () => {
  const byStatus = (status) => expected.cases.filter((c) => c.before === status).length;
  assert.equal(byStatus('Completed'), 1);
  assert.equal(byStatus('Failed'), 1);
  for (const store of ['sqlite', 'postgres']) {
    const stored = expected.stores[store];
    assert.deepEqual(Object.keys(stored).sort(), expected.cases.map((c) => c.instanceId).sort(), store);
    for (const c of expected.cases) {
      assert.equal(stored[c.instanceId].status.status, c.before, `${store} ${c.instanceId}`);
      assert.equal(stored[c.instanceId].info.executionId, c.executionId, `${store} ${c.instanceId}`);
    }
    const completed = stored[expected.cases.find((c) => c.before === 'Completed').instanceId].status;
    assert.ok(completed.output !== null && completed.customStatus !== null, `${store}: output and custom status`);
    assert.ok(stored['upgrade-looping'].executions.length >= 2, `${store}: continued as new`);
  }
});

test('a SQLite file written by the old version opens, finishes its instances and reads back', async (t) => {
  const file = path.join(tempDir(), 'v0.sqlite');
  fs.copyFileSync(path.join(FIXTURES, 'v0.sqlite'), file);
  await upgradeAndFinish(await SqliteProvider.open(file), expected.stores.sqlite);
});

test('a PostgreSQL schema restored from the old version\'s dump opens, finishes its instances and reads back', async (t) => {
  const schema = `upg_${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
  t.after(() => {
    spawnSync('psql', [databaseUrl, '-q', '-c', `DROP SCHEMA IF EXISTS ${schema} CASCADE`], { stdio: 'ignore', timeout: 10000 });
  });
  const name = new RegExp(`\\b${expected.pgSchema}\\b`, 'g');
  const dump = fs.readFileSync(path.join(FIXTURES, 'v0-postgres.sql'), 'utf8');
  assert.ok(name.test(dump), 'the dump names its schema');
  const sql = dump.replace(name, schema);
  const restored = spawnSync('psql', [databaseUrl, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], { input: sql, encoding: 'utf8', timeout: 30000 });
  if (restored.error) throw new Error(`psql is needed for this test: ${restored.error.message}`);
  assert.equal(restored.status, 0, `the dump restores: ${restored.stderr}`);
  const provider = await PostgresProvider.connectWithSchema(databaseUrl, schema, { poolSize: 4 });
  await upgradeAndFinish(provider, expected.stores.postgres);
});

test('the migrations are forward-only and numbered', () => {
  for (const kind of ['sqlite', 'postgres']) {
    const files = fs.readdirSync(path.join(MIGRATIONS, kind)).sort();
    files.forEach((file, i) => {
      const m = /^(\d{4})_[a-z0-9_]+\.sql$/.exec(file);
      assert.ok(m, `${kind}/${file}: named NNNN_name.sql`);
      assert.equal(Number(m[1]), i + 1, `${kind}/${file}: numbered from 1 without gaps or repeats`);
    });
    // A migration that has shipped is never edited nor removed: stores already ran it (sqlx
    // refuses a store whose applied migration's checksum no longer matches the file).
    for (const { file, sha256 } of expected.migrations[kind]) {
      assert.ok(files.includes(file), `${kind}/${file} is still there`);
      const now = crypto.createHash('sha256').update(fs.readFileSync(path.join(MIGRATIONS, kind, file))).digest('hex');
      assert.equal(now, sha256, `${kind}/${file} is unchanged`);
    }
    assert.ok(files.length >= expected.migrations[kind].length, `${kind}: no migration removed`);
  }
});
