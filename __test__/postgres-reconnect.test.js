'use strict';
// storeErrors on PostgreSQL, counted exactly: the runtime's connections are terminated
// while its store calls wait on a table lock held by another session; each broken call
// counts once, the runtime reconnects by itself and goes on. Terminating idle connections
// breaks no call and counts nothing. DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test).
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { startEnv, eventually, sleep, databaseUrl, dropStore, psql } = require('./helpers');


function setup(rt) {
  rt.registerActivity('Step', async (ctx, n) => n + 1);
  rt.registerOrchestration('Job', function* (ctx, n) {
    const a = yield ctx.scheduleActivity('Step', n);
    return yield ctx.scheduleActivity('Step', a);
  });
}

test('connections terminated mid-call count one store error per broken call; the runtime reconnects and goes on', async () => {
  const schema = `t_reconnect_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  // The heartbeat is held off: a heartbeat in flight when the connections are terminated
  // would be one more broken call than this test counts.
  const env = await startEnv(setup, { heartbeatIntervalMs: 600000, heartbeatTimeoutMs: 1200000 }, `pg:${schema}`);
  const app = `application_name = 'reprise:${schema}'`;
  try {
    const { client, runtime } = env;
    await client.startOrchestration('before', 'Job', 0);
    assert.equal((await client.waitForOrchestration('before', 10000)).output, 2);

    // Idle connections: the pool replaces them without a failed call.
    const idle = Number(psql(`SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ${app}) t`));
    assert.ok(idle >= 1, 'the runtime’s connections carry its application_name');
    await client.startOrchestration('after-idle-kill', 'Job', 10);
    assert.equal((await client.waitForOrchestration('after-idle-kill', 10000)).output, 12);
    assert.equal(runtime.metricsSnapshot().storeErrors, 0);

    // Calls in flight: another session locks the tables, the runtime's polling calls queue
    // behind the lock, and their connections are terminated while they wait. Which calls
    // are waiting depends on where each loop was when the lock came, so this is tried
    // again (up to five times) until a counted call was among them.
    const tables = ['instances', 'history', 'orchestrator_queue', 'worker_queue'].map((t) => `${schema}.${t}`).join(', ');
    let waiting = 0;
    for (let attempt = 0; attempt < 5 && waiting === 0; attempt++) {
      const locker = spawn('psql', [databaseUrl, '-v', 'ON_ERROR_STOP=1', '-c', `BEGIN; LOCK TABLE ${tables} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(2); COMMIT;`], { stdio: 'ignore' });
      const lockerDone = new Promise((resolve) => locker.on('exit', resolve));
      await eventually(() => Number(psql(`SELECT count(*) FROM pg_stat_activity WHERE ${app} AND wait_event_type = 'Lock'`)) >= 1, 10000, 'a runtime call blocked on the lock');
      await sleep(300); // every polling loop reaches the lock
      // One snapshot of pg_stat_activity: the calls that were waiting are the ones
      // terminated. (The idle loop's look-up of the next due time, SELECT LEAST(...), is
      // not a counted store call: when it fails the loop just waits a poll interval.)
      const [counted, terminated] = psql(
        `SELECT count(*) FILTER (WHERE wait_event_type = 'Lock' AND query NOT LIKE 'SELECT LEAST(%'), count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE ${app}`,
      ).split('|').map(Number);
      assert.ok(terminated >= counted, `waiting ${counted}, terminated ${terminated}`);
      assert.equal(await lockerDone, 0, 'the locking session ran to its end');
      waiting += counted;
    }
    assert.ok(waiting >= 1, 'a counted store call was caught by the termination');

    await client.startOrchestration('after-reconnect', 'Job', 20);
    assert.equal((await client.waitForOrchestration('after-reconnect', 20000)).output, 22);
    // The runtime counts a completion after its commit returns: the waiter may see the
    // instance end first.
    const m = await eventually(() => {
      const snapshot = runtime.metricsSnapshot();
      return snapshot.orchestrationsCompleted === 3 && snapshot;
    }, 5000, 'the third completion counted');
    assert.equal(m.storeErrors, waiting, 'one store error per call the termination broke');
    assert.equal(m.turnsAbandoned, 0);
    assert.equal(m.leaseLosses, 0);
    assert.ok(Number(psql(`SELECT count(*) FROM pg_stat_activity WHERE ${app}`)) >= 1, 'connected again');
  } finally {
    await env.stop();
    dropStore(`pg:${schema}`);
  }
});
