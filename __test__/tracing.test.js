'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { dbPath } = require('./helpers');

const script = `
const { SqliteProvider, Client, Runtime } = require(${JSON.stringify(path.join(__dirname, '..'))});
(async () => {
  const provider = await SqliteProvider.open(process.argv[1]);
  const client = new Client(provider);
  const runtime = new Runtime(provider);
  runtime.registerActivity('Greet', async (ctx, name) => { ctx.traceInfo('activity-line ' + name); return 'hi ' + name; });
  runtime.registerOrchestration('Traced', function* (ctx, name) {
    ctx.traceInfo('orchestration-line start');
    const r = yield ctx.scheduleActivity('Greet', name);
    ctx.traceInfo('orchestration-line got ' + r);
    return r;
  });
  await runtime.start();
  await client.startOrchestration('traced-1', 'Traced', 'bo');
  const r = await client.waitForOrchestration('traced-1');
  await runtime.shutdown();
  console.log(r.output);
})();
`;

function run(env) {
  const e = { ...process.env };
  delete e.RUST_LOG;
  return spawnSync(process.execPath, ['-e', script, dbPath('trace')], { env: { ...e, ...env }, encoding: 'utf8' });
}

test('RUST_LOG=info prints orchestration and activity trace lines with their instance', () => {
  const r = run({ RUST_LOG: 'info' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'hi bo');
  const lines = r.stderr.split('\n');
  const start = lines.filter((l) => l.includes('orchestration-line start'));
  assert.equal(start.length, 1, 'traced once: silent during replay');
  assert.match(start[0], /INFO/);
  assert.match(start[0], /instance_id=traced-1/);
  assert.match(start[0], /execution_id=1/);
  assert.match(start[0], /name=Traced/);
  assert.ok(lines.some((l) => l.includes('orchestration-line got hi bo')));
  assert.ok(lines.some((l) => l.includes('activity-line bo') && l.includes('reprise::activity')));
});

test('RUST_LOG=reprise::activity=info filters to activity traces only', () => {
  const r = run({ RUST_LOG: 'reprise::activity=info' });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stderr.includes('activity-line bo'));
  assert.ok(!r.stderr.includes('orchestration-line'));
});

test('a healthy run prints nothing by default', () => {
  const r = run({});
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'hi bo');
  assert.equal(r.stderr, '');
});
