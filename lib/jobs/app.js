'use strict';

// The app object: jobs as async functions with checkpointed steps, on the same engine,
// store, client and CLI as generator orchestrations. A run is an instance whose
// orchestration is a built-in loop: run an attempt (a built-in activity, lib/jobs/attempt.js),
// then, if it suspended, wait for its time or a wake message, and run the next one.

const crypto = require('node:crypto');
const { SqliteProvider, PostgresProvider } = require('../providers');
const { Client } = require('../client');
const { Runtime } = require('../runtime');
const { BUILTIN_PREFIX, checkRetryPolicy } = require('../context');
const { InvalidArgumentError, InvalidStateError, NotFoundError, RepriseError } = require('../errors');
const { checkName, checkInstanceId, checkKnownKeys, checkDuration, describe, toJson } = require('../json');
const { Attempt, CHILD_EVENT, parseValue } = require('./attempt');

const JOB_ACTIVITY_PREFIX = `${BUILTIN_PREFIX}job:`;
const WAKE_EVENT = 'reprise.job.wake';
/** Marks an instance input as a job run's: `{ $job: 1, input, ... }`. */
const RUN_MARK = '$job';
const EVENT_TYPES = [
  'run:trigger', 'run:start', 'run:complete', 'run:fail', 'run:cancel', 'run:retry', 'run:progress',
  'step:start', 'step:complete', 'step:fail', 'log:write',
];
const STATUS_OF = { Completed: 'completed', Failed: 'failed', Canceled: 'cancelled' };
const TRIGGER_OPTIONS = ['idempotencyKey', 'concurrencyKey', 'runId', 'cancelAfterMs', 'cancelIfPendingMs'];
/** How long a finished attempt's process waits for its run to end before freeing the key anyway. */
const RELEASE_WAIT_MS = 5000;
const PROVIDER_OPTIONS = ['poolSize', 'connectTimeoutMs', 'synchronous', 'unknownEventTtlMs', 'createSchema'];

/** A run failed or was cancelled (from `triggerAndWait`): `.runId`, `.status`, `.error`. */
class RunFailedError extends RepriseError {
  constructor(run) {
    super(`run ${run.id} of job '${run.jobName}' ${run.status === 'cancelled' ? 'was cancelled' : 'failed'}: ${run.error}`, 'ERR_RUN_FAILED');
    this.runId = run.id;
    this.status = run.status;
    this.error = run.error;
  }
}

function checkSchema(schema, what) {
  if (schema === undefined || schema === null) return undefined;
  if (typeof schema !== 'object' && typeof schema !== 'function') throw new InvalidArgumentError(`${what} must be a schema with a parse(value) method (zod works), got ${describe(schema)}`);
  if (typeof schema.parse !== 'function') throw new InvalidArgumentError(`${what} must have a parse(value) method (zod schemas do)`);
  return schema;
}

/** `{ name, input?, output?, retry?, timeoutMs?, run: async (step, input) => output }`. */
function defineJob(definition) {
  if (!definition || typeof definition !== 'object') throw new InvalidArgumentError(`defineJob(definition): definition must be an object { name, run }, got ${describe(definition)}`);
  checkKnownKeys(definition, ['name', 'input', 'output', 'retry', 'timeoutMs', 'run'], 'definition', 'defineJob');
  checkName(definition.name, 'defineJob(definition): definition.name');
  if (definition.name.startsWith(BUILTIN_PREFIX)) throw new InvalidArgumentError(`job name '${definition.name}' is reserved: names starting with '${BUILTIN_PREFIX}' belong to reprise`);
  if (typeof definition.run !== 'function') throw new InvalidArgumentError(`defineJob(definition): definition.run of job '${definition.name}' must be an async function (step, input) => output, got ${describe(definition.run)}`);
  return Object.freeze({
    name: definition.name,
    input: checkSchema(definition.input, `definition.input of job '${definition.name}'`),
    output: checkSchema(definition.output, `definition.output of job '${definition.name}'`),
    retry: definition.retry === undefined ? undefined : checkRetryPolicy(definition.retry),
    timeoutMs: definition.timeoutMs === undefined ? undefined : checkDuration(definition.timeoutMs, `definition.timeoutMs of job '${definition.name}'`, { min: 1 }),
    run: definition.run,
  });
}

/** The orchestration of every run of a job: attempts, and waits between them. */
function runLoop(activity, timeoutMs) {
  return function* runJob(ctx, envelope) {
    for (;;) {
      const outcome = timeoutMs === undefined
        ? yield ctx.scheduleActivity(activity, envelope)
        : yield ctx.scheduleActivityWithRetry(activity, envelope, { maxAttempts: 1, timeoutMs });
      if (outcome.t === 'done') return outcome.output;
      const wake = ctx.waitForEvent(WAKE_EVENT);
      if (outcome.until === null || outcome.until === undefined) {
        yield wake;
      } else {
        const now = yield ctx.utcNow();
        yield ctx.race(wake, ctx.scheduleTimer(Math.max(0, outcome.until - now)));
      }
    }
  };
}

function iso(ms) {
  return ms === null || ms === undefined ? undefined : new Date(ms).toISOString();
}

function isRun(info) {
  return info !== null && info.input !== null && typeof info.input === 'object' && info.input[RUN_MARK] === 1;
}

/** The Run view (Durably's names) of an instance and its job state. */
function toRun(info, state) {
  const ended = STATUS_OF[info.storedStatus];
  const run = {
    id: info.instanceId,
    jobName: info.name,
    status: ended || (state && state.startedAt != null ? 'running' : 'pending'),
    payload: info.input.input ?? null,
    createdAt: iso(info.createdAt),
    updatedAt: iso(Math.max(info.updatedAt, (state && state.updatedAt) || 0)),
  };
  if (info.storedStatus === 'Completed') run.output = info.output;
  if (info.error != null && ended && ended !== 'completed') run.error = info.error;
  if (state && state.progress) run.progress = parseValue(state.progress);
  if (state && state.startedAt != null) run.startedAt = iso(state.startedAt);
  if (ended) run.completedAt = iso(info.updatedAt);
  if (info.input.concurrencyKey != null) run.concurrencyKey = info.input.concurrencyKey;
  if (info.input.parent) run.parentId = info.input.parent;
  return run;
}

class JobHandle {
  constructor(app, job) {
    this._app = app;
    this.name = job.name;
    this.definition = job;
  }

  /** Stores a run (status 'pending'); an existing idempotency key returns its run. */
  trigger(input, options) {
    return this._app._triggerRun(this.name, input, options);
  }

  async triggerAndWait(input, options = {}) {
    const { timeout, ...rest } = options || {};
    const run = await this.trigger(input, rest);
    const ended = await this._app.waitForRun(run.id, timeout === undefined ? {} : { timeoutMs: timeout });
    if (ended.status !== 'completed') throw new RunFailedError(ended);
    return { id: ended.id, output: ended.output };
  }

  /** Stores many runs in one store transaction: items are inputs or `{ input, options }`. */
  batchTrigger(items) {
    return this._app._batchTrigger(this.name, items);
  }

  async getRun(id) {
    const run = await this._app.getRun(id);
    return run && run.jobName === this.name ? run : null;
  }

  getRuns(filter = {}) {
    return this._app.getRuns({ ...filter, jobName: this.name });
  }
}

class App {
  constructor(provider, runtime) {
    this.provider = provider;
    this.client = new Client(provider);
    this.runtime = runtime;
    this._jobs = new Map(); // name -> JobHandle
    this._listeners = new Map(); // type -> Set(fn)
    this._state = 'new';
    this._releasing = new Set(); // promises of keys released once their runs have ended
  }

  /**
   * Frees the run's concurrency key once its instance has ended (the attempt that returns its
   * last outcome ends a moment before the instance does): the next run of the key never
   * shows 'running' beside it. If this process stops first, the next run finds the key's
   * holder ended on its own (within its 5 s look).
   */
  _releaseWhenEnded(runId) {
    const done = this.client
      .waitForOrchestration(runId, RELEASE_WAIT_MS)
      .catch(() => null)
      .then(() => this.client._jobQuery({ op: 'release', instanceId: runId }))
      .catch((error) => process.emitWarning(`reprise: freeing the concurrency key of run ${runId} failed: ${error && error.message}`))
      .finally(() => this._releasing.delete(done));
    this._releasing.add(done);
  }

  /** Registers job definitions: `{ key: defineJob(...) }` -> `{ key: handle }`. */
  register(jobs) {
    if (!jobs || typeof jobs !== 'object') throw new InvalidArgumentError(`app.register(jobs): jobs must be an object { key: defineJob(...) }, got ${describe(jobs)}`);
    if (this._state !== 'new') throw new InvalidStateError('app.register: register jobs before app.start()');
    const out = {};
    for (const [key, job] of Object.entries(jobs)) {
      if (!job || typeof job.run !== 'function' || typeof job.name !== 'string') throw new InvalidArgumentError(`app.register(jobs): jobs.${key} must come from defineJob(), got ${describe(job)}`);
      const existing = this._jobs.get(job.name);
      if (existing && existing.definition !== job) throw new InvalidArgumentError(`app.register: a different job named '${job.name}' is already registered`);
      const handle = existing || new JobHandle(this, job);
      if (!existing && this.runtime) {
        const activity = JOB_ACTIVITY_PREFIX + job.name;
        this.runtime.registerOrchestration(job.name, runLoop(activity, job.timeoutMs));
        this.runtime._activities.set(activity, (actx, envelope) => new Attempt(this, job, actx, envelope).run());
      }
      this._jobs.set(job.name, handle);
      out[key] = handle;
    }
    return out;
  }

  getJob(name) {
    return this._jobs.get(name);
  }

  /** Starts the worker (a client-only app, `worker: false`, has none). */
  async start() {
    if (this._state !== 'new') throw new InvalidStateError(`the app is already ${this._state}`);
    this._state = 'started';
    if (this.runtime) await this.runtime.start();
  }

  /** Stops the worker: waits up to `timeoutMs` for running attempts, then closes. */
  async stop(timeoutMs = 10000) {
    if (this._state === 'stopped') return;
    this._state = 'stopped';
    if (this.runtime && this.runtime._state === 'started') await this.runtime.shutdown(timeoutMs);
    await Promise.allSettled([...this._releasing]);
  }

  on(type, fn) {
    if (!EVENT_TYPES.includes(type)) throw new InvalidArgumentError(`app.on(type, fn): type must be one of ${EVENT_TYPES.join(', ')}, got ${describe(type)}`);
    if (typeof fn !== 'function') throw new InvalidArgumentError(`app.on('${type}', fn): fn must be a function, got ${describe(fn)}`);
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return () => this._listeners.get(type).delete(fn);
  }

  _emit(type, fields) {
    const listeners = this._listeners.get(type);
    if (!listeners || listeners.size === 0) return;
    const event = { type, timestamp: new Date().toISOString(), ...fields };
    for (const fn of listeners) {
      try {
        fn(event);
      } catch (error) {
        process.emitWarning(`reprise: an app.on('${type}') listener threw: ${error && error.stack}`);
      }
    }
  }

  _definition(jobName) {
    const handle = this._jobs.get(jobName);
    return handle ? handle.definition : null;
  }

  /** Validates a trigger; returns `[runId, envelope]`. Nothing is stored here. */
  _prepare(jobName, input, options, internal = {}) {
    checkName(jobName, 'job name');
    const opts = options === undefined || options === null ? {} : options;
    checkKnownKeys(opts, [...TRIGGER_OPTIONS, 'startedBy'], 'options', 'trigger');
    const job = this._definition(jobName);
    let value = input;
    if (job && job.input) {
      try {
        value = job.input.parse(input);
      } catch (error) {
        throw new InvalidArgumentError(`the input of job '${jobName}' is invalid: ${error && error.message}`, { cause: error });
      }
    }
    const envelope = { [RUN_MARK]: 1, input: value === undefined ? null : value, triggeredAt: Date.now() };
    for (const key of ['concurrencyKey', 'idempotencyKey']) {
      if (opts[key] !== undefined && opts[key] !== null && (typeof opts[key] !== 'string' || opts[key].length === 0)) {
        throw new InvalidArgumentError(`options.${key} must be a non-empty string, got ${describe(opts[key])}`);
      }
    }
    if (opts.concurrencyKey != null) envelope.concurrencyKey = opts.concurrencyKey;
    for (const key of ['cancelAfterMs', 'cancelIfPendingMs']) {
      if (opts[key] != null) envelope[key] = checkDuration(opts[key], `options.${key}`, { min: 1 });
    }
    if (internal.parent) envelope.parent = internal.parent;
    let runId = opts.runId;
    if (runId == null) runId = opts.idempotencyKey != null ? `${jobName}:${opts.idempotencyKey}` : crypto.randomUUID();
    checkInstanceId(runId, 'options.runId');
    toJson(envelope, `the input of job '${jobName}'`);
    return [runId, envelope];
  }

  async _triggerRun(jobName, input, options, internal) {
    const [runId, envelope] = this._prepare(jobName, input, options, internal);
    const created = await this.client.startOrchestration(runId, jobName, envelope);
    if (!created) return this.getRun(runId);
    await this._queueKey(runId, envelope);
    this._emit('run:trigger', { runId, jobName, input: envelope.input });
    const now = iso(envelope.triggeredAt);
    const run = { id: runId, jobName, status: 'pending', payload: envelope.input, createdAt: now, updatedAt: now };
    if (envelope.concurrencyKey != null) run.concurrencyKey = envelope.concurrencyKey;
    if (envelope.parent) run.parentId = envelope.parent;
    return run;
  }

  async _batchTrigger(jobName, items) {
    if (!Array.isArray(items)) throw new InvalidArgumentError(`batchTrigger(items): items must be an array, got ${describe(items)}`);
    const prepared = items.map((item, i) => {
      const wrapped = item !== null && typeof item === 'object' && !Array.isArray(item) && 'input' in item && Object.keys(item).every((k) => k === 'input' || k === 'options');
      try {
        return this._prepare(jobName, wrapped ? item.input : item, wrapped ? item.options : undefined);
      } catch (error) {
        if (error instanceof InvalidArgumentError) error.message = `items[${i}]: ${error.message}`;
        throw error;
      }
    });
    const { created } = await this.client.startOrchestrations(prepared.map(([id, envelope]) => ({ id, name: jobName, input: envelope })));
    const fresh = new Set(created);
    for (const [id, envelope] of prepared) if (fresh.has(id)) await this._queueKey(id, envelope);
    const runs = [];
    for (const [id, envelope] of prepared) {
      if (fresh.has(id)) {
        fresh.delete(id); // an id twice in the batch: the second is the existing run
        this._emit('run:trigger', { runId: id, jobName, input: envelope.input });
        const at = iso(envelope.triggeredAt);
        runs.push({ id, jobName, status: 'pending', payload: envelope.input, createdAt: at, updatedAt: at });
      } else {
        runs.push(await this.getRun(id));
      }
    }
    return runs;
  }

  /**
   * A run with a concurrency key takes its place in the key's queue at trigger, so runs of
   * one key start in trigger order (its first attempt would queue it too, in case this
   * process stops in between).
   */
  async _queueKey(runId, envelope) {
    if (envelope.concurrencyKey != null) await this.client._jobQuery({ op: 'queueKey', instanceId: runId, key: envelope.concurrencyKey });
  }

  /** The run, or `null` (an unknown id, or an instance that is not a job run). */
  async getRun(id) {
    checkInstanceId(id, 'runId');
    const info = await this.client.getInstanceInfo(id);
    if (!isRun(info)) return null;
    return toRun(info, await this.client._jobQuery({ op: 'state', instanceId: id }));
  }

  /** Runs, newest first: `{ jobName?, status?, limit? (100), offset? (0) }`. */
  async getRuns(filter = {}) {
    checkKnownKeys(filter || {}, ['jobName', 'status', 'limit', 'offset'], 'filter', 'getRuns');
    const { jobName, status, limit = 100, offset = 0 } = filter || {};
    const statuses = ['pending', 'running', 'completed', 'failed', 'cancelled'];
    if (status !== undefined && !statuses.includes(status)) throw new InvalidArgumentError(`filter.status must be one of ${statuses.join(', ')}, got ${describe(status)}`);
    for (const [key, value] of [['limit', limit], ['offset', offset]]) {
      if (!Number.isInteger(value) || value < 0) throw new InvalidArgumentError(`filter.${key} must be a non-negative integer, got ${describe(value)}`);
    }
    const storedStatus = { completed: 'Completed', failed: 'Failed', cancelled: 'Canceled' }[status];
    const infos = [];
    let cursor = null;
    do {
      const query = { limit: 1000, cursor };
      if (jobName !== undefined) query.name = jobName;
      if (storedStatus) query.storedStatus = storedStatus;
      else if (status) query.status = 'Running';
      const page = await this.client.listInstances(query);
      for (const info of page.instances) if (isRun(info)) infos.push(info);
      cursor = page.nextCursor;
    } while (cursor);
    infos.reverse();
    const runs = [];
    let skipped = 0;
    for (const info of infos) {
      if (runs.length >= limit) break;
      const open = !STATUS_OF[info.storedStatus];
      const run = toRun(info, open || !status ? await this.client._jobQuery({ op: 'state', instanceId: info.instanceId }) : null);
      if (status && run.status !== status) continue;
      if (skipped < offset) {
        skipped++;
        continue;
      }
      runs.push(run);
    }
    return runs;
  }

  /** Waits until the run ends; `{ timeoutMs? }` (none: no limit). Resolves to the Run. */
  async waitForRun(id, options = {}) {
    checkInstanceId(id, 'runId');
    const timeoutMs = options.timeoutMs;
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + checkDuration(timeoutMs, 'options.timeoutMs');
    for (;;) {
      const left = Math.min(deadline - Date.now(), 3600000);
      try {
        await this.client.waitForOrchestration(id, Math.max(1, left));
      } catch (error) {
        if (error.code !== 'ERR_TIMEOUT' || Date.now() >= deadline) throw error;
        continue;
      }
      const run = await this.getRun(id);
      if (!run) throw new NotFoundError(`run '${id}' does not exist`);
      if (['completed', 'failed', 'cancelled'].includes(run.status)) return run;
    }
  }

  /** Runs a failed or cancelled run again: its finished steps are not run again. */
  async retry(id) {
    const run = await this._existing(id, 'retry');
    if (run.status !== 'failed' && run.status !== 'cancelled') throw new InvalidStateError(`run '${id}' is ${run.status}: only failed or cancelled runs can be retried`);
    await this.client.retryInstance(id);
    this._emit('run:retry', { runId: id, jobName: run.jobName });
  }

  /** Cancels a run that has not ended, and its unfinished children; true when it did. */
  async cancel(id, reason = 'cancelled') {
    const run = await this._existing(id, 'cancel');
    if (!['pending', 'running'].includes(run.status)) return false;
    await this.client.cancelInstance(id, typeof reason === 'string' ? reason : 'cancelled');
    await this.client._jobQuery({ op: 'release', instanceId: id });
    if (run.parentId) {
      const outcome = { ok: false, error: { name: 'Error', code: 'ERR_CANCELED', message: `child run ${id} was cancelled` } };
      await this.client._jobQuery({ op: 'emit', event: CHILD_EVENT + id, payload: JSON.stringify(outcome) });
    }
    await this._cancelChildren(id, `the parent run ${id} was cancelled`);
    this._emit('run:cancel', { runId: id, jobName: run.jobName });
    return true;
  }

  async _cancelChildren(id, reason) {
    const state = await this.client._jobQuery({ op: 'state', instanceId: id });
    for (const step of state.steps) {
      if (!step.name.startsWith('spawn:') || step.state !== 'done') continue;
      const child = parseValue(step.value);
      if (child && child.runId) await this.cancel(child.runId, reason).catch(() => false);
    }
  }

  /** Deletes an ended run with its steps and logs. */
  async deleteRun(id) {
    const run = await this._existing(id, 'delete');
    if (run.status === 'pending' || run.status === 'running') throw new InvalidStateError(`run '${id}' is ${run.status}: cancel it before deleting it`);
    await this.client.deleteInstance(id, { force: true });
    await this.client._jobQuery({ op: 'clearEvent', event: CHILD_EVENT + id });
  }

  async _existing(id, what) {
    const run = await this.getRun(id);
    if (!run) throw new NotFoundError(`cannot ${what} run '${id}': no such run`);
    return run;
  }

  /** Log lines of a run (from any process): `{ seq, level, message, data, stepName, createdAt }`. */
  async getLogs(runId, options = {}) {
    checkInstanceId(runId, 'runId');
    const { afterSeq = 0, limit = 1000 } = options || {};
    const rows = await this.client._jobQuery({ op: 'logs', instanceId: runId, afterSeq, limit });
    return rows.map((r) => ({ seq: r.seq, level: r.level, message: r.message, data: parseValue(r.data), stepName: r.step ?? null, createdAt: iso(r.createdAt) }));
  }

  /** The steps a run recorded: `{ name, state, output?, error?, attempts, updatedAt }`. */
  async getSteps(runId) {
    checkInstanceId(runId, 'runId');
    const state = await this.client._jobQuery({ op: 'state', instanceId: runId });
    return state.steps.map(stepView);
  }

  /** Wakes every run awaiting `name` and keeps `payload` as its last (see clearEvent). */
  async emitEvent(name, payload) {
    checkName(name, 'event name');
    return this.client._jobQuery({ op: 'emit', event: name, payload: toJson(payload, `the payload of event '${name}'`) });
  }

  /** Forgets the last payload emitted under `name`: later awaits wait for a new one. */
  async clearEvent(name) {
    checkName(name, 'event name');
    return this.client._jobQuery({ op: 'clearEvent', event: name });
  }

  /** A ReadableStream of one run's events (from the store: any process's run), closed at its end. */
  subscribe(runId, options = {}) {
    checkInstanceId(runId, 'runId');
    const intervalMs = options.intervalMs ?? 100;
    const app = this;
    let timer = null;
    let closed = false;
    const seen = { status: null, progress: null, steps: new Map(), logSeq: 0 };
    return new ReadableStream({
      start(controller) {
        const tick = async () => {
          if (closed) return;
          try {
            const ended = await app._diffRun(runId, seen, (event) => controller.enqueue(event));
            if (ended) {
              closed = true;
              controller.close();
              return;
            }
          } catch (error) {
            closed = true;
            controller.error(error);
            return;
          }
          timer = setTimeout(tick, intervalMs);
        };
        tick();
      },
      cancel() {
        closed = true;
        if (timer) clearTimeout(timer);
      },
    });
  }

  /** Pushes what changed in a run since `seen`; true once the run has ended. */
  async _diffRun(runId, seen, push) {
    const info = await this.client.getInstanceInfo(runId);
    if (!isRun(info)) throw new NotFoundError(`run '${runId}' does not exist`);
    const state = await this.client._jobQuery({ op: 'state', instanceId: runId });
    const run = toRun(info, state);
    const base = { runId, jobName: run.jobName };
    const at = () => new Date().toISOString();
    if (seen.status === null) seen.status = 'pending';
    if (run.status !== 'pending' && seen.status === 'pending') push({ type: 'run:start', timestamp: at(), ...base });
    const progress = run.progress ? JSON.stringify(run.progress) : null;
    if (progress !== seen.progress && progress !== null) push({ type: 'run:progress', timestamp: at(), ...base, progress: run.progress });
    seen.progress = progress;
    for (const step of state.steps.map(stepView)) {
      const key = `${step.state}:${step.attempts}`;
      if (seen.steps.get(step.name) === key) continue;
      seen.steps.set(step.name, key);
      if (step.state === 'done') push({ type: 'step:complete', timestamp: at(), ...base, stepName: step.name, output: step.output });
      else if (step.state === 'failed' || step.state === 'retrying') push({ type: 'step:fail', timestamp: at(), ...base, stepName: step.name, error: step.error && step.error.message });
    }
    for (const line of await this.getLogs(runId, { afterSeq: seen.logSeq })) {
      seen.logSeq = line.seq;
      push({ type: 'log:write', timestamp: at(), ...base, level: line.level, message: line.message, data: line.data, stepName: line.stepName });
    }
    seen.status = run.status;
    if (run.status === 'completed') push({ type: 'run:complete', timestamp: at(), ...base, output: run.output });
    else if (run.status === 'failed') push({ type: 'run:fail', timestamp: at(), ...base, error: run.error });
    else if (run.status === 'cancelled') push({ type: 'run:cancel', timestamp: at(), ...base });
    else return false;
    return true;
  }
}

function stepView(step) {
  const view = { name: step.name, state: step.state, attempts: step.attempts, updatedAt: iso(step.updatedAt) };
  if (step.state === 'done' && !step.name.startsWith('sleep:')) view.output = parseValue(step.value);
  if (step.state === 'failed' || step.state === 'retrying') view.error = parseValue(step.value);
  if (step.untilMs != null) view.until = iso(step.untilMs);
  if (step.event != null) view.event = step.event;
  return view;
}

async function openStorage(storage, providerOptions) {
  if (storage && typeof storage === 'object' && storage._native) return storage;
  if (storage === undefined || storage === null || storage === ':memory:' || storage === 'sqlite::memory:') return SqliteProvider.inMemory();
  if (typeof storage !== 'string') throw new InvalidArgumentError(`options.storage must be a URL ('sqlite:app.db', 'postgres://...') or a provider, got ${describe(storage)}`);
  if (/^postgres(ql)?:\/\//i.test(storage)) {
    const { schema, ...rest } = providerOptions;
    return schema === undefined ? PostgresProvider.connect(storage, rest) : PostgresProvider.connectWithSchema(storage, schema, rest);
  }
  if (providerOptions.schema !== undefined) throw new InvalidArgumentError('options.schema applies to PostgreSQL storage only');
  const { synchronous, unknownEventTtlMs } = providerOptions;
  return SqliteProvider.open(storage, { synchronous, unknownEventTtlMs });
}

/**
 * Opens the storage and makes an app: `{ storage, schema?, worker?, ...runtime options }`.
 * `worker: false` makes a client-only app (it triggers and reads runs; another process runs them).
 */
async function createReprise(options = {}) {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError(`createReprise(options): options must be an object, got ${describe(options)}`);
  const { storage, schema, worker = true, ...rest } = options;
  const providerOptions = { schema };
  const runtimeOptions = {};
  for (const [key, value] of Object.entries(rest)) {
    if (value === undefined) continue;
    if (PROVIDER_OPTIONS.includes(key)) providerOptions[key] = value;
    else runtimeOptions[key] = value;
  }
  if (typeof worker !== 'boolean') throw new InvalidArgumentError(`options.worker must be a boolean, got ${describe(worker)}`);
  const provider = await openStorage(storage, providerOptions);
  return new App(provider, worker ? new Runtime(provider, runtimeOptions) : null);
}

module.exports = { createReprise, defineJob, RunFailedError, App, JobHandle, JOB_ACTIVITY_PREFIX, WAKE_EVENT };
