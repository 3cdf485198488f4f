'use strict';
// The registry of runtimes: each runtime records itself in the store (what it can run, where
// it runs), refreshes its heartbeat from Rust, and removes its row at shutdown;
// client.listRuntimes() and `reprise runtimes` show it. Runs on SQLite and PostgreSQL.
const test = require('node:test');
const assert = require('node:assert/strict');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { Runtime } = require('..');
const { startEnv, providerKind, databaseUrl, psql, historyHas } = require('./helpers');

const CLI = path.join(__dirname, '..', 'bin', 'reprise.js');

function register(rt) {
  rt.registerOrchestration('Flow', function* () {
    return 1;
  });
  rt.registerOrchestrationVersioned('Flow', '2.0.0', function* () {
    return 2;
  });
  rt.registerActivity('Zeta', async () => 1);
  rt.registerActivity('Alpha', async () => 1);
}

/** `reprise runtimes --json` on the env's store. */
function cliRuntimes(env) {
  const where = env.path.startsWith('pg:') ? ['--db', databaseUrl, '--schema', env.path.slice(3)] : ['--db', env.path];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, ...where, 'runtimes', '--json'], (error, stdout, stderr) => {
      if (error) reject(new Error(`reprise runtimes failed: ${stderr}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

test('a started runtime is in the registry with what it runs, heartbeats, and leaves it at shutdown', async () => {
  const env = await startEnv(register, { heartbeatIntervalMs: 50, heartbeatTimeoutMs: 1000, workerNodeId: 'node-a' });
  try {
    const [me, ...others] = await env.client.listRuntimes();
    assert.deepEqual(others, []);
    assert.equal(me.workerNodeId, 'node-a');
    assert.equal(me.host, os.hostname());
    assert.equal(me.pid, process.pid);
    assert.equal(me.alive, true);
    assert.match(me.runtimeId, new RegExp(`^${process.pid}:`));
    assert.deepEqual(me.orchestrations, [{ name: 'Flow', versions: ['1.0.0', '2.0.0'] }]);
    assert.deepEqual(me.activities, ['Alpha', 'Zeta']);
    assert.ok(me.startedAt <= me.heartbeatAt && me.heartbeatAgeMs >= 0);
    // The heartbeat advances by itself, also while the JavaScript thread is blocked.
    const blockUntil = Date.now() + 300;
    while (Date.now() < blockUntil) {
      // busy: the heartbeat runs on the runtime's own threads
    }
    const [later] = await env.client.listRuntimes();
    assert.ok(later.heartbeatAt > me.heartbeatAt, `heartbeat moved: ${me.heartbeatAt} -> ${later.heartbeatAt}`);
    const viaCli = await cliRuntimes(env);
    assert.deepEqual(viaCli.map((r) => [r.runtimeId, r.workerNodeId, r.pid]), [[me.runtimeId, 'node-a', process.pid]]);
    await env.stop();
    assert.deepEqual(await env.client.listRuntimes(), [], 'a runtime that shut down is no longer listed');
  } finally {
    await env.drop();
  }
});

test('a second live runtime with the same workerNodeId is refused with ERR_LOCKED', { skip: providerKind !== 'postgres' && 'on SQLite the file lock already allows one runtime per file' }, async () => {
  const env = await startEnv(register, { workerNodeId: 'pod-1', heartbeatIntervalMs: 100, heartbeatTimeoutMs: 1000 });
  try {
    const second = new Runtime(env.provider, { workerNodeId: 'pod-1', keepAlive: false });
    register(second);
    await assert.rejects(second.start(), (e) => e.code === 'ERR_LOCKED' && e.retryable === false && /workerNodeId 'pod-1'/.test(e.message));
    // Another name is fine, and both are listed.
    const third = new Runtime(env.provider, { workerNodeId: 'pod-2', keepAlive: false });
    register(third);
    await third.start();
    const nodes = (await env.client.listRuntimes()).map((r) => r.workerNodeId).sort();
    assert.deepEqual(nodes, ['pod-1', 'pod-2']);
    await third.shutdown(2000);
  } finally {
    await env.drop();
  }
});

test('registry options are checked', () => {
  const bad = [
    [{ workerNodeId: '' }, /options\.workerNodeId must be a non-empty string/],
    [{ workerNodeId: 7 }, /options\.workerNodeId must be a non-empty string/],
    [{ workerNodeId: 'x'.repeat(257) }, /options\.workerNodeId is 257 characters long; the limit is 256/],
    [{ heartbeatIntervalMs: 5 }, /options\.heartbeatIntervalMs must be an integer >= 10/],
    [{ heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 1500 }, /heartbeatTimeoutMs \(1500\) must be at least twice options\.heartbeatIntervalMs \(1000\)/],
    [{ heartbeatTimeoutMs: 1000 }, /heartbeatTimeoutMs \(1000\) must be at least twice/],
  ];
  const fakeProvider = { _native: {} };
  for (const [options, message] of bad) {
    assert.throws(() => new Runtime(fakeProvider, options), (e) => e.code === 'ERR_INVALID_ARGUMENT' && message.test(e.message), JSON.stringify(options).slice(0, 60));
  }
});

test('a runtime whose heartbeat stops is removed by a live one, and its leases are released at once', { skip: providerKind !== 'postgres' && 'needs runtimes sharing a store' }, async () => {
  const env = await startEnv(
    (rt) => {
      register(rt);
      rt.registerOrchestration('Nap', function* (ctx) {
        yield ctx.scheduleTimer(300);
        return 'woke';
      });
    },
    { heartbeatIntervalMs: 50, heartbeatTimeoutMs: 500 },
  );
  try {
    const schema = env.path.slice(3);
    const now = `${schema}.reprise_now_ms()`;
    await env.client.startOrchestration('held', 'Nap');
    // The first turn committed (its timer is recorded): no turn of this runtime holds it.
    await historyHas(env.client, 'held', 'TimerCreated');
    // A runtime elsewhere records itself, takes the instance for ten minutes (a new
    // generation, as a claim makes), and dies.
    psql(`INSERT INTO ${schema}.runtimes VALUES ('ghost', NULL, 'elsewhere', 1, ${now}, ${now}, 500, '{}')`);
    psql(`UPDATE ${schema}.instances SET lock_owner = 'ghost', lock_until = ${now} + 600000, generation = generation + 1 WHERE instance_id = 'held'`);
    assert.ok((await env.client.listRuntimes()).some((r) => r.runtimeId === 'ghost' && r.alive));
    const t0 = Date.now();
    const result = await env.client.waitForOrchestration('held', 20000);
    assert.equal(result.output, 'woke');
    const waited = Date.now() - t0;
    assert.ok(waited < 10000, `resumed after ${waited} ms, long before the ten-minute lease`);
    assert.ok(!(await env.client.listRuntimes()).some((r) => r.runtimeId === 'ghost'), 'the dead runtime is gone from the registry');
    assert.ok(env.runtime.metricsSnapshot().runtimesReaped >= 1);
  } finally {
    await env.drop();
  }
});
