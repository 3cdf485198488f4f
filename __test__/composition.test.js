'use strict';
// Composition: all, race, sub-orchestrations, continue-as-new, versions, cancellation, retries.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv, eventually } = require('./helpers');

const waitingFor = (client, id, kind, n = 1) =>
  eventually(async () => (await client.readExecutionHistory(id)).filter((e) => e.kind === kind).length >= n, 10000, kind);

test('all over an activity, a timer and an event resolves in order and never throws', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Double', async (ctx, n) => n * 2);
    rt.registerActivity('Fail', async () => {
      throw new Error('bad luck');
    });
    rt.registerOrchestration('Fan', function* (ctx) {
      const r = yield ctx.all([ctx.scheduleActivity('Double', 21), ctx.scheduleTimer(30), ctx.waitForEvent('go'), ctx.scheduleActivity('Fail')]);
      return r;
    });
  });
  try {
    await env.client.startOrchestration('all-1', 'Fan');
    await env.client.raiseEvent('all-1', 'go', { yes: true });
    const r = await env.client.waitForOrchestration('all-1', 10000);
    assert.deepEqual(r.output, [{ ok: 42 }, { ok: null }, { ok: { yes: true } }, { err: 'bad luck' }]);
  } finally {
    await env.drop();
  }
});

test('race: the timer wins, the losing activity is cancelled and its signal fires after the commit', async () => {
  let abortedReason = null;
  const env = await startEnv((rt) => {
    rt.registerActivity('Slow', (ctx) => new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        abortedReason = ctx.signal.reason.message;
        setTimeout(() => resolve('late result'), 20);
      });
    }));
    rt.registerOrchestration('Racer', function* (ctx) {
      const r = yield ctx.race(ctx.scheduleActivity('Slow'), ctx.scheduleTimer(50), ctx.waitForEvent('never'));
      const after = yield ctx.scheduleTimer(100); // give a late completion time to arrive
      return { r, after };
    });
  });
  try {
    await env.client.startOrchestration('race-1', 'Racer');
    const r = await env.client.waitForOrchestration('race-1', 10000);
    assert.deepEqual(r.output, { r: { index: 1, value: null }, after: null });
    assert.equal(abortedReason, 'the orchestration no longer waits for this activity');
    const history = await env.client.readExecutionHistory('race-1');
    const canceled = history.filter((e) => e.kind === 'TaskCanceled').map((e) => e.taskId);
    assert.deepEqual(canceled, [1, 3], 'the activity and the wait were cancelled');
    const lateResultRecorded = history.some((e) => e.kind === 'ActivityCompleted');
    assert.equal(lateResultRecorded, false, 'the late completion was dropped');
  } finally {
    await env.drop();
  }
});

test('a race whose winner failed throws at the yield with .index', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Fail', async () => {
      throw Object.assign(new Error('winner failed'), { code: 'E_WIN' });
    });
    rt.registerOrchestration('BadRace', function* (ctx) {
      try {
        yield ctx.race(ctx.scheduleTimer(5000), ctx.scheduleActivity('Fail'));
        return 'no';
      } catch (e) {
        return { message: e.message, index: e.index, code: e.code };
      }
    });
  });
  try {
    await env.client.startOrchestration('br-1', 'BadRace');
    assert.deepEqual((await env.client.waitForOrchestration('br-1', 10000)).output, { message: 'winner failed', index: 1, code: 'E_WIN' });
    const history = await env.client.readExecutionHistory('br-1');
    assert.deepEqual(history.filter((e) => e.kind === 'TaskCanceled').map((e) => e.taskId), [1], 'the losing timer was cancelled');
  } finally {
    await env.drop();
  }
});

test('sub-orchestrations: fan-out, chains, explicit ids, failures, and fire-and-forget starts', async () => {
  const env = await startEnv((rt) => {
    rt.registerActivity('Square', async (ctx, n) => n * n);
    rt.registerOrchestration('Leaf', function* (ctx, n) {
      if (n < 0) throw new Error(`negative ${n}`);
      return yield ctx.scheduleActivity('Square', n);
    });
    rt.registerOrchestration('Middle', function* (ctx, n) {
      const leaf = yield ctx.scheduleSubOrchestration('Leaf', n);
      return { leaf, id: ctx.instanceId };
    });
    rt.registerOrchestration('Parent', function* (ctx) {
      const fan = yield ctx.all([1, 2, 3].map((n) => ctx.scheduleSubOrchestration('Leaf', n)));
      const chain = yield ctx.scheduleSubOrchestrationWithId('Middle', 'chain-child', 4);
      let failure = null;
      try {
        yield ctx.scheduleSubOrchestration('Leaf', -1);
      } catch (e) {
        failure = e.message;
      }
      const started = yield ctx.startOrchestration('Leaf', 'detached-leaf', 5);
      return { fan, chain, failure, started };
    });
  });
  try {
    await env.client.startOrchestration('parent-1', 'Parent');
    const r = await env.client.waitForOrchestration('parent-1', 15000);
    assert.equal(r.status, 'Completed', r.error);
    assert.deepEqual(r.output, {
      fan: [{ ok: 1 }, { ok: 4 }, { ok: 9 }],
      chain: { leaf: 16, id: 'chain-child' },
      failure: 'negative -1',
      started: 'detached-leaf',
    });
    // Default child ids are parent:execution:task.
    assert.deepEqual((await env.client.waitForOrchestration('parent-1:1:1', 5000)).output, 1);
    assert.equal((await env.client.getStatus('chain-child:1:1')).status, 'Completed');
    assert.deepEqual((await env.client.waitForOrchestration('detached-leaf', 5000)).output, 25);
  } finally {
    await env.drop();
  }
});

test('continue-as-new loops with fresh history, carrying unconsumed events and custom status', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Counter', function* (ctx, n) {
      if (n === 0) ctx.setCustomStatus({ started: true });
      if (n < 3) {
        // Nobody waits for 'carried' until the last execution; it must survive each restart.
        yield ctx.scheduleTimer(10);
        return yield ctx.continueAsNew(n + 1);
      }
      const carried = yield ctx.waitForEvent('carried');
      return { n, carried, exec: ctx.executionId, status: ctx.getCustomStatus() };
    });
  });
  try {
    await env.client.startOrchestration('can-1', 'Counter', 0);
    await env.client.raiseEvent('can-1', 'carried', 'kept');
    const r = await env.client.waitForOrchestration('can-1', 10000);
    assert.deepEqual(r.output, { n: 3, carried: 'kept', exec: 4, status: { started: true } });
    assert.deepEqual(r.customStatus, { started: true });
    const first = await env.client.readExecutionHistory('can-1', 1);
    assert.equal(first[first.length - 1].kind, 'ContinuedAsNew');
    const last = await env.client.readExecutionHistory('can-1');
    assert.equal(last[0].kind, 'ExecutionStarted');
    assert.equal(last.filter((e) => e.kind === 'TimerCreated').length, 0, 'the last execution has a fresh history');
  } finally {
    await env.drop();
  }
});

test('versions: new instances get the highest, running ones stay pinned, continue-as-new moves to the latest', async () => {
  const seen = [];
  const env = await startEnv((rt) => {
    rt.registerOrchestrationVersioned('Versioned', '1.0.0', function* (ctx, input) {
      if (!ctx.isReplaying) seen.push(`${ctx.instanceId} ran 1.0.0 as ${ctx.orchestrationVersion}`);
      if (input === 'upgrade') return yield ctx.continueAsNew('after');
      yield ctx.waitForEvent('go');
      return `v1 ${input}`;
    });
    rt.registerOrchestrationVersioned('Versioned', '1.10.0', function* (ctx, input) {
      if (!ctx.isReplaying) seen.push(`${ctx.instanceId} ran 1.10.0 as ${ctx.orchestrationVersion}`);
      return `v1.10 ${input}`;
    });
    rt.registerOrchestrationVersioned('Versioned', '1.2.0', function* (ctx, input) {
      seen.push(`${ctx.instanceId} ran 1.2.0`);
      return `v1.2 ${input}`;
    });
  });
  try {
    await env.client.startOrchestration('v-latest', 'Versioned', 'a');
    assert.equal((await env.client.waitForOrchestration('v-latest', 10000)).output, 'v1.10 a', 'semver order, not string order');
    await env.client.startOrchestration('v-pinned', 'Versioned', 'b', { version: '1.0.0' });
    await waitingFor(env.client, 'v-pinned', 'EventWaitStarted');
    await env.client.raiseEvent('v-pinned', 'go', null);
    assert.equal((await env.client.waitForOrchestration('v-pinned', 10000)).output, 'v1 b');
    await env.client.startOrchestration('v-upgrade', 'Versioned', 'upgrade', { version: '1.0.0' });
    assert.equal((await env.client.waitForOrchestration('v-upgrade', 10000)).output, 'v1.10 after');
    const started = (await env.client.readExecutionHistory('v-upgrade', 2))[0];
    assert.equal(started.data.version, '1.10.0');
    assert.deepEqual(seen, [
      'v-latest ran 1.10.0 as 1.10.0',
      'v-pinned ran 1.0.0 as 1.0.0',
      'v-upgrade ran 1.0.0 as 1.0.0',
      'v-upgrade ran 1.10.0 as 1.10.0',
    ], 'each function ran under its own version; 1.2.0 never ran');
  } finally {
    await env.drop();
  }
});

test('cancelInstance cascades to children, fires running activities signals, and is a no-op when finished', async () => {
  const aborted = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('Hang', (ctx, who) => new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        aborted.push(who);
        resolve('stopped');
      });
    }));
    rt.registerOrchestration('Child', function* (ctx) {
      return yield ctx.scheduleActivity('Hang', 'child');
    });
    rt.registerOrchestration('Root', function* (ctx) {
      return yield ctx.all([ctx.scheduleSubOrchestrationWithId('Child', 'cancel-child', null), ctx.scheduleActivity('Hang', 'root')]);
    });
    rt.registerOrchestration('Quick', function* () {
      return 'done';
    });
  });
  try {
    await env.client.startOrchestration('cancel-root', 'Root');
    await eventually(() => aborted.length === 0 && env.runtime.metricsSnapshot().runningActivities === 2, 10000, 'both activities running');
    assert.equal(await env.client.cancelInstance('cancel-root', 'user pressed stop'), true);
    const root = await env.client.waitForOrchestration('cancel-root', 10000);
    assert.equal(root.status, 'Failed');
    assert.equal(root.error, 'canceled: user pressed stop');
    assert.equal(root.errorCode, 'ERR_CANCELED');
    const child = await env.client.waitForOrchestration('cancel-child', 10000);
    assert.equal(child.status, 'Failed');
    assert.equal(child.error, 'canceled: user pressed stop', 'the child gets the parent’s reason');
    assert.equal(child.errorCode, 'ERR_CANCELED');
    await eventually(() => aborted.length === 2, 5000, 'both signals');
    assert.deepEqual(aborted.sort(), ['child', 'root']);

    await env.client.startOrchestration('quick-1', 'Quick');
    await env.client.waitForOrchestration('quick-1', 10000);
    assert.equal(await env.client.cancelInstance('quick-1', 'too late'), false);
    assert.equal((await env.client.getStatus('quick-1')).status, 'Completed');
  } finally {
    await env.drop();
  }
});

for (const backoff of ['fixed', 'linear', 'exponential']) {
  test(`scheduleActivityWithRetry with ${backoff} backoff retries on the worker side`, async () => {
    const attempts = [];
    const env = await startEnv((rt) => {
      rt.registerActivity('Flaky', async (ctx) => {
        attempts.push({ attempt: ctx.attempt, at: Date.now() });
        if (ctx.attempt < 4) throw new Error(`attempt ${ctx.attempt} failed`);
        return `ok on ${ctx.attempt}`;
      });
      rt.registerActivity('AlwaysFails', async (ctx) => {
        throw new Error(`still failing (${ctx.attempt})`);
      });
      rt.registerOrchestration('Retrying', function* (ctx) {
        const ok = yield ctx.scheduleActivityWithRetry('Flaky', null, { maxAttempts: 5, backoff, initialDelayMs: 40, maxDelayMs: 200 });
        let gaveUp = null;
        try {
          yield ctx.scheduleActivityWithRetry('AlwaysFails', null, { maxAttempts: 2, backoff, initialDelayMs: 10 });
        } catch (e) {
          gaveUp = e.message;
        }
        return { ok, gaveUp };
      });
    });
    try {
      await env.client.startOrchestration(`retry-${backoff}`, 'Retrying');
      const r = await env.client.waitForOrchestration(`retry-${backoff}`, 15000);
      assert.deepEqual(r.output, { ok: 'ok on 4', gaveUp: 'still failing (2)' });
      assert.deepEqual(attempts.map((a) => a.attempt), [1, 2, 3, 4]);
      const expected = { fixed: [40, 40, 40], linear: [40, 80, 120], exponential: [40, 80, 160] }[backoff];
      for (let i = 1; i < attempts.length; i++) {
        const gap = attempts[i].at - attempts[i - 1].at;
        assert.ok(gap >= expected[i - 1] - 5, `gap ${i} was ${gap} ms, at least ${expected[i - 1]} expected`);
      }
      // History records the schedule and the final outcome only.
      const history = await env.client.readExecutionHistory(`retry-${backoff}`);
      assert.equal(history.filter((e) => e.kind === 'ActivityCompleted').length, 1);
      assert.equal(history.filter((e) => e.kind === 'ActivityFailed').length, 1);
      assert.equal(env.runtime.metricsSnapshot().activityRetries, 4);
    } finally {
      await env.drop();
    }
  });
}

test('a sub-orchestration id that is already taken fails at the parent yield instead of hanging', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Taken', function* () {
      return 'first';
    });
    rt.registerOrchestration('Claims', function* (ctx) {
      try {
        yield ctx.scheduleSubOrchestrationWithId('Taken', 'taken-id', null);
        return 'no error';
      } catch (e) {
        return `${e.code}: ${e.message}`;
      }
    });
  });
  try {
    await env.client.startOrchestration('taken-id', 'Taken');
    await env.client.waitForOrchestration('taken-id', 10000);
    await env.client.startOrchestration('claims-1', 'Claims');
    assert.equal((await env.client.waitForOrchestration('claims-1', 10000)).output, "ERR_ALREADY_EXISTS: an instance with id 'taken-id' already exists");
  } finally {
    await env.drop();
  }
});

test('a retry policy timeoutMs bounds each attempt: the signal fires and the last timeout is thrown', async () => {
  const signals = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('Hangs', (ctx) => new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        signals.push({ attempt: ctx.attempt, reason: ctx.signal.reason.message });
        resolve('too late');
      });
    }));
    rt.registerOrchestration('Bounded', function* (ctx) {
      try {
        yield ctx.scheduleActivityWithRetry('Hangs', null, { maxAttempts: 2, timeoutMs: 150, initialDelayMs: 10 });
        return 'no';
      } catch (e) {
        return { code: e.code, message: e.message };
      }
    });
  });
  try {
    await env.client.startOrchestration('bounded-1', 'Bounded');
    const r = await env.client.waitForOrchestration('bounded-1', 10000);
    assert.deepEqual(r.output, { code: 'ERR_TIMEOUT', message: "activity 'Hangs' timed out after 150 ms" });
    assert.deepEqual(signals, [
      { attempt: 1, reason: 'the activity timed out' },
      { attempt: 2, reason: 'the activity timed out' },
    ]);
  } finally {
    await env.drop();
  }
});

test('continueAsNewVersioned pins the next execution; a detached start in the same turn is not lost', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Leaf', function* (ctx, x) {
      return x;
    });
    rt.registerOrchestrationVersioned('Looper', '1.0.0', function* (ctx, round) {
      if (round === 0) {
        yield ctx.startOrchestration('Leaf', 'leaf-from-round-0', 'started before continuing');
        return yield ctx.continueAsNewVersioned(1, '1.0.0');
      }
      return `round ${round} on ${ctx.orchestrationVersion}`;
    });
    rt.registerOrchestrationVersioned('Looper', '2.0.0', function* () {
      return 'v2';
    });
  });
  try {
    await env.client.startOrchestration('looper-1', 'Looper', 0, { version: '1.0.0' });
    assert.equal((await env.client.waitForOrchestration('looper-1', 10000)).output, 'round 1 on 1.0.0');
    assert.equal((await env.client.waitForOrchestration('leaf-from-round-0', 10000)).output, 'started before continuing');
  } finally {
    await env.drop();
  }
});

test('deleteInstance refuses a running instance without force and removes its sub-orchestrations', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Kid', function* (ctx) {
      return yield ctx.waitForEvent('never');
    });
    rt.registerOrchestration('Parent', function* (ctx) {
      return yield ctx.scheduleSubOrchestration('Kid', null);
    });
    rt.registerOrchestration('Done', function* () {
      return 1;
    });
  });
  try {
    await env.client.startOrchestration('del-parent', 'Parent');
    await eventually(async () => (await env.client.getStatus('del-parent:1:1')).status === 'Running', 10000, 'the child');
    await assert.rejects(env.client.deleteInstance('del-parent'), (e) => e.code === 'ERR_INVALID_STATE' && /is running/.test(e.message));
    assert.equal((await env.client.getStatus('del-parent')).status, 'Running');
    assert.equal(await env.client.deleteInstance('del-parent', { force: true }), 2);
    assert.equal((await env.client.getStatus('del-parent')).status, 'NotFound');
    assert.equal((await env.client.getStatus('del-parent:1:1')).status, 'NotFound');
    assert.deepEqual(await env.client.readExecutionHistory('del-parent', 1), []);
    await env.client.startOrchestration('del-done', 'Done');
    await env.client.waitForOrchestration('del-done', 10000);
    assert.equal(await env.client.deleteInstance('del-done'), 1);
    assert.equal(await env.client.deleteInstance('del-done'), 0);
  } finally {
    await env.drop();
  }
});

test('a wait that lost a race to a timer takes no event: the next wait of that name gets it', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('WaitsTwice', function* (ctx) {
      const first = yield ctx.race(ctx.waitForEvent('x'), ctx.scheduleTimer(10));
      const second = yield ctx.waitForEvent('x');
      return { first, second };
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('lost-wait', 'WaitsTwice');
    await waitingFor(client, 'lost-wait', 'EventWaitStarted', 2);
    await client.raiseEvent('lost-wait', 'x', 'only one');
    const r = await client.waitForOrchestration('lost-wait', 10000);
    assert.equal(r.status, 'Completed', r.error);
    assert.deepEqual(r.output, { first: { index: 1, value: null }, second: 'only one' });
    const history = await client.readExecutionHistory('lost-wait');
    assert.deepEqual(history.filter((e) => e.kind === 'TaskCanceled').map((e) => e.taskId), [1]);
    assert.deepEqual(history.filter((e) => e.kind === 'EventWaitStarted').map((e) => [e.taskId, e.data.name]), [[1, 'x'], [3, 'x']]);
  } finally {
    await env.drop();
  }
});

test('a race lost by ctx.all cancels every activity inside it: TaskCanceled for each, and their signals fire', async () => {
  const aborted = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('Hang', (ctx, who) => new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        aborted.push({ who, reason: ctx.signal.reason.message });
        resolve(`late result of ${who}`);
      });
    }));
    rt.registerOrchestration('NestedLoser', function* (ctx) {
      const r = yield ctx.race(ctx.all([ctx.scheduleActivity('Hang', 'a'), ctx.scheduleActivity('Hang', 'b')]), ctx.scheduleTimer(500));
      const after = yield ctx.scheduleTimer(100); // time for late results, which must be dropped
      return { r, after };
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('nested-loser', 'NestedLoser');
    const r = await client.waitForOrchestration('nested-loser', 10000);
    assert.equal(r.status, 'Completed', r.error);
    assert.deepEqual(r.output, { r: { index: 1, value: null }, after: null });
    const history = await client.readExecutionHistory('nested-loser');
    assert.deepEqual(history.filter((e) => e.kind === 'TaskCanceled').map((e) => e.taskId), [1, 2]);
    assert.equal(history.filter((e) => e.kind === 'ActivityCompleted').length, 0, 'the late results were dropped');
    await eventually(() => aborted.length === 2, 5000, 'both signals');
    assert.deepEqual(aborted.sort((x, y) => x.who.localeCompare(y.who)), [
      { who: 'a', reason: 'the orchestration no longer waits for this activity' },
      { who: 'b', reason: 'the orchestration no longer waits for this activity' },
    ]);
    await eventually(() => env.runtime.metricsSnapshot().runningActivities === 0, 5000, 'the losers to finish');
  } finally {
    await env.drop();
  }
});

test('continue-as-new carries two unconsumed events of one name in arrival order', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Carrier', function* (ctx, round) {
      if (round === 0) {
        yield ctx.waitForEvent('next');
        return yield ctx.continueAsNew(1);
      }
      const a = yield ctx.waitForEvent('x');
      const b = yield ctx.waitForEvent('x');
      return { a, b, exec: ctx.executionId };
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('carry-order', 'Carrier', 0);
    await waitingFor(client, 'carry-order', 'EventWaitStarted');
    await client.raiseEvent('carry-order', 'x', 'first');
    await client.raiseEvent('carry-order', 'x', 'second');
    await client.raiseEvent('carry-order', 'next', null);
    const r = await client.waitForOrchestration('carry-order', 10000);
    assert.equal(r.status, 'Completed', r.error);
    assert.deepEqual(r.output, { a: 'first', b: 'second', exec: 2 });
  } finally {
    await env.drop();
  }
});

test('cancelInstance without a reason fails the instance with “canceled: canceled by client”', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Idle', function* (ctx) {
      return yield ctx.waitForEvent('never');
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('cancel-default', 'Idle');
    await waitingFor(client, 'cancel-default', 'EventWaitStarted');
    assert.equal(await client.cancelInstance('cancel-default'), true);
    const r = await client.waitForOrchestration('cancel-default', 10000);
    assert.equal(r.status, 'Failed');
    assert.equal(r.error, 'canceled: canceled by client');
    assert.equal(r.errorCode, 'ERR_CANCELED');
    const history = await client.readExecutionHistory('cancel-default');
    assert.deepEqual(history.slice(-2).map((e) => [e.kind, e.data]), [
      ['CancelRequested', { reason: 'canceled by client' }],
      ['ExecutionFailed', { error: { message: 'canceled: canceled by client', code: 'ERR_CANCELED' } }],
    ]);
  } finally {
    await env.drop();
  }
});
