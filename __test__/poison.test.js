'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { dbPath } = require('./helpers');

const worker = path.join(__dirname, 'fixtures', 'poison-worker.js');

/** Runs the worker until it exits normally (at most four times); returns its output. */
function runUntilDone(mode) {
  const db = dbPath(`poison-${mode}`);
  const runs = [];
  for (let i = 0; i < 4; i++) {
    const r = spawnSync(process.execPath, [worker, db, mode], { encoding: 'utf8', timeout: 30000 });
    runs.push(r);
    if (r.status === 0) break;
  }
  assert.deepEqual(runs.map((r) => r.signal), ['SIGKILL', 'SIGKILL', null], `two crashes, then the poison bound holds: ${runs.map((r) => r.stderr).join('')}`);
  return JSON.parse(runs[2].stdout);
}

test('an orchestration turn that keeps killing its process is quarantined after maxDeliveries; other work goes on', () => {
  const out = runUntilDone('turn');
  assert.equal(out.errorCode, 'ERR_POISON');
  assert.equal(out.error, 'a message for this instance was delivered 3 times without a successful turn (poison)');
  assert.equal(out.poisoned, null, 'a failed instance has no output');
  assert.equal(out.healthy, 7);
});

test('an activity that keeps killing its process is poisoned after maxDeliveries; other work goes on', () => {
  const out = runUntilDone('activity');
  assert.equal(out.poisoned, "ERR_POISON: activity 'CrashesProcess' was delivered 3 times without finishing (poison)", 'caught at the yield');
  assert.equal(out.errorCode, null, 'the orchestration caught it and completed');
  assert.equal(out.healthy, 7);
});
