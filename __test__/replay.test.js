'use strict';
// Replay is silent: an orchestration is replayed (generator cache off, and a restart onto a
// new runtime halfway through), its code re-runs with ctx.isReplaying true exactly for the
// steps history already holds, and each ctx.trace* line still reaches the log once.
// The run happens in a child process so its stderr (the tracing output) can be read.
// In-process, trace calls on a replayed path neither fail nor change the run.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { storeLocation, dropStore, startEnv } = require('./helpers');

const WORKER = path.join(__dirname, 'fixtures', 'replay-worker.js');

function run(cacheSize) {
  const location = storeLocation(`replay-${cacheSize}`);
  try {
    const env = { ...process.env, RUST_LOG: 'reprise::orchestration=debug,reprise::activity=info' };
    const r = spawnSync(process.execPath, [WORKER, location, String(cacheSize)], { env, encoding: 'utf8', timeout: 60000 });
    assert.equal(r.status, 0, r.stderr);
    return { ...JSON.parse(r.stdout), stderr: r.stderr };
  } finally {
    dropStore(location);
  }
}

const TRACES = [
  ['INFO', 'trace-line start'],
  ['WARN', 'trace-line after-step-1 2'],
  ['DEBUG', 'trace-line after-timer'],
  ['ERROR', 'trace-line after-go yes'],
  ['INFO', 'trace-line after-step-2 4'],
];

/** Every orchestration trace line once, in order, at its level, with its instance fields. */
function assertTracedOnce(stderr) {
  const lines = stderr.split('\n').filter((l) => l.includes('reprise::orchestration'));
  assert.equal(lines.length, TRACES.length, `one line per trace call, none repeated by replays:\n${lines.join('\n')}`);
  TRACES.forEach(([level, text], i) => {
    // The compact format: the span's fields after the message.
    assert.ok(lines[i].endsWith(`reprise::orchestration: ${text} instance_id=replayed-1 execution_id=1 name=Replayed`), `line ${i}: ${lines[i]}`);
    assert.match(lines[i], new RegExp(`\\s${level} orchestration: `));
  });
  const activity = stderr.split('\n').filter((l) => l.includes('reprise::activity'));
  assert.deepEqual(activity.map((l) => l.replace(/^.*reprise::activity: /, '').replace(/ instance_id=.*$/, '')), ['activity-trace Step 1', 'activity-trace Step 2']);
}

test('generator cache off, and a restart: every turn replays, isReplaying marks exactly the replayed steps, each trace appears once', () => {
  const r = run(0);
  assert.equal(r.status, 'Completed', r.error);
  assert.deepEqual(r.output, { a: 2, b: 4, go: 'yes', replayingAtEnd: false });
  assert.deepEqual(r.marks, [
    // first runtime: turn 1 (start), turn 2 (Step 1 done), turn 3 (timer fired)
    'first start:live',
    'first start:replay',
    'first after-step-1:live',
    'first start:replay',
    'first after-step-1:replay',
    'first after-timer:live',
    // second runtime: turn 4 (the event), turn 5 (Step 2 done)
    'second start:replay',
    'second after-step-1:replay',
    'second after-timer:replay',
    'second after-go:live',
    'second start:replay',
    'second after-step-1:replay',
    'second after-timer:replay',
    'second after-go:replay',
    'second after-step-2:live',
  ]);
  assert.equal(r.fullReplays, 2, 'both turns of the second runtime replayed from the start');
  assertTracedOnce(r.stderr);
});

test('generator cache on, and a restart: only the new runtime’s first turn replays; each trace appears once', () => {
  const r = run(1000);
  assert.equal(r.status, 'Completed', r.error);
  assert.deepEqual(r.output, { a: 2, b: 4, go: 'yes', replayingAtEnd: false });
  assert.deepEqual(r.marks, [
    'first start:live',
    'first after-step-1:live',
    'first after-timer:live',
    'second start:replay',
    'second after-step-1:replay',
    'second after-timer:replay',
    'second after-go:live',
    'second after-step-2:live',
  ]);
  assert.equal(r.fullReplays, 1, 'the second runtime rebuilt the generator once, then kept it');
  assertTracedOnce(r.stderr);
});

test('trace calls are silent during replay and do not disturb the run', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('A', async () => 1);
    rt.registerOrchestration('Traced', function* (ctx) {
      ctx.traceInfo('before');
      yield ctx.scheduleActivity('A');
      ctx.traceWarn('between');
      ctx.traceDebug('debug');
      ctx.traceError('after');
      return ctx.isReplaying;
    });
  });
  try {
    await env.client.startOrchestration('tr-1', 'Traced');
    assert.equal((await env.client.waitForOrchestration('tr-1', 10000)).output, false);
  } finally {
    await env.drop();
  }
});
