'use strict';
// Database outages, on a PostgreSQL cluster of this test's own (the shared server is never
// touched): the server is restarted three times (a clean restart, an immediate stop and
// start, and a 15 s outage) while 500 orchestrations with activities and timers run in this
// process. Every one completes with the right output without restarting anything; no
// activity runs twice (one runtime: no lease is taken over); one-shot client calls fail fast
// with ERR_UNAVAILABLE while the server is down, and waits ride the outage out.
const test = require('node:test');
const assert = require('node:assert/strict');
const { PostgresProvider, Client, Runtime } = require('..');
const { sleep } = require('./helpers');
const { throwawayCluster, unavailable } = require('./throwaway-postgres');

const COUNT = 500;

test('500 orchestrations ride out three server restarts and a 15 s outage', { skip: unavailable() || false, timeout: 240000 }, async (t) => {
  const cluster = await throwawayCluster();
  let runtime;
  try {
    const provider = await PostgresProvider.connectWithSchema(cluster.url, 'outage', { poolSize: 8 });
    const client = new Client(provider);
    runtime = new Runtime(provider, { keepAlive: false, workerConcurrency: 50 });
    const runs = new Map(); // "instance/step" -> times run
    const ran = (ctx, step) => {
      const key = `${ctx.instanceId}/${step}`;
      runs.set(key, (runs.get(key) || 0) + 1);
    };
    runtime.registerActivity('Double', async (ctx, n) => {
      ran(ctx, 'double');
      await sleep(Math.floor(Math.random() * 300));
      return n * 2;
    });
    runtime.registerActivity('Inc', async (ctx, n) => {
      ran(ctx, 'inc');
      await sleep(Math.floor(Math.random() * 300));
      return n + 1;
    });
    runtime.registerOrchestration('Work', function* (ctx, n) {
      const doubled = yield ctx.scheduleActivity('Double', n);
      // Timers spread over 10 s: work is in flight through every restart and the outage.
      yield ctx.scheduleTimer(500 + (n % 20) * 500);
      return yield ctx.scheduleActivity('Inc', doubled);
    });
    await runtime.start();
    const ids = Array.from({ length: COUNT }, (_, i) => `o-${i}`);
    for (let i = 0; i < COUNT; i += 100) {
      await Promise.all(ids.slice(i, i + 100).map((id, k) => client.startOrchestration(id, 'Work', i + k)));
    }
    // Every wait starts now and rides through what follows.
    const results = Promise.all(ids.map((id) => client.waitForOrchestration(id, 180000)));

    await sleep(500);
    cluster.restart('fast');
    t.diagnostic('clean restart done');
    await sleep(1500);
    cluster.stop('immediate');
    await sleep(1000);
    cluster.start();
    t.diagnostic('immediate stop + start done');
    await sleep(1500);
    cluster.stop('fast');
    const downAt = Date.now();
    // While the server is down, one-shot calls fail fast and say it is unavailable.
    const t0 = Date.now();
    await assert.rejects(client.getStatus('o-1'), (e) => e.code === 'ERR_UNAVAILABLE' && e.name === 'StoreError' && e.retryable === true);
    const failedAfter = Date.now() - t0;
    t.diagnostic(`getStatus failed with ERR_UNAVAILABLE after ${failedAfter} ms`);
    assert.ok(failedAfter <= 2000, `getStatus took ${failedAfter} ms to fail`);
    await assert.rejects(client.startOrchestration('late', 'Work', 1), (e) => e.code === 'ERR_UNAVAILABLE');
    await sleep(15000 - (Date.now() - downAt));
    cluster.start();
    t.diagnostic('15 s outage over');

    const done = await results;
    for (let i = 0; i < COUNT; i++) {
      assert.equal(done[i].status, 'Completed', `${ids[i]}: ${done[i].error}`);
      assert.equal(done[i].output, i * 2 + 1, ids[i]);
    }
    const twice = [...runs].filter(([, n]) => n > 1).map(([key]) => key);
    assert.deepEqual(twice, [], 'no activity ran twice');
    assert.equal(runs.size, COUNT * 2, 'every activity ran');
    const m = runtime.metricsSnapshot();
    t.diagnostic(`store outages seen: ${m.storeOutages}, store errors retried: ${m.storeErrors}`);
    assert.ok(m.storeOutages >= 1, 'the outage was counted');
  } finally {
    if (runtime) await runtime.shutdown(2000).catch(() => {});
    cluster.destroy();
  }
});
