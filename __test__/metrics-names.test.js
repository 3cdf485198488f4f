'use strict';
// One metrics naming: `metricsSnapshot()` keys in camelCase, Prometheus names `reprise_` +
// snake_case, one table (`lib/metrics.js`) mapping them, and `MetricsSnapshot` in index.d.ts
// naming the same keys, on both stores.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { prometheusText } = require('..');
const { startEnv, eventually, dbPath, uniqueSchema } = require('./helpers');
const { METRICS, ALIASES, snakeCase } = require('../lib/metrics');

/** The member names of `export interface MetricsSnapshot` in index.d.ts. */
function typedKeys() {
  const text = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');
  const body = /export interface MetricsSnapshot \{([\s\S]*?)\n\}/.exec(text)[1];
  return [...body.matchAll(/^\s+(\w+)\??: number;/gm)].map((m) => m[1]);
}

async function snapshotOf(location) {
  const env = await startEnv(
    (rt) => {
      rt.registerActivity('A', async () => 1);
      rt.registerOrchestration('P', function* (ctx) {
        return yield ctx.scheduleActivity('A');
      });
    },
    { metricsIntervalMs: 100 },
    location,
  );
  try {
    await env.client.startOrchestration('p', 'P');
    await env.client.waitForOrchestration('p', 10000);
    // The queue gauges appear once the first reading is in.
    return await eventually(() => {
      const m = env.runtime.metricsSnapshot();
      return 'queueDepthAgeMs' in m && m;
    }, 10000, 'the queue gauges');
  } finally {
    await env.drop();
  }
}

for (const kind of ['sqlite', 'postgres']) {
  test(`every ${kind} snapshot key is camelCase, in the table, typed, and named reprise_<snake_case> in Prometheus`, async () => {
    const location = kind === 'sqlite' ? dbPath('names') : `pg:${uniqueSchema('names')}`;
    const snapshot = await snapshotOf(location);
    const table = new Map(METRICS.map((m) => [m.key, m]));
    const typed = new Set(typedKeys());
    const text = prometheusText(snapshot);
    for (const key of Object.keys(snapshot)) {
      assert.match(key, /^[a-z][a-zA-Z]*$/, `${key} is camelCase`);
      assert.ok(typed.has(key), `${key} is in MetricsSnapshot`);
      if (ALIASES[key]) {
        // duroxide-node's name for counts the table has: their sum, rendered once under them.
        assert.equal(snapshot[key], ALIASES[key].reduce((n, k) => n + snapshot[k], 0), key);
        assert.ok(!text.includes(`_${snakeCase(key)}`), `${key} is not rendered twice`);
        continue;
      }
      const metric = table.get(key);
      assert.ok(metric, `${key} is in the metrics table`);
      assert.ok(typed.has(key), `${key} is in MetricsSnapshot`);
      assert.equal(metric.name, `reprise_${snakeCase(key)}${metric.type === 'counter' ? '_total' : ''}`);
      assert.ok(text.includes(`# TYPE ${metric.name} ${metric.type}\n${metric.name} ${snapshot[key]}\n`), `${metric.name} rendered`);
      assert.ok(text.includes(`# HELP ${metric.name} `), `${metric.name} has help`);
    }
  });
}

test('the table and the typed snapshot name the same metrics', () => {
  assert.deepEqual(new Set([...METRICS.map((m) => m.key), ...Object.keys(ALIASES)]), new Set(typedKeys()));
  assert.equal(new Set(METRICS.map((m) => m.name)).size, METRICS.length, 'Prometheus names are distinct');
});
