'use strict';
// Within one process nothing waits for the fallback poll: every commit wakes what it made
// ready (turns, activities, timers at their due time, waiters of the client). The poll is
// set to a minute, so a missing wake-up shows as a stall far beyond the bounds below.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startEnv } = require('./helpers');

const POLL = 60000;
/** Far below the poll, far above what the work takes on a loaded machine. */
const BOUND = 15000;

function register(rt) {
  let flaky = 0;
  rt.registerActivity('Add', async (ctx, { a, b }) => a + b);
  rt.registerActivity('Flaky', async () => {
    flaky++;
    if (flaky === 1) throw new Error('first attempt fails');
    return 'second attempt';
  });
  rt.registerOrchestration('Child', function* (ctx, n) {
    return yield ctx.scheduleActivity('Add', { a: n, b: 1 });
  });
  rt.registerOrchestration('Everything', function* (ctx, n) {
    const one = yield ctx.scheduleActivity('Add', { a: n, b: 1 });
    yield ctx.scheduleTimer(50);
    const event = yield ctx.waitForEvent('go');
    const child = yield ctx.scheduleSubOrchestration('Child', one);
    const fan = yield ctx.all([1, 2, 3].map((b) => ctx.scheduleActivity('Add', { a: child, b })));
    const retried = yield ctx.scheduleActivityWithRetry('Flaky', null, { maxAttempts: 2, initialDelayMs: 50 });
    const raced = yield ctx.race(ctx.scheduleTimer(30), ctx.waitForEvent('never'));
    return { one, event, child, fan: fan.map((r) => r.ok), retried, raced: raced.index };
  });
}

test('with a one-minute poll, activities, timers, events, children, fan-out, retries and races all proceed on wake-ups', async () => {
  const env = await startEnv(register, { pollIntervalMs: POLL });
  try {
    const started = Date.now();
    await env.client.startOrchestration('w', 'Everything', 10);
    // The event is raised once the orchestration waits for it (its wait is in history).
    for (;;) {
      const history = await env.client.readStoredHistory('w');
      if (history.some((e) => e.kind === 'EventWaitStarted')) break;
      assert.ok(Date.now() - started < BOUND, `stalled before the wait: ${history.map((e) => e.kind).join(', ')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await env.client.raiseEvent('w', 'go', 'went');
    const r = await env.client.waitForOrchestration('w', BOUND);
    assert.equal(r.status, 'Completed', r.error);
    assert.deepEqual(r.output, { one: 11, event: 'went', child: 12, fan: [13, 14, 15], retried: 'second attempt', raced: 0 });
  } finally {
    await env.drop();
  }
});
