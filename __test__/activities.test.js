'use strict';
// Activities seen from the orchestration: a failure is thrown at the yield (caught there, or
// failing the instance with its message and code), and a function or symbol is not data: refused like a task or a Promise.
const test = require('node:test');
const assert = require('node:assert/strict');
const { TaskFailedError } = require('..');
const { startEnv } = require('./helpers');

test('an activity error is thrown at the yield and can be caught; an uncaught one fails the instance', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Boom', async (ctx, msg) => {
      const e = new Error(msg);
      e.code = 'E_BOOM';
      throw e;
    });
    rt.registerOrchestration('Catches', function* (ctx) {
      try {
        yield ctx.scheduleActivity('Boom', 'caught me');
        return 'not reached';
      } catch (e) {
        return { message: e.message, code: e.code, isTaskError: e instanceof TaskFailedError };
      }
    });
    rt.registerOrchestration('Throws', function* (ctx) {
      yield ctx.scheduleActivity('Boom', 'uncaught');
    });
  });
  try {
    await env.client.startOrchestration('c-1', 'Catches');
    await env.client.startOrchestration('t-1', 'Throws');
    assert.deepEqual((await env.client.waitForOrchestration('c-1', 10000)).output, { message: 'caught me', code: 'E_BOOM', isTaskError: true });
    const failed = await env.client.waitForOrchestration('t-1', 10000);
    assert.equal(failed.status, 'Failed');
    assert.equal(failed.error, 'uncaught');
    assert.equal(failed.errorCode, 'E_BOOM');
  } finally {
    await env.drop();
  }
});

test('a top-level function or symbol is not data: an orchestration output fails the instance, an activity result fails at the yield', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Symbol', async () => Symbol('not JSON'));
    rt.registerActivity('Fn', async () => () => 'not JSON');
    rt.registerOrchestration('ReturnsFunction', function* () {
      return function notJson() {};
    });
    rt.registerOrchestration('GetsSymbol', function* (ctx) {
      const s = yield ctx.scheduleActivity('Symbol');
      const f = yield ctx.scheduleActivity('Fn');
      return { s, f };
    });
  });
  try {
    await env.client.startOrchestration('fn-out', 'ReturnsFunction');
    await env.client.startOrchestration('sym-result', 'GetsSymbol');
    const fn = await env.client.waitForOrchestration('fn-out', 10000);
    assert.equal(fn.status, 'Failed');
    assert.equal(fn.errorCode, 'ERR_INVALID_ARGUMENT');
    assert.match(fn.error, /the orchestration output is a function, which is not data/);
    const history = await env.client.readStoredHistory('fn-out');
    assert.deepEqual(history.map((e) => e.kind), ['ExecutionStarted', 'ExecutionFailed']);
    const sym = await env.client.waitForOrchestration('sym-result', 10000);
    assert.equal(sym.status, 'Failed');
    assert.equal(sym.errorCode, 'ERR_INVALID_ARGUMENT');
    assert.match(sym.error, /is a symbol, which is not data/);
  } finally {
    await env.drop();
  }
});
