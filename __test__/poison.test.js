'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { dbPath } = require('./helpers');

test('an activity that keeps killing its process is poisoned after maxDeliveries; other work goes on', () => {
  const db = dbPath('poison');
  const worker = path.join(__dirname, 'fixtures', 'poison-worker.js');
  const runs = [];
  for (let i = 0; i < 4; i++) {
    const r = spawnSync(process.execPath, [worker, db], { encoding: 'utf8', timeout: 30000 });
    runs.push(r);
    if (r.status === 0) break;
  }
  assert.deepEqual(runs.map((r) => r.signal), ['SIGKILL', 'SIGKILL', null], 'two crashes, then the poison bound holds');
  const out = JSON.parse(runs[2].stdout);
  assert.match(out.poisoned, /^ERR_POISON: activity 'CrashesProcess' was delivered 3 times without finishing \(poison\)$/);
  assert.equal(out.healthy, 7);
});
