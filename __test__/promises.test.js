'use strict';
// Promises of the guide that had no test: cancellation through two levels of
// sub-orchestrations, race losers (sub-orchestrations, and losers yielded again),
// continue-as-new under a parent, maxTurnMs, activityTimeoutMs, the runtime.events buffer,
// an event for two pending waits of one name, and the metrics the guide lists.
const test = require('node:test');
const assert = require('node:assert/strict');
const { isDeepStrictEqual } = require('node:util');
const { TaskFailedError } = require('..');
const { startEnv, eventually, sleep, cacheSize } = require('./helpers');

const historyHas = (client, id, kind, n = 1) =>
  eventually(async () => (await client.readExecutionHistory(id)).filter((e) => e.kind === kind).length >= n, 10000, `${n} ${kind} in ${id}`);

/** An activity that runs until its signal fires, and records who it was and why it stopped. */
function hanging(aborted) {
  return (ctx, who) =>
    new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        aborted.push({ who, reason: ctx.signal.reason.message });
        setTimeout(() => resolve(`late result of ${who}`), 30);
      });
    });
}

test('cancelling the root cancels its child and grandchild with the same reason; no code runs after the cancel', async () => {
  const aborted = [];
  const resumed = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('Hang', hanging(aborted));
    rt.registerOrchestration('Root', function* (ctx) {
      try {
        return yield ctx.scheduleSubOrchestration('Middle', null);
      } finally {
        resumed.push('Root');
      }
    });
    rt.registerOrchestration('Middle', function* (ctx) {
      try {
        return yield ctx.scheduleSubOrchestration('Leaf', null);
      } finally {
        resumed.push('Middle');
      }
    });
    rt.registerOrchestration('Leaf', function* (ctx) {
      try {
        return yield ctx.scheduleActivity('Hang', 'leaf');
      } finally {
        resumed.push('Leaf');
      }
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('root', 'Root');
    await eventually(() => env.runtime.metricsSnapshot().runningActivities === 1, 10000, 'the grandchild’s activity to run');
    assert.equal(await client.cancelInstance('root', 'stop everything'), true);
    for (const id of ['root', 'root:1:1', 'root:1:1:1:1']) {
      const r = await client.waitForOrchestration(id, 10000);
      assert.equal(r.status, 'Failed', id);
      assert.equal(r.error, 'canceled: stop everything', id);
      assert.equal(r.errorCode, 'ERR_CANCELED', id);
      const history = await client.readExecutionHistory(id);
      assert.deepEqual(history.slice(-2).map((e) => [e.kind, e.data]), [
        ['CancelRequested', { reason: 'stop everything' }],
        ['ExecutionFailed', { error: { message: 'canceled: stop everything', code: 'ERR_CANCELED' } }],
      ], id);
    }
    await eventually(() => aborted.length === 1, 5000, 'the grandchild’s activity signal');
    assert.deepEqual(aborted, [{ who: 'leaf', reason: 'the orchestration no longer waits for this activity' }]);
    await sleep(100); // the late result arrives and must be dropped
    const leaf = await client.readExecutionHistory('root:1:1:1:1');
    assert.equal(leaf.filter((e) => e.kind === 'ActivityCompleted').length, 0);
    assert.deepEqual(resumed, [], 'no finally block ran: cancelled code is not resumed');
  } finally {
    await env.drop();
  }
});

test('a cancelled child throws ERR_CANCELED with the reason at its parent’s yield', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Kid', function* (ctx) {
      return yield ctx.waitForEvent('never');
    });
    rt.registerOrchestration('Watcher', function* (ctx) {
      try {
        yield ctx.scheduleSubOrchestrationWithId('Kid', 'the-kid', null);
        return 'not reached';
      } catch (e) {
        return { caught: e instanceof TaskFailedError, name: e.name, code: e.code, message: e.message };
      }
    });
  });
  try {
    await env.client.startOrchestration('watcher', 'Watcher');
    await historyHas(env.client, 'the-kid', 'EventWaitStarted');
    assert.equal(await env.client.cancelInstance('the-kid', 'only the kid'), true);
    const r = await env.client.waitForOrchestration('watcher', 10000);
    assert.deepEqual(r.output, { caught: true, name: 'TaskFailedError', code: 'ERR_CANCELED', message: 'canceled: only the kid' });
    assert.equal((await env.client.getStatus('the-kid')).error, 'canceled: only the kid');
  } finally {
    await env.drop();
  }
});

test('race losers: a losing sub-orchestration is cancelled; losers yielded again throw “canceled: lost a race”', async () => {
  const aborted = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('Hang', hanging(aborted));
    rt.registerOrchestration('Idle', function* (ctx) {
      return yield ctx.waitForEvent('never');
    });
    rt.registerOrchestration('Racer', function* (ctx) {
      const child = ctx.scheduleSubOrchestration('Idle', null);
      const activity = ctx.scheduleActivity('Hang', 'loser');
      const wait = ctx.waitForEvent('late');
      const r = yield ctx.race(child, activity, wait, ctx.scheduleTimer(100));
      const again = [];
      for (const loser of [child, activity, wait]) {
        try {
          again.push({ value: yield loser });
        } catch (e) {
          again.push({ code: e.code, message: e.message, name: e.name });
        }
      }
      return { r, again };
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('racer', 'Racer');
    const r = await client.waitForOrchestration('racer', 10000);
    assert.equal(r.status, 'Completed', r.error);
    const lost = { code: 'ERR_CANCELED', message: 'canceled: lost a race', name: 'TaskFailedError' };
    assert.deepEqual(r.output, { r: { index: 3, value: null }, again: [lost, lost, lost] });
    const child = await client.waitForOrchestration('racer:1:1', 10000);
    assert.equal(child.status, 'Failed');
    assert.equal(child.error, 'canceled: the parent no longer waits for it');
    assert.equal(child.errorCode, 'ERR_CANCELED');
    const history = await client.readExecutionHistory('racer');
    assert.deepEqual(history.filter((e) => e.kind === 'TaskCanceled').map((e) => e.taskId), [1, 2, 3]);
    assert.equal(history.filter((e) => e.kind === 'ChildFailed').length, 0, 'the cancelled child does not report back');
    await eventually(() => aborted.length === 1, 5000, 'the losing activity’s signal');
    assert.deepEqual(aborted, [{ who: 'loser', reason: 'the orchestration no longer waits for this activity' }]);
    // (Shut down only once it has finished: see the shutdown test below.)
    await eventually(() => env.runtime.metricsSnapshot().runningActivities === 0, 5000, 'the loser to finish');
  } finally {
    await env.drop();
  }
});

test('continue-as-new keeps the parent link; work the old execution dropped never reaches the new one', async () => {
  const aborted = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('Hang', hanging(aborted));
    rt.registerActivity('Slow', async (ctx, x) => {
      await sleep(150); // long enough for a late result of the old execution to arrive first
      return `${x} on execution ${ctx.executionId}`;
    });
    rt.registerOrchestration('Looper', function* (ctx, round) {
      if (round === 0) {
        // Task 1 of execution 1 is still running when the event arrives and the code continues.
        yield ctx.race(ctx.scheduleActivity('Hang', 'execution 1'), ctx.waitForEvent('next'));
        return yield ctx.continueAsNew(1);
      }
      if (round === 1) return yield ctx.continueAsNew(2);
      const v = yield ctx.scheduleActivity('Slow', 'task 1'); // task 1 again, in execution 3
      return { v, executionId: ctx.executionId };
    });
    rt.registerOrchestration('Parent', function* (ctx) {
      return yield ctx.scheduleSubOrchestration('Looper', 0);
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('can-parent', 'Parent');
    await eventually(() => env.runtime.metricsSnapshot().runningActivities === 1, 10000, 'Hang to run');
    await client.raiseEvent('can-parent:1:1', 'next', null);
    const r = await client.waitForOrchestration('can-parent', 10000);
    assert.equal(r.status, 'Completed', r.error);
    assert.deepEqual(r.output, { v: 'task 1 on execution 3', executionId: 3 });
    assert.deepEqual(aborted, [{ who: 'execution 1', reason: 'the orchestration no longer waits for this activity' }]);
    const info = await client.getInstanceInfo('can-parent:1:1');
    assert.equal(info.parentId, 'can-parent');
    assert.equal(info.executionId, 3);
    assert.deepEqual((await client.listExecutions('can-parent:1:1')).map((e) => e.executionId), [1, 2, 3]);
    const first = await client.readExecutionHistory('can-parent:1:1', 1);
    assert.deepEqual(first.map((e) => e.kind), ['ExecutionStarted', 'ActivityScheduled', 'EventWaitStarted', 'EventRaised', 'TaskCanceled', 'ContinuedAsNew']);
    const parent = await client.readExecutionHistory('can-parent');
    assert.deepEqual(parent.map((e) => e.kind), ['ExecutionStarted', 'ChildScheduled', 'ChildCompleted', 'ExecutionCompleted']);
    assert.deepEqual(parent[2].data.output, { v: 'task 1 on execution 3', executionId: 3 });
  } finally {
    await env.drop();
  }
});

test('maxTurnMs: a turn that holds JavaScript too long is abandoned and retried; history is written once', async () => {
  let slowTurns = 1;
  let ranAfterA = 0;
  const env = await startEnv((rt) => {
    rt.registerActivity('Quick', async (ctx, n) => n * 10);
    rt.registerOrchestration('SlowTurn', function* (ctx) {
      const a = yield ctx.scheduleActivity('Quick', 1);
      if (!ctx.isReplaying) ranAfterA += 1;
      if (slowTurns-- > 0) {
        const end = Date.now() + 600;
        while (Date.now() < end) {
          // holds the JavaScript thread three times maxTurnMs
        }
      }
      const b = yield ctx.scheduleActivity('Quick', 2);
      return [a, b];
    });
  }, { maxTurnMs: 200 });
  try {
    await env.client.startOrchestration('slow-turn', 'SlowTurn');
    const r = await env.client.waitForOrchestration('slow-turn', 15000);
    assert.equal(r.status, 'Completed', r.error);
    assert.deepEqual(r.output, [10, 20]);
    assert.equal(ranAfterA, 2, 'the abandoned turn ran again');
    const m = env.runtime.metricsSnapshot();
    assert.equal(m.turnsAbandoned, 1);
    assert.equal(m.activations, 4, 'the start, the abandoned turn, its retry, the last turn');
    // The retry rebuilds the generator from history: the one the abandoned turn moved is not reused.
    assert.equal(m.fullReplays, cacheSize === 0 ? 4 : 2);
    assert.equal(m.turnsCommitted, 3, 'the start, the retried turn, the last turn');
    assert.equal(m.activitiesStarted, 2, 'the abandoned turn scheduled nothing');
    assert.equal(m.orchestrationsCompleted, 1);
    const history = await env.client.readExecutionHistory('slow-turn');
    assert.deepEqual(history.map((e) => e.kind), [
      'ExecutionStarted', 'ActivityScheduled', 'ActivityCompleted', 'ActivityScheduled', 'ActivityCompleted', 'ExecutionCompleted',
    ]);
  } finally {
    await env.drop();
  }
});

test('activityTimeoutMs bounds every attempt that has no timeoutMs of its own', async () => {
  const aborted = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('Hang', (ctx) => new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        aborted.push(`${ctx.instanceId}#${ctx.attempt}: ${ctx.signal.reason.message}`);
        resolve('too late');
      });
    }));
    rt.registerActivity('Slowish', async () => {
      await sleep(500);
      return 'finished in 500 ms';
    });
    const attempt = (task) => function* () {
      try {
        return yield task();
      } catch (e) {
        return { code: e.code, message: e.message };
      }
    };
    rt.registerOrchestration('Plain', function* (ctx) {
      return yield* attempt(() => ctx.scheduleActivity('Hang'))();
    });
    rt.registerOrchestration('Policy', function* (ctx) {
      return yield* attempt(() => ctx.scheduleActivityWithRetry('Hang', null, { maxAttempts: 2, initialDelayMs: 10 }))();
    });
    rt.registerOrchestration('OwnTimeout', function* (ctx) {
      return yield* attempt(() => ctx.scheduleActivityWithRetry('Slowish', null, { maxAttempts: 1, timeoutMs: 5000 }))();
    });
  }, { activityTimeoutMs: 200 });
  try {
    const { client } = env;
    for (const name of ['Plain', 'Policy', 'OwnTimeout']) await client.startOrchestration(name, name);
    const timedOut = { code: 'ERR_TIMEOUT', message: "activity 'Hang' timed out after 200 ms" };
    assert.deepEqual((await client.waitForOrchestration('Plain', 10000)).output, timedOut);
    assert.deepEqual((await client.waitForOrchestration('Policy', 10000)).output, timedOut);
    assert.equal((await client.waitForOrchestration('OwnTimeout', 10000)).output, 'finished in 500 ms', 'the policy’s timeoutMs wins over the runtime’s');
    assert.deepEqual(aborted.sort(), [
      'Plain#1: the activity timed out',
      'Policy#1: the activity timed out',
      'Policy#2: the activity timed out',
    ]);
  } finally {
    await env.drop();
  }
});

test('runtime.events keeps the newest bufferSize events for a slow reader and says how many it dropped', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('Quick', function* (ctx, x) {
      return x;
    });
  });
  try {
    const { client, runtime } = env;
    // Nothing is collected while nobody listens.
    await client.startOrchestration('before', 'Quick', 'unseen');
    await client.waitForOrchestration('before', 10000);

    const stop = new AbortController();
    const slow = runtime.events({ bufferSize: 3, signal: stop.signal });
    const all = [];
    const everything = (async () => {
      for await (const e of runtime.events({ signal: stop.signal })) all.push(e);
    })();
    for (let i = 0; i < 5; i++) {
      await client.startOrchestration(`q-${i}`, 'Quick', i);
      await client.waitForOrchestration(`q-${i}`, 10000);
    }
    // Both listeners get each event at once: when the unbounded one has ten, so has the slow one.
    await eventually(() => all.length === 10, 10000, 'ten events');
    const label = (e) => `${e.type} ${e.instanceId ?? ''}`.trim();
    assert.deepEqual(all.map(label), [0, 1, 2, 3, 4].flatMap((i) => [`instanceStarted q-${i}`, `instanceCompleted q-${i}`]));

    const first = (await slow.next()).value;
    assert.equal(first.type, 'eventsDropped');
    assert.equal(first.count, 7);
    assert.equal(typeof first.timestamp, 'number');
    const kept = [];
    for (let i = 0; i < 3; i++) kept.push((await slow.next()).value);
    assert.deepEqual(kept.map(label), ['instanceCompleted q-3', 'instanceStarted q-4', 'instanceCompleted q-4']);
    assert.equal(kept[2].output, 4);

    // Caught up: the next event comes as it is, with no drop notice.
    await client.startOrchestration('q-5', 'Quick', 5);
    assert.equal(label((await slow.next()).value), 'instanceStarted q-5');
    assert.equal(label((await slow.next()).value), 'instanceCompleted q-5');
    stop.abort();
    assert.equal((await slow.next()).done, true);
    await everything;
  } finally {
    await env.drop();
  }
});

test('an event that arrives while two waits of its name are pending goes to the oldest wait', async () => {
  const env = await startEnv((rt) => {
    rt.registerOrchestration('TwoWaits', function* (ctx) {
      // Both waits are pending at once; the first bound (task 1) is the older.
      const r = yield ctx.all([ctx.waitForEvent('go'), ctx.waitForEvent('go'), ctx.waitForEvent('other')]);
      return r.map((x) => x.ok);
    });
  });
  try {
    const { client } = env;
    await client.startOrchestration('two-waits', 'TwoWaits');
    await historyHas(client, 'two-waits', 'EventWaitStarted', 3);
    await client.raiseEvent('two-waits', 'go', 'first');
    await historyHas(client, 'two-waits', 'EventRaised');
    await client.raiseEvent('two-waits', 'other', 'unrelated');
    await historyHas(client, 'two-waits', 'EventRaised', 2);
    assert.equal((await client.getStatus('two-waits')).status, 'Running', 'the newer wait still waits');
    await client.raiseEvent('two-waits', 'go', 'second');
    const r = await client.waitForOrchestration('two-waits', 10000);
    assert.deepEqual(r.output, ['first', 'second', 'unrelated']);
    const history = await client.readExecutionHistory('two-waits');
    assert.deepEqual(history.filter((e) => e.kind === 'EventWaitStarted').map((e) => [e.taskId, e.data.name]), [[1, 'go'], [2, 'go'], [3, 'other']]);
    assert.deepEqual(history.filter((e) => e.kind === 'EventRaised').map((e) => e.data.data), ['first', 'unrelated', 'second']);
  } finally {
    await env.drop();
  }
});

test('metrics: orchestrationsCompleted/failed, storeErrors, turnsAbandoned and the queue_* gauges, exactly', async () => {
  let release;
  const gate = new Promise((r) => {
    release = r;
  });
  const env = await startEnv((rt) => {
    rt.registerActivity('Gate', () => gate);
    rt.registerActivity('FailsOnce', (ctx) => {
      if (ctx.attempt === 1) throw new Error('first attempt fails');
      return ctx.attempt;
    });
    rt.registerOrchestration('Done', function* (ctx, x) {
      return x;
    });
    rt.registerOrchestration('Kid', function* (ctx, x) {
      return x * 2;
    });
    rt.registerOrchestration('Parent', function* (ctx) {
      return yield ctx.scheduleSubOrchestration('Kid', 21);
    });
    rt.registerOrchestration('Loop', function* (ctx, n) {
      if (n < 2) return yield ctx.continueAsNew(n + 1);
      return n;
    });
    rt.registerOrchestration('Throws', function* () {
      throw new Error('on purpose');
    });
    rt.registerOrchestration('Idle', function* (ctx) {
      return yield ctx.waitForEvent('x');
    });
    rt.registerOrchestration('Sleeper', function* (ctx) {
      return yield ctx.scheduleTimer(600000);
    });
    rt.registerOrchestration('Gated', function* (ctx) {
      return yield ctx.scheduleActivity('Gate');
    });
    rt.registerOrchestration('Retrying', function* (ctx) {
      return yield ctx.scheduleActivityWithRetry('FailsOnce', null, { maxAttempts: 2, backoff: 'fixed', initialDelayMs: 600000 });
    });
  }, { workerConcurrency: 1, metricsIntervalMs: 100 });
  const { client, runtime } = env;
  /** Waits until the gauges and client.getQueueDepths() both show `want`. */
  const queues = async (want, what) => {
    const expected = {
      queueOrchestratorVisible: want.orchestrator.visible,
      queueOrchestratorDelayed: want.orchestrator.delayed,
      queueWorkerVisible: want.worker.visible,
      queueWorkerRunning: want.worker.running,
      queueWorkerDelayed: want.worker.delayed,
    };
    await eventually(async () => isDeepStrictEqual(await client.getQueueDepths(), want), 10000, `${what} in getQueueDepths()`);
    const gauges = (s) => Object.fromEntries(Object.keys(expected).map((k) => [k, s[k]]));
    await eventually(() => isDeepStrictEqual(gauges(runtime.metricsSnapshot()), expected), 10000, `${what} in the gauges`);
    assert.deepEqual(await client.getQueueDepths(), want, what);
  };
  const counters = (s) => ({
    completed: s.orchestrationsCompleted,
    failed: s.orchestrationsFailed,
    turnsAbandoned: s.turnsAbandoned,
    storeErrors: s.storeErrors,
    nondeterminismErrors: s.nondeterminismErrors,
    poisoned: s.poisoned,
  });
  try {
    await client.startOrchestration('retrying', 'Retrying');
    await queues({ orchestrator: { visible: 0, delayed: 0 }, worker: { visible: 0, running: 0, delayed: 1 } }, 'one retry waiting');
    await client.raiseEvent('early', 'x', 'raised before the instance');
    for (const [id, name, input] of [['done-1', 'Done', 1], ['done-2', 'Done', 2], ['parent', 'Parent'], ['loop', 'Loop', 0], ['throws', 'Throws'], ['idle', 'Idle'], ['sleeper', 'Sleeper']]) {
      await client.startOrchestration(id, name, input);
    }
    for (const id of ['done-1', 'done-2', 'parent', 'loop', 'throws']) await client.waitForOrchestration(id, 10000);
    await historyHas(client, 'idle', 'EventWaitStarted');
    await client.cancelInstance('idle', 'enough');
    await client.waitForOrchestration('idle', 10000);
    for (const id of ['gated-1', 'gated-2', 'gated-3']) await client.startOrchestration(id, 'Gated');
    await historyHas(client, 'sleeper', 'TimerCreated');
    // The event for 'early' waits, visible, for its instance; the timer is delayed; one Gate
    // runs in the only worker slot while two wait; the retry waits out its delay.
    await queues({ orchestrator: { visible: 1, delayed: 1 }, worker: { visible: 2, running: 1, delayed: 1 } }, 'the mixed queues');
    const s = runtime.metricsSnapshot();
    // Done x2, Parent, Kid, Loop (once, at its last execution) completed; Throws and the cancelled Idle failed.
    assert.deepEqual(counters(s), { completed: 5, failed: 2, turnsAbandoned: 0, storeErrors: 0, nondeterminismErrors: 0, poisoned: 0 });
    assert.equal(s.runningActivities, 1);
    assert.equal(s.inflightTurns, 0);

    release('open');
    for (const id of ['gated-1', 'gated-2', 'gated-3']) assert.equal((await client.waitForOrchestration(id, 10000)).output, 'open');
    await client.cancelInstance('sleeper', 'no more sleep');
    await client.cancelInstance('retrying', 'no more retries');
    await client.waitForOrchestration('retrying', 10000);
    await queues({ orchestrator: { visible: 1, delayed: 0 }, worker: { visible: 0, running: 0, delayed: 0 } }, 'only the early event left');
    await client.startOrchestration('early', 'Idle');
    assert.equal((await client.waitForOrchestration('early', 10000)).output, 'raised before the instance');
    await queues({ orchestrator: { visible: 0, delayed: 0 }, worker: { visible: 0, running: 0, delayed: 0 } }, 'empty queues');
    const end = runtime.metricsSnapshot();
    assert.deepEqual(counters(end), { completed: 9, failed: 4, turnsAbandoned: 0, storeErrors: 0, nondeterminismErrors: 0, poisoned: 0 });
    assert.equal(end.activityRetries, 1);
    assert.equal(end.runningActivities, 0);
    assert.deepEqual(await client.getSystemMetrics(), { total: 13, running: 0, completed: 9, failed: 4 });
    assert.match(runtime.metricsPrometheus(), /^reprise_orchestrations_completed_total 9$/m);
    assert.match(runtime.metricsPrometheus(), /^reprise_orchestrations_failed_total 4$/m);
  } finally {
    release();
    await env.drop();
  }
});

test('an activity that finishes on its own after losing a race is not counted as a lost lease', async () => {
  const reasons = [];
  let finished = 0;
  const env = await startEnv((rt) => {
    // Aborting only fires the signal: this function ignores it and finishes later (allowed).
    rt.registerActivity('Stubborn', (ctx) => new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => reasons.push(ctx.signal.reason.message));
      setTimeout(() => {
        finished += 1;
        resolve('done anyway');
      }, 300);
    }));
    rt.registerOrchestration('Race', function* (ctx) {
      return yield ctx.race(ctx.scheduleActivity('Stubborn'), ctx.scheduleTimer(50));
    });
  });
  try {
    await env.client.startOrchestration('stubborn', 'Race');
    assert.deepEqual((await env.client.waitForOrchestration('stubborn', 10000)).output, { index: 1, value: null });
    await eventually(() => finished === 1 && env.runtime.metricsSnapshot().runningActivities === 0, 10000, 'the loser to finish');
    assert.deepEqual(reasons, ['the orchestration no longer waits for this activity']);
    assert.equal((await env.client.readExecutionHistory('stubborn')).filter((e) => e.kind === 'ActivityCompleted').length, 0, 'its result is dropped');
    assert.equal(env.runtime.metricsSnapshot().leaseLosses, 0);
  } finally {
    await env.drop();
  }
});

test('shutdown resolves as soon as a race loser that was still winding down has finished', async () => {
  const reasons = [];
  const env = await startEnv((rt) => {
    rt.registerActivity('WindsDown', (ctx) => new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        reasons.push(ctx.signal.reason.message);
        setTimeout(() => resolve('cleaned up'), 30);
      });
    }));
    rt.registerOrchestration('Race', function* (ctx) {
      return yield ctx.race(ctx.scheduleActivity('WindsDown'), ctx.scheduleTimer(50));
    });
  });
  try {
    await env.client.startOrchestration('winds-down', 'Race');
    await env.client.waitForOrchestration('winds-down', 10000);
    await eventually(() => reasons.length === 1, 5000, 'the loser’s signal');
    const started = Date.now();
    await env.runtime.shutdown(2000);
    const took = Date.now() - started;
    assert.ok(took < 1000, `shutdown took ${took} ms for an activity that finished 30 ms after it began (deadline 2000 ms)`);
  } finally {
    await env.drop();
  }
});
