'use strict';

// One attempt of a job run: the job's async function, run from the top with the steps the
// store recorded, as a built-in activity. A finished step is answered from the attempt's
// map (no I/O); a new step runs and is recorded as it finishes, fenced by the attempt's
// activity lease. A step that must wait (sleep, awaitEvent, join, a retry's backoff)
// suspends the attempt: its promise never settles, the attempt ends once no step is in
// flight, and the run's orchestration waits for the time or a wake message, then starts
// the next attempt.

const { InvalidArgumentError, TimeoutError, nativeCall } = require('../errors');
const { toJson, describe, checkDuration } = require('../json');
const { checkRetryPolicy } = require('../context');
const { errorFields } = require('../driver');

/**
 * How often a run blocked on its concurrency key looks again, besides being woken: every
 * 5 s at first, then a tenth of how long it has waited, up to 5 min (each look is an
 * attempt and a few history events, so a run blocked for hours stays small).
 */
const BLOCKED_POLL_MS = [5000, 300000];
/** How often a join looks at its child besides being woken when the child ends: the same, from 30 s to 10 min. */
const JOIN_POLL_MS = [30000, 600000];

/** The next look of a wait that began `waitedMs` ago, within `[least, most]`. */
function pollAfter(waitedMs, [least, most]) {
  return Math.min(most, Math.max(least, Math.floor(waitedMs / 10)));
}
const CHILD_EVENT = 'reprise.child:';

/**
 * A promise that never settles, for a suspended step. A fresh one each time: code awaiting a
 * shared module-level one would stay reachable from it (its reactions) forever, and every
 * suspended attempt would keep its job function, step context and app in memory.
 */
const never = () => new Promise(() => {});
/** What tracked work returns to suspend the attempt once it is no longer in flight. */
const SUSPEND = Symbol('suspend');

function parseValue(text) {
  return text === null || text === undefined ? null : JSON.parse(text);
}

/** The error a step gave up with, as it was stored: same name, message and code. */
function restoreError(text) {
  const fields = parseValue(text) || {};
  if (fields.code === 'ERR_TIMEOUT') return new TimeoutError(fields.message);
  const error = new Error(fields.message);
  if (fields.name) Object.defineProperty(error, 'name', { value: fields.name, configurable: true, writable: true });
  if (fields.code !== undefined) error.code = fields.code;
  return error;
}

function retryDelay(policy, attempt) {
  const n = Math.max(1, attempt);
  const base = policy.initialDelayMs;
  let delay = policy.backoff === 'fixed' ? base : policy.backoff === 'linear' ? base * n : base * 2 ** (n - 1);
  if (policy.maxDelayMs !== undefined) delay = Math.min(delay, policy.maxDelayMs);
  if (policy.jitter && delay > 0) delay = Math.floor(delay / 2 + Math.random() * (delay / 2));
  return delay;
}

function checkStepName(name, what) {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError(`${what}: name must be a non-empty string, got ${describe(name)}`);
  }
}

class Attempt {
  constructor(app, job, actx, envelope) {
    this.app = app;
    this.job = job;
    this.actx = actx;
    this.envelope = envelope;
    this.runId = actx.instanceId;
    this.steps = new Map();
    this.counts = new Map();
    this.inflight = 0;
    this.until = Infinity; // earliest time a suspended step wants to run again
    this.suspended = false;
    // True until a step does new work: progress and log lines of code that only re-runs
    // (before the first unfinished step) were written by an earlier attempt already. An
    // awaitEvent or join that an emit completed while the run was suspended answers from the
    // store too, yet the code after it never ran: so replay also ends once every stored step
    // has answered, one of them an awaited one.
    this.replaying = false;
    this.answered = new Set();
    this.answeredAwait = false;
    this.writes = Promise.resolve(true);
    this.ended = new Promise((resolve) => {
      this.end = resolve;
    });
  }

  call(request) {
    return nativeCall(this.app.runtime._native.jobCall(this.actx._id, JSON.stringify(request))).then(JSON.parse);
  }

  /** The store's clock, from the attempt's start (the store's `now` then). */
  now() {
    return this.storeNow + (Date.now() - this.localAtBegin);
  }

  event(type, fields) {
    this.app._emit(type, { runId: this.runId, jobName: this.job.name, ...fields });
  }

  /** `name` made unique in this attempt: the second step of a name is `name#2`, and so on. */
  unique(kind, name) {
    const base = kind ? `${kind}:${name}` : name;
    const n = (this.counts.get(base) || 0) + 1;
    this.counts.set(base, n);
    return n === 1 ? base : `${base}#${n}`;
  }

  async write(...writes) {
    const ok = await this.call({ op: 'write', writes });
    if (!ok) this.lose();
    return ok;
  }

  /** Queues a write behind the earlier ones (progress and log lines keep their order). */
  queue(write) {
    this.writes = this.writes.then(() => this.write(write)).catch((error) => {
      process.emitWarning(`reprise: a job write failed: ${error && error.message}`);
      return false;
    });
  }

  /** The stored row `key` answered a step (`awaited`: an awaitEvent or join). */
  replayed(key, awaited = false) {
    if (!this.replaying) return;
    this.answered.add(key);
    if (awaited) this.answeredAwait = true;
    if (this.answeredAwait && this.answered.size >= this.steps.size) this.replaying = false;
  }

  lose() {
    this.end({ t: 'lost' });
    return never();
  }

  /** Marks the attempt suspended (until `until`, or a wake); tracked work returns this. */
  suspend(until) {
    this.suspended = true;
    if (until !== null && until !== undefined) this.until = Math.min(this.until, until);
    return SUSPEND;
  }

  /** Suspends from outside tracked work: the step's promise never settles. */
  suspendNow(until) {
    this.suspend(until);
    this.settle();
    return never();
  }

  settle() {
    if (this.suspended && this.inflight === 0) this.end({ t: 'suspend' });
  }

  /** Runs `fn` as in-flight work: the attempt does not end on a suspension while it runs. */
  async track(fn) {
    this.inflight++;
    let result;
    try {
      result = await fn();
    } finally {
      this.inflight--;
      this.settle();
    }
    return result === SUSPEND ? never() : result;
  }

  async run() {
    const env = this.envelope;
    // A child whose parent failed or was cancelled by other means than app.cancel (the CLI,
    // client.cancelInstance) ends here, at its next attempt.
    if (env.parent && (await this.parentEnded())) return this.cancelSelf(`the parent run ${env.parent} ended`);
    const begin = await this.call({ op: 'begin', key: env.concurrencyKey ?? null });
    if (begin.kind === 'leaseLost') return { t: 'suspend', until: null };
    if (begin.kind === 'blocked') {
      const pendingUntil = env.cancelIfPendingMs == null ? Infinity : env.triggeredAt + env.cancelIfPendingMs;
      if (Date.now() >= pendingUntil) return this.cancelSelf('cancelIfPendingMs');
      return { t: 'suspend', until: Math.min(Date.now() + pollAfter(Date.now() - env.triggeredAt, BLOCKED_POLL_MS), pendingUntil) };
    }
    this.storeNow = begin.now;
    this.localAtBegin = Date.now();
    for (const step of begin.steps) this.steps.set(step.name, step);
    this.replaying = begin.steps.length > 0;
    const firstStart = begin.startedAt === begin.now;
    if (firstStart && env.cancelIfPendingMs != null && begin.now >= env.triggeredAt + env.cancelIfPendingMs) {
      return this.cancelSelf('cancelIfPendingMs');
    }
    const cancelAt = env.cancelAfterMs == null ? Infinity : begin.startedAt + env.cancelAfterMs;
    if (begin.now >= cancelAt) return this.cancelSelf('cancelAfterMs');
    if (firstStart) this.event('run:start', {});
    let timer = null;
    if (cancelAt !== Infinity) {
      timer = setTimeout(() => this.app.cancel(this.runId, 'cancelAfterMs').catch(() => {}), cancelAt - begin.now);
    }
    try {
      return await this.execute(cancelAt);
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  async parentEnded() {
    const parent = await this.app.client.getInstanceInfo(this.envelope.parent);
    return parent === null || parent.storedStatus === 'Failed' || parent.storedStatus === 'Canceled';
  }

  async cancelSelf(reason) {
    await this.app.cancel(this.runId, reason);
    return { t: 'suspend', until: null };
  }

  async execute(cancelAt) {
    const step = new StepContext(this);
    const result = Promise.resolve()
      .then(() => this.job.run(step, this.envelope.input))
      .then(
        (value) => ({ t: 'done', value }),
        (error) => ({ t: 'error', error }),
      );
    const outcome = await Promise.race([result, this.ended]);
    await this.writes;
    if (outcome.t === 'lost') return { t: 'suspend', until: null };
    if (outcome.t === 'suspend') {
      const until = Math.min(this.until, cancelAt);
      return { t: 'suspend', until: until === Infinity ? null : until };
    }
    if (outcome.t === 'done') {
      let output;
      try {
        output = this.job.output ? this.job.output.parse(outcome.value) : outcome.value;
        output = JSON.parse(toJson(output, `the output of job '${this.job.name}'`));
      } catch (error) {
        return this.fail(new InvalidArgumentError(`the output of job '${this.job.name}' is invalid: ${error && error.message}`));
      }
      await this.finish({ ok: true, output });
      this.event('run:complete', { output });
      return { t: 'done', output };
    }
    return this.fail(outcome.error);
  }

  async fail(error) {
    const fields = errorFields(error);
    await this.app._cancelChildren(this.runId, 'the parent run failed');
    await this.finish({ ok: false, error: fields });
    this.event('run:fail', { error: fields.message });
    throw error;
  }

  /** What the end of a run does besides its own record: tells its parent, frees its key. */
  async finish(outcome) {
    if (this.envelope.parent) await this.app.client._jobQuery({ op: 'emit', event: CHILD_EVENT + this.runId, payload: JSON.stringify(outcome) });
    if (this.envelope.concurrencyKey != null) this.app._releaseWhenEnded(this.runId);
  }
}

/** What a job's `run(step, input)` receives. */
class StepContext {
  constructor(attempt) {
    Object.defineProperty(this, '_a', { value: attempt, enumerable: false });
    this.runId = attempt.runId;
    this.jobName = attempt.job.name;
    /** Aborts when the run is cancelled, its lease is lost or the runtime shuts down. */
    this.signal = attempt.actx.signal;
    const log = (level) => (message, data) => this._log(level, message, data);
    this.log = { info: log('info'), warn: log('warn'), error: log('error') };
  }

  /** Runs `fn` once for this run; its result (JSON) is stored and returned from then on. */
  async run(name, fn, options = {}) {
    checkStepName(name, 'step.run(name, fn)');
    if (typeof fn !== 'function') throw new InvalidArgumentError(`step.run('${name}', fn): fn must be a function, got ${describe(fn)}`);
    const policy = options && options.retry !== undefined ? checkRetryPolicy(options.retry) : this._a.job.retry;
    const a = this._a;
    const key = a.unique('', name);
    const row = a.steps.get(key);
    if (row && (row.state === 'done' || row.state === 'failed')) a.replayed(key);
    if (row && row.state === 'done') return parseValue(row.value);
    if (row && row.state === 'failed') throw restoreError(row.value);
    if (row && row.state === 'retrying' && row.untilMs > a.now()) return a.suspendNow(row.untilMs);
    const attempt = (row ? row.attempts : 0) + 1;
    a.replaying = false;
    return a.track(async () => {
      a.event('step:start', { stepName: key, attempt });
      let value;
      let error;
      let failed = false;
      try {
        value = await fn();
        value = parseValue(toJson(value, `the result of step '${key}'`));
      } catch (e) {
        failed = true;
        error = e;
      }
      if (!failed) {
        if (!(await a.write({ kind: 'step', name: key, state: 'done', value: JSON.stringify(value), attempts: attempt }))) return never();
        a.event('step:complete', { stepName: key, output: value, attempt });
        return value;
      }
      const fields = errorFields(error);
      const retry = policy && attempt < policy.maxAttempts;
      const untilMs = retry ? a.now() + retryDelay(policy, attempt) : null;
      const state = retry ? 'retrying' : 'failed';
      if (!(await a.write({ kind: 'step', name: key, state, value: JSON.stringify(fields), attempts: attempt, untilMs }))) return never();
      a.event('step:fail', { stepName: key, error: fields.message, attempt, willRetry: retry });
      if (retry) return a.suspend(untilMs);
      throw error;
    });
  }

  /** The run's progress, stored with it (`getRun(id).progress`). */
  progress(current, total, message) {
    if (typeof current !== 'number' || !Number.isFinite(current)) {
      throw new InvalidArgumentError(`step.progress(current, total?, message?): current must be a number, got ${describe(current)}`);
    }
    const progress = { current };
    if (total !== undefined && total !== null) progress.total = total;
    if (message !== undefined && message !== null) progress.message = String(message);
    if (this._a.replaying) return;
    this._a.queue({ kind: 'progress', value: JSON.stringify(progress) });
    this._a.event('run:progress', { progress });
  }

  _log(level, message, data) {
    if (this._a.replaying) return;
    const entry = { kind: 'log', level, message: String(message) };
    if (data !== undefined) entry.data = toJson(data, `the data of a step.log.${level} line`);
    this._a.queue(entry);
    this._a.event('log:write', { level, message: entry.message, data: data === undefined ? null : parseValue(entry.data) });
  }

  /** Waits `ms` (durably: the attempt ends and the run wakes when the time has come). */
  async sleep(name, ms) {
    checkStepName(name, 'step.sleep(name, ms)');
    checkDuration(ms, 'step.sleep(name, ms): ms');
    return this._sleep(name, (now) => now + ms);
  }

  async sleepUntil(name, date) {
    checkStepName(name, 'step.sleepUntil(name, date)');
    const at = date instanceof Date ? date.getTime() : date;
    if (typeof at !== 'number' || !Number.isFinite(at)) {
      throw new InvalidArgumentError(`step.sleepUntil(name, date): date must be a Date or epoch milliseconds, got ${describe(date)}`);
    }
    return this._sleep(name, () => at);
  }

  async _sleep(name, until) {
    const a = this._a;
    const key = a.unique('sleep', name);
    const row = a.steps.get(key);
    if (row && row.state === 'done') return a.replayed(key);
    const untilMs = row ? row.untilMs : until(a.now());
    a.replaying = false;
    return a.track(async () => {
      if (untilMs <= a.now()) {
        if (row) await a.write({ kind: 'step', name: key, state: 'done', value: null, untilMs });
        return undefined;
      }
      if (!row && !(await a.write({ kind: 'step', name: key, state: 'sleeping', untilMs }))) return never();
      return a.suspend(untilMs);
    });
  }

  /**
   * Waits for `emitEvent(name, payload)` and returns the payload; the last payload emitted
   * under `name` before is returned at once. With `timeoutMs`: a TimeoutError after it.
   */
  async awaitEvent(name, options = {}) {
    checkStepName(name, 'step.awaitEvent(name, options?)');
    const timeoutMs = options && options.timeoutMs !== undefined ? checkDuration(options.timeoutMs, 'step.awaitEvent options.timeoutMs') : null;
    const a = this._a;
    const key = a.unique('event', name);
    return this._await(key, name, (row) => {
      if (row && row.state === 'waiting') return row.untilMs;
      return timeoutMs === null ? null : a.now() + timeoutMs;
    });
  }

  async _await(key, event, deadlineOf, onWaiting) {
    const a = this._a;
    const row = a.steps.get(key);
    if (row && (row.state === 'done' || row.state === 'failed')) a.replayed(key, true);
    if (row && row.state === 'done') return parseValue(row.value);
    if (row && row.state === 'failed') throw restoreError(row.value);
    const deadline = deadlineOf(row);
    a.replaying = false;
    return a.track(async () => {
      const giveUp = deadline !== null && deadline !== undefined && deadline <= a.now();
      const answer = await a.call({ op: 'await', name: key, event, deadline: deadline ?? null, giveUp });
      if (answer.kind === 'leaseLost') return a.lose();
      if (answer.kind === 'received') {
        const value = parseValue(answer.payload);
        a.event('step:complete', { stepName: key, output: value });
        return value;
      }
      if (answer.kind === 'timedOut') throw new TimeoutError(`no event '${event}' arrived within the timeout of step '${key}'`);
      if (onWaiting) return onWaiting();
      return a.suspend(deadline);
    });
  }

  /** Emits an event to every run awaiting `name` (once per run: it is a step). */
  async emitEvent(name, payload) {
    checkStepName(name, 'step.emitEvent(name, payload?)');
    const a = this._a;
    const key = a.unique('emit', name);
    if (a.steps.has(key)) return a.replayed(key);
    a.replaying = false;
    const json = toJson(payload, `the payload of event '${name}'`);
    return a.track(async () => {
      await a.app.client._jobQuery({ op: 'emit', event: name, payload: json });
      if (!(await a.write({ kind: 'step', name: key, state: 'done', value: null }))) return never();
      return undefined;
    });
  }

  /** Triggers `job` as a child run; returns a handle to `join`. */
  async spawn(name, job, input, options = {}) {
    checkStepName(name, 'step.spawn(name, job, input, options?)');
    const a = this._a;
    const key = a.unique('spawn', name);
    const row = a.steps.get(key);
    if (row && row.state === 'done') {
      a.replayed(key);
      return parseValue(row.value);
    }
    const jobName = typeof job === 'string' ? job : job && job.name;
    a.replaying = false;
    if (typeof jobName !== 'string') throw new InvalidArgumentError(`step.spawn('${name}', job): job must be a job (or its name), got ${describe(job)}`);
    return a.track(async () => {
      const runId = `${a.runId}:${key}`;
      await a.app._triggerRun(jobName, input, { ...options, runId }, { parent: a.runId });
      const handle = { runId, jobName };
      if (!(await a.write({ kind: 'step', name: key, state: 'done', value: JSON.stringify(handle) }))) return never();
      return handle;
    });
  }

  /** The output of a spawned child run, once it ends; throws its error if it failed. */
  async join(name, handle) {
    checkStepName(name, 'step.join(name, handle)');
    if (!handle || typeof handle.runId !== 'string') throw new InvalidArgumentError(`step.join('${name}', handle): handle must come from step.spawn, got ${describe(handle)}`);
    const a = this._a;
    const key = a.unique('join', name);
    const waitingSince = a.steps.has(key) ? a.steps.get(key).updatedAt : null;
    const outcome = await this._await(key, CHILD_EVENT + handle.runId, () => null, async () => {
      // Not ended, or ended without telling (cancelled by another client): look at it.
      const run = await a.app.getRun(handle.runId);
      if (run && ['completed', 'failed', 'cancelled'].includes(run.status)) {
        const ended = run.status === 'completed' ? { ok: true, output: run.output } : { ok: false, error: { name: 'Error', message: run.error || `child run ${run.status}` } };
        if (!(await a.write({ kind: 'step', name: key, state: 'done', value: JSON.stringify(ended) }))) return never();
        return ended;
      }
      return a.suspend(a.now() + pollAfter(waitingSince === null ? 0 : a.now() - waitingSince, JOIN_POLL_MS));
    });
    if (outcome.ok) return outcome.output;
    throw restoreError(JSON.stringify(outcome.error));
  }

  /** Tells the runtime the attempt is alive and needs `ms` more (its timeout moves). */
  async heartbeat(ms = 30000) {
    checkDuration(ms, 'step.heartbeat(ms)');
    const ok = await this._a.call({ op: 'heartbeat', ms });
    if (!ok) return this._a.lose();
    return undefined;
  }
}

module.exports = { Attempt, StepContext, CHILD_EVENT, restoreError, parseValue };
