'use strict';
// A value that is not data (an unyielded task, a Promise, a Map or Set) or that JSON cannot
// carry (a BigInt, a cycle, a throwing getter or toJSON) is refused with ERR_INVALID_ARGUMENT
// naming the mistake, wherever user code hands one over: an orchestration's output, an
// activity's result, continue-as-new input, custom status, sub-orchestration and activity
// input, and the client's input and event data. Nothing is stored for it.
const test = require('node:test');
const assert = require('node:assert/strict');
const { InvalidArgumentError, Task } = require('..');
const { startEnv } = require('./helpers');

const NEVER_YIELDED = 'that was never yielded: yield it to get its result (did you forget `yield`?)';
const PROMISE = 'a Promise, which cannot be stored (await it first; in an orchestration, do async work in an activity: a Promise cannot be replayed)';

function cyclic() {
  const o = { name: 'loop' };
  o.self = o;
  return o;
}

/** Orchestrations returning odd values: name -> [body, expected error]. */
const RETURNS = {
  Task: [(ctx) => ctx.scheduleActivity('Echo', 1), `the orchestration output is a task (activity 'Echo') ${NEVER_YIELDED}`],
  NestedTask: [(ctx) => ({ user: { load: ctx.scheduleTimer(5) } }), `the orchestration output contains, at .user.load, a task (timer) ${NEVER_YIELDED}`],
  TaskInArray: [(ctx) => [1, ctx.waitForEvent('go')], `the orchestration output contains, at [1], a task (waitForEvent 'go') ${NEVER_YIELDED}`],
  AllTask: [(ctx) => ctx.all([ctx.scheduleActivity('Echo', 1)]), `the orchestration output is a task (ctx.all) ${NEVER_YIELDED}`],
  Promise: [() => Promise.resolve(1), `the orchestration output is ${PROMISE}`],
  NestedPromise: [() => ({ later: Promise.resolve(1) }), `the orchestration output contains, at .later, ${PROMISE}`],
  Map: [() => new Map([['a', 1]]), 'the orchestration output is a Map, which JSON would store as {} (convert it first, e.g. Object.fromEntries(map))'],
  NestedSet: [() => ({ 'tag list': new Set(['a']) }), 'the orchestration output contains, at ["tag list"], a Set, which JSON would store as {} (convert it first, e.g. [...set])'],
  BigInt: [() => ({ n: 1n }), 'the orchestration output cannot be stored as JSON: it contains a BigInt (convert it to a string or number first)'],
  Cycle: [cyclic, 'the orchestration output cannot be stored as JSON: it contains a circular reference'],
  ThrowingGetter: [() => ({ get boom() { throw new Error('getter boom'); } }), 'the orchestration output cannot be stored as JSON: serializing it threw: getter boom'],
  ToJsonThrows: [() => ({ toJSON() { throw new RangeError('toJSON boom'); } }), 'the orchestration output cannot be stored as JSON: serializing it threw: toJSON boom'],
  ToJsonThrowsNull: [() => ({ toJSON() { throw null; } }), 'the orchestration output cannot be stored as JSON: serializing it threw: null'],
  Proxy: [() => new Proxy({}, { get() { throw new Error('trap'); } }), 'the orchestration output is a value that cannot be read (trap)'],
};

/** Activities returning odd values: name -> [fn, expected error]. */
const RESULTS = {
  Task: [() => new Task('timer', { delayMs: 1 }), `the result of activity 'Task' is a task (timer) ${NEVER_YIELDED}`],
  NestedPromise: [async () => ({ data: new Promise(() => {}) }), `the result of activity 'NestedPromise' contains, at .data, ${PROMISE}`],
  Set: [() => new Set([1]), "the result of activity 'Set' is a Set, which JSON would store as {} (convert it first, e.g. [...set])"],
  BigInt: [() => 5n, "the result of activity 'BigInt' cannot be stored as JSON: it contains a BigInt (convert it to a string or number first)"],
  Cycle: [cyclic, "the result of activity 'Cycle' cannot be stored as JSON: it contains a circular reference"],
  ThrowingGetter: [() => ({ get x() { throw new Error('getter'); } }), "the result of activity 'ThrowingGetter' cannot be stored as JSON: serializing it threw: getter"],
  ThenGetterThrows: [() => ({ get then() { throw new Error('then getter'); } }), 'then getter'],
};

test('an orchestration returning a task, a Promise or what JSON cannot carry fails at once with ERR_INVALID_ARGUMENT', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Echo', (ctx, x) => x);
    for (const [name, [body]] of Object.entries(RETURNS)) {
      rt.registerOrchestration(`Returns${name}`, function* (ctx) {
        return body(ctx);
      });
    }
    rt.registerOrchestration('Fine', function* (ctx, x) {
      return yield ctx.scheduleActivity('Echo', x);
    });
  });
  try {
    for (const name of Object.keys(RETURNS)) await env.client.startOrchestration(`r-${name}`, `Returns${name}`);
    await env.client.startOrchestration('fine', 'Fine', { ok: true });
    for (const [name, [, error]] of Object.entries(RETURNS)) {
      const s = await env.client.waitForOrchestration(`r-${name}`, 10000);
      assert.equal(s.status, 'Failed', name);
      assert.equal(s.errorCode, 'ERR_INVALID_ARGUMENT', name);
      assert.equal(s.error, error, name);
      // At once: the failure is the first turn's, and no task was scheduled.
      const kinds = (await env.client.readStoredHistory(`r-${name}`)).map((e) => e.kind);
      assert.deepEqual(kinds, ['ExecutionStarted', 'ExecutionFailed'], name);
    }
    assert.deepEqual((await env.client.waitForOrchestration('fine', 10000)).output, { ok: true });
    assert.equal(env.runtime.metricsSnapshot().turnsAbandoned, 0);
  } finally {
    await env.drop();
  }
});

test('an activity returning a task, a nested Promise or what JSON cannot carry fails with ERR_INVALID_ARGUMENT at the yield', async () => {
  const env = await startEnv((rt) => {
    for (const [name, [fn]] of Object.entries(RESULTS)) rt.registerActivity(name, fn);
    rt.registerOrchestration('Calls', function* (ctx, name) {
      try {
        return { value: yield ctx.scheduleActivity(name) };
      } catch (e) {
        return { message: e.message, code: e.code };
      }
    });
    rt.registerOrchestration('Uncaught', function* (ctx) {
      return yield ctx.scheduleActivity('Task');
    });
  });
  try {
    for (const name of Object.keys(RESULTS)) await env.client.startOrchestration(`a-${name}`, 'Calls', name);
    await env.client.startOrchestration('uncaught', 'Uncaught');
    for (const [name, [, message]] of Object.entries(RESULTS)) {
      const s = await env.client.waitForOrchestration(`a-${name}`, 10000);
      const code = name === 'ThenGetterThrows' ? 'ERR_TASK_FAILED' : 'ERR_INVALID_ARGUMENT';
      assert.deepEqual(s.output, { message, code }, name);
    }
    const uncaught = await env.client.waitForOrchestration('uncaught', 10000);
    assert.equal(uncaught.status, 'Failed');
    assert.equal(uncaught.errorCode, 'ERR_INVALID_ARGUMENT');
    assert.equal(uncaught.error, `the result of activity 'Task' is a task (timer) ${NEVER_YIELDED}`);
  } finally {
    await env.drop();
  }
});

test('continue-as-new input, custom status, sub-orchestration and activity input that are tasks or Promises are refused at the call', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Echo', (ctx, x) => x);
    rt.registerOrchestration('Child', function* (ctx, x) {
      return x;
    });
    rt.registerOrchestration('ContinueWithTask', function* (ctx) {
      yield ctx.continueAsNew(ctx.scheduleActivity('Echo', 1));
    });
    rt.registerOrchestration('StatusPromise', function* (ctx) {
      ctx.setCustomStatus({ progress: Promise.resolve(50) });
    });
    rt.registerOrchestration('ChildInputTask', function* (ctx) {
      yield ctx.scheduleSubOrchestration('Child', ctx.scheduleTimer(1));
    });
    rt.registerOrchestration('ActivityInputMap', function* (ctx) {
      try {
        yield ctx.scheduleActivity('Echo', { m: new Map() });
      } catch (e) {
        return `caught ${e.code}: ${e.message}`;
      }
    });
  });
  try {
    const cases = {
      ContinueWithTask: `continueAsNew input is a task (activity 'Echo') ${NEVER_YIELDED}`,
      StatusPromise: `custom status contains, at .progress, ${PROMISE}`,
      ChildInputTask: `input of orchestration 'Child' is a task (timer) ${NEVER_YIELDED}`,
    };
    for (const name of [...Object.keys(cases), 'ActivityInputMap']) await env.client.startOrchestration(name, name);
    for (const [name, error] of Object.entries(cases)) {
      const s = await env.client.waitForOrchestration(name, 10000);
      assert.equal(s.status, 'Failed', name);
      assert.equal(s.errorCode, 'ERR_INVALID_ARGUMENT', name);
      assert.equal(s.error, error, name);
      assert.equal(s.customStatus, null, name);
      assert.deepEqual((await env.client.listExecutions(name)).length, 1, `${name}: no new execution`);
    }
    assert.equal(
      (await env.client.waitForOrchestration('ActivityInputMap', 10000)).output,
      "caught ERR_INVALID_ARGUMENT: input of activity 'Echo' contains, at .m, a Map, which JSON would store as {} (convert it first, e.g. Object.fromEntries(map))",
    );
  } finally {
    await env.drop();
  }
});

test('the client refuses a task, a Promise or a Map as input or event data, and stores nothing', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Waits', function* (ctx) {
      return yield ctx.waitForEvent('go');
    });
  });
  const invalid = (message) => (e) => e instanceof InvalidArgumentError && e.code === 'ERR_INVALID_ARGUMENT' && e.message === message;
  try {
    const task = new Task('timer', { delayMs: 1 });
    await assert.rejects(env.client.startOrchestration('t1', 'Waits', task), invalid(`input is a task (timer) ${NEVER_YIELDED}`));
    await assert.rejects(env.client.startOrchestration('t2', 'Waits', Promise.resolve(1)), invalid(`input is ${PROMISE}`));
    await assert.rejects(env.client.startOrchestration('t3', 'Waits', { m: new Map() }), invalid('input contains, at .m, a Map, which JSON would store as {} (convert it first, e.g. Object.fromEntries(map))'));
    for (const id of ['t1', 't2', 't3']) assert.equal((await env.client.getStatus(id)).status, 'NotFound');
    await env.client.startOrchestration('w', 'Waits');
    await assert.rejects(env.client.raiseEvent('w', 'go', { p: Promise.resolve(1) }), invalid(`event data contains, at .p, ${PROMISE}`));
    await assert.rejects(env.client.raiseEvent('w', 'go', [task]), invalid(`event data contains, at [0], a task (timer) ${NEVER_YIELDED}`));
    await env.client.raiseEvent('w', 'go', { fine: [1, {}] });
    assert.deepEqual((await env.client.waitForOrchestration('w', 10000)).output, { fine: [1, {}] });
  } finally {
    await env.drop();
  }
});
