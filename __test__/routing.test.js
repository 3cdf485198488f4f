'use strict';
// Routing on one store: work for a name no live runtime has waits, visibly, and fails with
// ERR_NOT_REGISTERED only by the not-registered rule; a runtime holds at most
// maxSessionsPerRuntime activity sessions. (Routing between processes: routing-processes.)
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv, eventually, sleep } = require('./helpers');

test('an instance of an orchestration no runtime has waits visibly (waitingForRuntime, the metrics gauge), then fails notRegisteredGraceMs after its start', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Known', function* () {
      return 'known';
    });
  }, { notRegisteredGraceMs: 2500, heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1000, metricsIntervalMs: 200 });
  try {
    await env.client.startOrchestration('typo', 'Unknwn', null);
    await env.client.startOrchestration('known', 'Known', null);
    assert.equal((await env.client.waitForOrchestration('known', 10000)).output, 'known');
    const info = await env.client.getInstanceInfo('typo');
    assert.equal(info.status, 'Running');
    assert.equal(info.waitingForRuntime, true);
    const listed = (await env.client.listInstances()).instances;
    assert.deepEqual(Object.fromEntries(listed.map((i) => [i.instanceId, i.waitingForRuntime])), { typo: true, known: false });
    await eventually(() => env.runtime.metricsSnapshot().orchestrationsWithoutRuntime === 1, 5000, 'the gauge to count the waiting start');
    const failed = await env.client.waitForOrchestration('typo', 15000);
    assert.equal(failed.status, 'Failed');
    assert.equal(failed.errorCode, 'ERR_NOT_REGISTERED');
    assert.match(failed.error, /orchestration 'Unknwn' is not registered/);
    await eventually(() => env.runtime.metricsSnapshot().orchestrationsWithoutRuntime === 0, 5000, 'the gauge to drop');
  } finally {
    await env.drop();
  }
});

test('work for names a stopped runtime had waits past notRegisteredGraceMs, and fails only unservedGraceMs after that runtime stopped', async () => {
  const fast = { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1000, pollIntervalMs: 200, metricsIntervalMs: 200 };
  // The first runtime has the orchestration 'Old' and the activity 'OldStep'.
  const first = await startEnv((rt) => {
    rt.registerActivity('OldStep', () => 'ran');
    rt.registerOrchestration('Old', function* () {
      return 'old';
    });
    rt.registerOrchestration('UsesOldStep', function* (ctx) {
      try {
        return yield ctx.scheduleActivity('OldStep');
      } catch (e) {
        return e.code;
      }
    });
  }, fast);
  const location = first.path;
  await first.client.startOrchestration('warm', 'UsesOldStep', null);
  assert.equal((await first.client.waitForOrchestration('warm', 10000)).output, 'ran');
  await first.stop();

  // A second one has neither 'Old' nor 'OldStep': their work waits.
  const only = (rt) => {
    rt.registerOrchestration('UsesOldStep', function* (ctx) {
      try {
        return yield ctx.scheduleActivity('OldStep');
      } catch (e) {
        return e.code;
      }
    });
  };
  const second = await startEnv(only, { ...fast, notRegisteredGraceMs: 300, unservedGraceMs: 600000 }, location);
  try {
    await second.client.startOrchestration('old', 'Old', null);
    await second.client.startOrchestration('step', 'UsesOldStep', null);
    await sleep(2000);
    assert.equal((await second.client.getStatus('old')).status, 'Running', 'the orchestration waits');
    assert.equal((await second.client.getInstanceInfo('old')).waitingForRuntime, true);
    assert.equal((await second.client.getStatus('step')).status, 'Running', 'the activity waits');
    await eventually(() => second.runtime.metricsSnapshot().activitiesWithoutRuntime === 1, 5000, 'the activity gauge');
  } finally {
    await second.stop();
  }
  // A third with a short unservedGraceMs: both fail as not registered.
  const third = await startEnv(only, { ...fast, notRegisteredGraceMs: 300, unservedGraceMs: 500 }, location);
  try {
    const old = await third.client.waitForOrchestration('old', 15000);
    assert.equal(old.status, 'Failed');
    assert.equal(old.errorCode, 'ERR_NOT_REGISTERED');
    assert.match(old.error, /no runtime has had it for \d+ ms/);
    assert.equal((await third.client.waitForOrchestration('step', 15000)).output, 'ERR_NOT_REGISTERED');
  } finally {
    await third.drop();
  }
});

test('maxSessionsPerRuntime: a runtime holding its one session takes another only once the first is idle; plain activities run beside it', async () => {
  const spans = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('Timed', async (ctx, label) => {
      const start = Date.now();
      await sleep(150);
      spans.push({ label, session: ctx.sessionId, start, end: Date.now() });
      return label;
    });
    rt.registerOrchestration('TwoSessions', function* (ctx) {
      return yield ctx.all([
        ctx.scheduleActivityOnSession('Timed', 'a', 'sa'),
        ctx.scheduleActivityOnSession('Timed', 'b', 'sb'),
        ctx.scheduleActivity('Timed', 'plain'),
      ]);
    });
  }, { maxSessionsPerRuntime: 1, sessionIdleTimeoutMs: 300, pollIntervalMs: 100 });
  try {
    await env.client.startOrchestration('two', 'TwoSessions', null);
    const s = await env.client.waitForOrchestration('two', 15000);
    assert.deepEqual(s.output, [{ ok: 'a' }, { ok: 'b' }, { ok: 'plain' }]);
    const [first, second] = spans.filter((x) => x.session).sort((x, y) => x.start - y.start);
    assert.ok(second.start >= first.end, `the second session started (${second.start}) after the first one's activity ended (${first.end})`);
    const plain = spans.find((x) => !x.session);
    assert.ok(plain.start < first.end, 'the plain activity did not wait for the sessions');
  } finally {
    await env.drop();
  }
});

test('a runtime with orchestrationConcurrency: 0 runs no orchestrations: its instances wait for one that does', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Never', function* () {
      return 1;
    });
    rt.registerActivity('Act', () => 1);
  }, { orchestrationConcurrency: 0 });
  try {
    await env.client.startOrchestration('never', 'Never', null);
    assert.equal((await env.client.getInstanceInfo('never')).waitingForRuntime, true);
    const [me] = await env.client.listRuntimes();
    assert.deepEqual(me.orchestrations, [], 'it lists no orchestrations it would not run');
    assert.deepEqual(me.activities, ['Act']);
  } finally {
    await env.drop();
  }
});
