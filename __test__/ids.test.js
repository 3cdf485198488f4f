'use strict';
// Ids and names reach the store exactly: a string that is not valid UTF-16 (a lone
// surrogate, which UTF-8 cannot carry and would be rewritten to U+FFFD) or that holds NUL
// (which PostgreSQL text cannot hold) is refused with ERR_INVALID_ARGUMENT on every backend,
// at the client and in orchestration code, so two different strings never name one instance.
// REPRISE_TEST_PROVIDER=postgres runs this file on PostgreSQL.
const test = require('node:test');
const assert = require('node:assert/strict');
const { SqliteProvider, Runtime, InvalidArgumentError, defineActivity } = require('..');
const { startEnv, runtimeOptions } = require('./helpers');

const invalid = (message) => (e) => e instanceof InvalidArgumentError && e.code === 'ERR_INVALID_ARGUMENT' && e.message === message;
const surrogate = (what, got, at) => `${what} must be valid UTF-16: it has a lone surrogate (at code point ${at}), got ${got}`;
const nul = (what, got) => `${what} must not contain a NUL character (\\u0000), got ${got}`;

test('the client refuses ids, names and reasons with a lone surrogate or NUL; a look-alike id is its own instance', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Echo', function* (ctx, x) {
      return x;
    });
    rt.registerOrchestration('Waits', function* (ctx) {
      return yield ctx.waitForEvent('go');
    });
  });
  const c = env.client;
  try {
    await assert.rejects(c.startOrchestration('a\uD800', 'Echo', 1), invalid(surrogate('instanceId', '"a\\ud800"', 1)));
    await assert.rejects(c.startOrchestration('\uDC00b', 'Echo', 1), invalid(surrogate('instanceId', '"\\udc00b"', 0)));
    await assert.rejects(c.startOrchestration('a\0b', 'Echo', 1), invalid(nul('instanceId', '"a\\u0000b"')));
    await assert.rejects(c.startOrchestration('ok', 'Echo\uD800', 1), invalid(surrogate('orchestrationName', '"Echo\\ud800"', 4)));
    await assert.rejects(c.startOrchestration('ok', 'Echo\0', 1), invalid(nul('orchestrationName', '"Echo\\u0000"')));
    for (const call of [
      () => c.getStatus('x\uD800'),
      () => c.waitForOrchestration('x\uD800', 10),
      () => c.getInstanceInfo('x\uD800'),
      () => c.readStoredHistory('x\uD800'),
      () => c.listExecutions('x\uD800'),
      () => c.cancelInstance('x\uD800'),
      () => c.deleteInstance('x\uD800'),
      () => c.retryInstance('x\uD800'),
      () => c.raiseEvent('x\uD800', 'go', 1),
    ]) {
      await assert.rejects(call(), invalid(surrogate('instanceId', '"x\\ud800"', 1)));
    }
    await assert.rejects(c.listInstances({ parentId: 'p\0' }), invalid(nul('options.parentId', '"p\\u0000"')));
    await assert.rejects(c.listInstances({ name: 'n\uD800' }), invalid(surrogate('options.name', '"n\\ud800"', 1)));
    await assert.rejects(c.deleteInstances({ ids: ['fine', 'x\uD800'] }), invalid(surrogate('options.ids[1]', '"x\\ud800"', 1)));

    // U+FFFD, what a lone surrogate would have become, and a surrogate pair are ids of their own.
    assert.equal(await c.startOrchestration('a\uFFFD', 'Echo', 'replacement'), true);
    assert.equal(await c.startOrchestration('a\uD83D\uDE00', 'Echo', 'emoji'), true);
    assert.equal((await c.waitForOrchestration('a\uFFFD', 10000)).output, 'replacement');
    assert.equal((await c.waitForOrchestration('a\uD83D\uDE00', 10000)).output, 'emoji');
    assert.equal((await c.getInstanceInfo('a\uD83D\uDE00')).instanceId, 'a\uD83D\uDE00');
    const ids = (await c.listInstances({ name: 'Echo' })).instances.map((i) => i.instanceId).sort();
    assert.deepEqual(ids, ['a\uD83D\uDE00', 'a\uFFFD'].sort());

    // Event names and cancel reasons.
    await c.startOrchestration('w', 'Waits');
    await assert.rejects(c.raiseEvent('w', 'go\uDBFF', 1), invalid(surrogate('eventName', '"go\\udbff"', 2)));
    await assert.rejects(c.raiseEvent('w', 'go\0', 1), invalid(nul('eventName', '"go\\u0000"')));
    await assert.rejects(c.cancelInstance('w', 'stop\0now'), invalid(nul('reason', '"stop\\u0000now"')));
    await assert.rejects(c.cancelInstance('w', 'stop\uD800'), invalid(surrogate('reason', '"stop\\ud800"', 4)));
    await assert.rejects(c.cancelInstance('w', 42), invalid('reason must be a string, got number 42'));
    assert.equal((await c.getStatus('w')).status, 'Running', 'nothing reached the instance');
    await c.raiseEvent('w', 'go', 'went');
    assert.equal((await c.waitForOrchestration('w', 10000)).output, 'went');
  } finally {
    await env.drop();
  }
});

test('in orchestration code: sub-orchestration ids, event, activity and orchestration names are checked at the call', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Act', () => 'ran');
    rt.registerOrchestration('Child', function* () {
      return 'child';
    });
    const cases = {
      ChildId: (ctx) => ctx.scheduleSubOrchestrationWithId('Child', 'kid\uD800', null),
      DetachedId: (ctx) => ctx.startOrchestration('Child', 'kid\0', null),
      ChildName: (ctx) => ctx.scheduleSubOrchestration('Child\uDFFF', null),
      EventName: (ctx) => ctx.waitForEvent('ev\0'),
      ActivityName: (ctx) => ctx.scheduleActivity('Act\uD800', null),
      Definition: (ctx) => ctx.activity({ name: 'Act\0', fn() {} }),
    };
    for (const [name, call] of Object.entries(cases)) {
      rt.registerOrchestration(name, function* (ctx) {
        return yield call(ctx);
      });
    }
    rt.registerOrchestration('Fine', function* (ctx) {
      const kid = yield ctx.scheduleSubOrchestrationWithId('Child', 'kid\uFFFD', null);
      return [kid, yield ctx.scheduleActivity('Act')];
    });
  });
  try {
    const expected = {
      ChildId: surrogate('sub-orchestration instanceId', '"kid\\ud800"', 3),
      DetachedId: nul('instanceId', '"kid\\u0000"'),
      ChildName: surrogate('orchestration name', '"Child\\udfff"', 5),
      EventName: nul('event name', '"ev\\u0000"'),
      ActivityName: surrogate('activity name', '"Act\\ud800"', 3),
      Definition: nul('ctx.activity(definition, input): definition.name', '"Act\\u0000"'),
    };
    for (const name of [...Object.keys(expected), 'Fine']) await env.client.startOrchestration(name, name);
    for (const [name, error] of Object.entries(expected)) {
      const s = await env.client.waitForOrchestration(name, 10000);
      assert.equal(s.status, 'Failed', name);
      assert.equal(s.errorCode, 'ERR_INVALID_ARGUMENT', name);
      assert.equal(s.error, error, name);
    }
    assert.deepEqual((await env.client.waitForOrchestration('Fine', 10000)).output, ['child', 'ran']);
    assert.equal((await env.client.getInstanceInfo('kid\uFFFD')).parentId, 'Fine');
    assert.equal(env.runtime.metricsSnapshot().turnsAbandoned, 0);
  } finally {
    await env.drop();
  }
});

test('registration, defineActivity and SQLite URLs refuse a lone surrogate or NUL', async () => {
  const rt = new Runtime(await SqliteProvider.inMemory(), runtimeOptions());
  assert.throws(() => rt.registerOrchestration('O\uD800', function* () {}), invalid(surrogate('orchestration name', '"O\\ud800"', 1)));
  assert.throws(() => rt.registerActivity('A\0', () => 1), invalid(nul('activity name', '"A\\u0000"')));
  assert.throws(() => defineActivity('D\uDC00', () => 1), invalid(surrogate('defineActivity(name, fn): name', '"D\\udc00"', 1)));
  // The file system would get U+FFFD: another file than the one named.
  await assert.rejects(SqliteProvider.open('sqlite:./x\uD800.db'), invalid(surrogate('SqliteProvider.open(url): url', '"sqlite:./x\\ud800.db"', 10)));
  await assert.rejects(SqliteProvider.open('sqlite:./x\0.db'), invalid(nul('SqliteProvider.open(url): url', '"sqlite:./x\\u0000.db"')));
});
