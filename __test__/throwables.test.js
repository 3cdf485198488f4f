'use strict';
// Whatever user code throws, an orchestration or an activity, is recorded with what can be
// kept and takes nothing else down: no crash, no abandoned or poisoned turn, and the runtime
// goes on running other instances.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv } = require('./helpers');

function cyclicError() {
  const e = new Error('cyclic cause');
  e.cause = e;
  return e;
}

class NameGetterThrows extends Error {
  get name() {
    throw new Error('no name for you');
  }
}

function revokedProxy() {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

// A Proxy whose handler throws on every trap.
const trapsThrow = () => new Proxy({}, new Proxy({}, { get: () => () => { throw new Error('trap'); } }));

/** A long text, briefly: its length and both ends. */
const short = (text) => (typeof text === 'string' && text.length > 100 ? `${text.length} characters: ${JSON.stringify(text.slice(0, 40))}…${JSON.stringify(text.slice(-40))}` : JSON.stringify(text));

/** name -> [make the thrown value, the message recorded, the code recorded (undefined: none)]. */
const THROWABLES = {
  null: [() => null, 'null was thrown (not an Error)'],
  undefined: [() => undefined, 'undefined was thrown (not an Error)'],
  string: [() => 'a plain string', 'a plain string'],
  number: [() => 42, 'number 42 was thrown (not an Error)'],
  symbol: [() => Symbol('sym'), 'symbol Symbol(sym) was thrown (not an Error)'],
  bigint: [() => 10n, 'bigint 10 was thrown (not an Error)'],
  messageGetterThrows: [() => ({ get message() { throw new Error('getter'); } }), 'an object whose message cannot be read was thrown'],
  errorMessageGetterThrows: [
    () => Object.defineProperty(new Error('x'), 'message', { get() { throw new Error('no message'); } }),
    'an Error whose message cannot be read was thrown',
  ],
  proxyTrapsThrow: [trapsThrow, 'a value that cannot be read was thrown'],
  revokedProxy: [revokedProxy, 'a value that cannot be read was thrown'],
  cyclicCause: [cyclicError, 'cyclic cause'],
  bigintCode: [() => Object.assign(new Error('bigint code'), { code: 10n }), 'bigint code', '10'],
  bigintMessage: [() => Object.assign(new Error('x'), { message: 5n }), '5'],
  objectMessage: [() => Object.assign(new Error('x'), { message: { nested: true } }), 'an Error whose message is an object was thrown'],
  codeGetterThrows: [() => Object.defineProperty(new Error('code getter'), 'code', { get() { throw new Error('no code'); } }), 'code getter'],
  toJsonThrows: [() => ({ toJSON() { throw new Error('toJSON'); } }), 'an object was thrown (not an Error)'],
  nameGetterThrows: [() => new NameGetterThrows('name getter'), 'name getter'],
  frozen: [() => Object.freeze({ message: 'frozen', code: 'E_FROZEN' }), 'frozen', 'E_FROZEN'],
  function: [() => function thrown() {}, 'a function was thrown (not an Error)'],
  nullPrototype: [() => Object.assign(Object.create(null), { message: 'no prototype', code: 'E_NULL_PROTO' }), 'no prototype', 'E_NULL_PROTO'],
  plainObject: [() => ({ status: 500 }), 'an object was thrown (not an Error): {"status":500}'],
  loneSurrogate: [() => Object.assign(new Error('lone \uD800 surrogate'), { code: 'E_\uDC00' }), 'lone \uFFFD surrogate', 'E_\uFFFD'],
  nul: [() => Object.assign(new Error('nul\0byte'), { code: 'E_\0' }), 'nul\uFFFDbyte', 'E_\uFFFD'],
  huge: [() => new Error('m'.repeat(70000)), `${'m'.repeat(65536)}… (4464 more characters)`],
};

test('anything an orchestration or an activity throws fails it with a readable message; the runtime goes on', async () => {
  const env = await startEnv((rt) => {
    for (const [name, [make]] of Object.entries(THROWABLES)) {
      rt.registerOrchestration(`Throws_${name}`, function* () {
        throw make();
      });
      rt.registerActivity(`Throws_${name}`, async () => {
        throw make();
      });
      rt.registerActivity(`ThrowsSync_${name}`, () => {
        throw make();
      });
    }
    rt.registerOrchestration('CatchesActivity', function* (ctx, activity) {
      try {
        yield ctx.scheduleActivity(activity);
        return 'not reached';
      } catch (e) {
        return { message: e.message, code: e.code };
      }
    });
    rt.registerActivity('Double', (ctx, n) => n * 2);
    rt.registerOrchestration('Healthy', function* (ctx, n) {
      return yield ctx.scheduleActivity('Double', n);
    });
  });
  try {
    const names = Object.keys(THROWABLES);
    for (const name of names) {
      await env.client.startOrchestration(`orch-${name}`, `Throws_${name}`);
      await env.client.startOrchestration(`act-${name}`, 'CatchesActivity', `Throws_${name}`);
      await env.client.startOrchestration(`sync-${name}`, 'CatchesActivity', `ThrowsSync_${name}`);
    }
    // Started after all of them: still runs.
    await env.client.startOrchestration('healthy', 'Healthy', 21);
    for (const name of names) {
      const [, message, code] = THROWABLES[name];
      const orch = await env.client.waitForOrchestration(`orch-${name}`, 20000);
      assert.equal(orch.status, 'Failed', name);
      assert.ok(orch.error === message, `${name}: got ${short(orch.error)}`);
      assert.equal(orch.errorCode, code ?? 'ERR_ORCHESTRATION_FAILED', name);
      for (const prefix of ['act', 'sync']) {
        const act = await env.client.waitForOrchestration(`${prefix}-${name}`, 20000);
        assert.equal(act.status, 'Completed', `${prefix} ${name}: ${act.error}`);
        assert.ok(act.output.message === message, `${prefix} ${name}: got ${short(act.output.message)}`);
        assert.equal(act.output.code, code ?? 'ERR_TASK_FAILED', `${prefix} ${name}`);
      }
    }
    assert.deepEqual(await env.client.waitForOrchestration('healthy', 20000).then((s) => [s.status, s.output]), ['Completed', 42]);
    const metrics = env.runtime.metricsSnapshot();
    assert.equal(metrics.turnsAbandoned, 0, 'no turn was abandoned');
    assert.equal(metrics.poisoned, 0, 'nothing was poisoned');
  } finally {
    await env.drop();
  }
});

test('a thrown error keeps its name, and an uncaught activity failure fails the instance with its message', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('TypeErr', () => {
      throw new TypeError('wrong type');
    });
    rt.registerActivity('Odd', () => {
      throw trapsThrow();
    });
    rt.registerOrchestration('Names', function* (ctx) {
      try {
        yield ctx.scheduleActivity('TypeErr');
      } catch (e) {
        return { message: e.message, code: e.code, originalName: e.originalName };
      }
    });
    rt.registerOrchestration('Uncaught', function* (ctx) {
      yield ctx.scheduleActivity('Odd');
    });
  });
  try {
    await env.client.startOrchestration('names', 'Names');
    await env.client.startOrchestration('uncaught', 'Uncaught');
    assert.deepEqual((await env.client.waitForOrchestration('names', 10000)).output, { message: 'wrong type', code: 'ERR_TASK_FAILED', originalName: 'TypeError' });
    const uncaught = await env.client.waitForOrchestration('uncaught', 10000);
    assert.equal(uncaught.status, 'Failed');
    assert.equal(uncaught.error, 'a value that cannot be read was thrown');
    assert.equal(uncaught.errorCode, 'ERR_TASK_FAILED');
  } finally {
    await env.drop();
  }
});
