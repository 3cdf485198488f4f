'use strict';
// Typed activity definitions through the public entry: defineActivity, registerActivity(def),
// ctx.activity / ctx.activityWithRetry, and the errors for bad arguments.
const test = require('node:test');
const assert = require('node:assert/strict');
const { defineActivity, OrchestrationContext, Task, InvalidArgumentError } = require('..');
const { startEnv } = require('./helpers');

const invalid = (pattern) => (e) => e instanceof InvalidArgumentError && e.code === 'ERR_INVALID_ARGUMENT' && pattern.test(e.message);

test('a definition holds its name and function, frozen', () => {
  const fn = async (ctx, id) => ({ id });
  const def = defineActivity('GetUser', fn);
  assert.equal(def.name, 'GetUser');
  assert.equal(def.fn, fn);
  assert.ok(Object.isFrozen(def));
  assert.deepEqual(Object.keys(def), ['name', 'fn']);
});

test('defineActivity names the bad field', () => {
  assert.throws(() => defineActivity('', async () => 1), invalid(/defineActivity\(name, fn\): name must be a non-empty string, got ""/));
  assert.throws(() => defineActivity(7, async () => 1), invalid(/defineActivity\(name, fn\): name must be a non-empty string, got number 7/));
  assert.throws(() => defineActivity('X', 'nope'), invalid(/defineActivity\(name, fn\): fn of activity 'X' must be a function, got "nope"/));
  assert.throws(() => defineActivity('X'), invalid(/fn of activity 'X' must be a function, got undefined/));
});

test('ctx.activity and ctx.activityWithRetry make the same tasks as the by-name calls, and check their arguments', () => {
  const ctx = new OrchestrationContext({ instanceId: 'i', executionId: 1, name: 'O', version: '1.0.0', commands: [], customStatus: null });
  const def = defineActivity('Add', async (c, n) => n + 1);
  const task = ctx.activity(def, 1);
  assert.ok(task instanceof Task);
  assert.deepEqual(task.args, ctx.scheduleActivity('Add', 1).args);
  const retried = ctx.activityWithRetry(def, 2, { maxAttempts: 3 });
  assert.deepEqual(retried.args, ctx.scheduleActivityWithRetry('Add', 2, { maxAttempts: 3 }).args);

  assert.throws(() => ctx.activity('Add', 1), invalid(/ctx\.activity\(definition, input\): definition must come from defineActivity\(name, fn\), got "Add" \(to run an activity by name, use ctx\.scheduleActivity\("Add", input\)\)/));
  assert.throws(() => ctx.activity(undefined), invalid(/ctx\.activity\(definition, input\): definition must come from defineActivity/));
  assert.throws(() => ctx.activity({ name: '' }), invalid(/ctx\.activity\(definition, input\): definition\.name must be a non-empty string/));
  assert.throws(() => ctx.activityWithRetry(null, 1, { maxAttempts: 2 }), invalid(/ctx\.activityWithRetry\(definition, input, retryPolicy\): definition must come from defineActivity/));
  assert.throws(() => ctx.activityWithRetry(def, 1, { maxAttempts: 0 }), invalid(/retryPolicy\.maxAttempts must be an integer >= 1/));
  assert.throws(() => ctx.activityWithRetry(def, 1, { maxAttempts: 2, retries: 1 }), invalid(/retryPolicy\.retries is not a retry policy option \(known: maxAttempts, backoff/));
});

test('registerActivity(definition) checks the definition and refuses a second argument', async () => {
  const env = await startEnv((rt) => {
    const def = defineActivity('A', async () => 1);
    assert.throws(() => rt.registerActivity(def, async () => 2), invalid(/registerActivity\(definition\) takes no second argument/));
    assert.throws(() => rt.registerActivity({ name: 'B' }), invalid(/registerActivity\(definition\): definition\.fn of activity 'B' must be a function, got undefined/));
    assert.throws(() => rt.registerActivity({ fn: async () => 1 }), invalid(/registerActivity\(definition\): definition\.name must be a non-empty string/));
    assert.equal(rt.registerActivity(def), rt);
  });
  await env.drop();
});

test('defined activities run through yield*, plain yield and retries, next to ones registered by name', async () => {
  const getUser = defineActivity('GetUser', async (ctx, id) => ({ id, name: `user ${id}`, attempt: ctx.attempt, activity: ctx.activityName }));
  const count = defineActivity('Count', async () => 2);
  const flaky = defineActivity('Flaky', async (ctx, n) => {
    if (ctx.attempt < 3) throw new Error(`attempt ${ctx.attempt} failed`);
    return n * ctx.attempt;
  });
  const env = await startEnv((rt) => {
    rt.registerActivity(getUser).registerActivity(count).registerActivity(flaky);
    rt.registerActivity('Shout', async (ctx, s) => s.toUpperCase());
    rt.registerOrchestration('Typed', function* (ctx, input) {
      const user = yield* ctx.activity(getUser, input.id);
      const n = yield ctx.activity(count);
      const tripled = yield* ctx.activityWithRetry(flaky, 5, { maxAttempts: 3, backoff: 'fixed', initialDelayMs: 1 });
      const shout = yield ctx.scheduleActivity('Shout', user.name);
      return { user, n, tripled, shout };
    });
    rt.registerOrchestration('BadCall', function* (ctx) {
      return yield* ctx.activity('GetUser', 'x');
    });
  });
  try {
    await env.client.startOrchestration('typed-1', 'Typed', { id: 'u1' });
    const done = await env.client.waitForOrchestration('typed-1', 15000);
    assert.equal(done.status, 'Completed', done.error);
    assert.deepEqual(done.output, {
      user: { id: 'u1', name: 'user u1', attempt: 1, activity: 'GetUser' },
      n: 2,
      tripled: 15,
      shout: 'USER U1',
    });

    await env.client.startOrchestration('bad-1', 'BadCall');
    const failed = await env.client.waitForOrchestration('bad-1', 15000);
    assert.equal(failed.status, 'Failed');
    assert.equal(failed.errorCode, 'ERR_INVALID_ARGUMENT');
    assert.equal(failed.error, 'ctx.activity(definition, input): definition must come from defineActivity(name, fn), got "GetUser" (to run an activity by name, use ctx.scheduleActivity("GetUser", input))');
  } finally {
    await env.drop();
  }
});
