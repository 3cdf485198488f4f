'use strict';

const crypto = require('node:crypto');
const native = require('./native');
const { Task } = require('./tasks');
const { InvalidArgumentError } = require('./errors');
const { checkName, checkInstanceId, checkDuration, checkOptionsObject, checkKnownKeys, checkVersion, describe, toJson, MAX_DURATION_MS } = require('./json');

const GUID_NAMESPACE = Buffer.from('6f0c6a8e2b1d4c5e9a7f3b2d1e0c9a8b', 'hex');

/** RFC 4122 version-5 UUID of `name` in reprise's namespace: deterministic per input. */
function uuidV5(name) {
  const hash = crypto.createHash('sha1').update(GUID_NAMESPACE).update(name).digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const h = hash.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

const BACKOFFS = new Set(['fixed', 'exponential', 'linear']);

/** Most attempts of a retry policy: attempts are counted in a 32-bit signed column. */
const MAX_ATTEMPTS = 2 ** 31 - 1;

const RETRY_POLICY_KEYS = ['maxAttempts', 'backoff', 'initialDelayMs', 'maxDelayMs', 'timeoutMs', 'jitter'];

function checkRetryPolicy(policy) {
  if (!policy || typeof policy !== 'object') {
    throw new InvalidArgumentError(`retryPolicy must be an object, got ${describe(policy)}`);
  }
  checkKnownKeys(policy, RETRY_POLICY_KEYS, 'retryPolicy', 'retry policy');
  const duration = (key, min) => (policy[key] === undefined ? undefined : checkDuration(policy[key], `retryPolicy.${key}`, { min }));
  const attempts = policy.maxAttempts;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new InvalidArgumentError(`retryPolicy.maxAttempts must be an integer >= 1, got ${describe(attempts)}`);
  }
  if (attempts > MAX_ATTEMPTS) {
    throw new InvalidArgumentError(`retryPolicy.maxAttempts must be at most ${MAX_ATTEMPTS}, got ${describe(attempts)}`);
  }
  const out = { maxAttempts: attempts };
  const backoff = policy.backoff === undefined ? 'exponential' : policy.backoff;
  if (!BACKOFFS.has(backoff)) {
    throw new InvalidArgumentError(`retryPolicy.backoff must be 'fixed', 'exponential' or 'linear', got ${describe(backoff)}`);
  }
  out.backoff = backoff;
  out.initialDelayMs = duration('initialDelayMs', 0) ?? 1000;
  const maxDelay = duration('maxDelayMs', 0);
  if (maxDelay !== undefined) out.maxDelayMs = maxDelay;
  else if (longestDelay(out) > MAX_DURATION_MS) out.maxDelayMs = MAX_DURATION_MS; // growth stops at the maximum
  const timeout = duration('timeoutMs', 1);
  if (timeout !== undefined) out.timeoutMs = timeout;
  if (policy.jitter !== undefined && typeof policy.jitter !== 'boolean') {
    throw new InvalidArgumentError(`retryPolicy.jitter must be a boolean, got ${describe(policy.jitter)}`);
  }
  out.jitter = policy.jitter === true;
  return out;
}

/** The longest delay a policy without `maxDelayMs` reaches (as the engine computes it). */
function longestDelay({ maxAttempts, backoff, initialDelayMs }) {
  const retries = maxAttempts - 1; // retry n waits before attempt n + 1
  if (retries < 1) return 0;
  if (backoff === 'fixed') return initialDelayMs;
  if (backoff === 'linear') return initialDelayMs * retries;
  return initialDelayMs * 2 ** Math.min(retries - 1, 40);
}

function checkTasks(tasks, what) {
  for (const [i, t] of tasks.entries()) {
    if (!(t instanceof Task) || t.kind === 'utcNow' || t.kind === 'newGuid' || t.kind === 'continueAsNew') {
      throw new InvalidArgumentError(`${what}[${i}] must be a task (activity, timer, event, sub-orchestration, all or race), got ${describe(t)}`);
    }
  }
}

/** The version asked for in start options (`{version}`), or null for the latest. */
function startVersion(options) {
  checkOptionsObject(options, ['version']);
  if (options === undefined || options.version === undefined || options.version === null) return null;
  checkVersion(options.version, 'options.version');
  return options.version;
}

/**
 * Names an activity function once, so registration (`runtime.registerActivity(def)`) and calls
 * (`yield* ctx.activity(def, input)`) cannot disagree on the name, and TypeScript carries the
 * input and result types from the definition to every call.
 */
function defineActivity(name, fn) {
  checkName(name, 'defineActivity(name, fn): name');
  if (typeof fn !== 'function') {
    throw new InvalidArgumentError(`defineActivity(name, fn): fn of activity '${name}' must be a function, got ${describe(fn)}`);
  }
  return Object.freeze({ name, fn });
}

function definitionName(definition, call) {
  if (!definition || typeof definition !== 'object') {
    const hint = typeof definition === 'string' ? ` (to run an activity by name, use ctx.scheduleActivity(${JSON.stringify(definition)}, input))` : '';
    throw new InvalidArgumentError(`${call}: definition must come from defineActivity(name, fn), got ${describe(definition)}${hint}`);
  }
  checkName(definition.name, `${call}: definition.name`);
  return definition.name;
}

/** What an orchestration function receives: deterministic scheduling and a few facts. */
class OrchestrationContext {
  constructor(state) {
    Object.defineProperty(this, '_state', { value: state, enumerable: false });
    this.instanceId = state.instanceId;
    this.executionId = state.executionId;
    this.orchestrationName = state.name;
    this.orchestrationVersion = state.version;
    /** True while the code re-runs steps history already holds. */
    this.isReplaying = false;
  }

  scheduleActivity(name, input) {
    checkName(name, 'activity name');
    return new Task('activity', { name, input });
  }

  scheduleActivityWithRetry(name, input, retryPolicy) {
    checkName(name, 'activity name');
    return new Task('activity', { name, input, retry: checkRetryPolicy(retryPolicy) });
  }

  /** Runs the activity `definition` (from `defineActivity`); `yield*` it for a typed result. */
  activity(definition, input) {
    return this.scheduleActivity(definitionName(definition, 'ctx.activity(definition, input)'), input);
  }

  activityWithRetry(definition, input, retryPolicy) {
    const name = definitionName(definition, 'ctx.activityWithRetry(definition, input, retryPolicy)');
    return this.scheduleActivityWithRetry(name, input, retryPolicy);
  }

  scheduleTimer(delayMs) {
    checkDuration(delayMs, 'timer delay', { integer: false });
    return new Task('timer', { delayMs });
  }

  waitForEvent(eventName) {
    checkName(eventName, 'event name');
    return new Task('wait', { name: eventName });
  }

  scheduleSubOrchestration(name, input, options) {
    checkName(name, 'orchestration name');
    return new Task('child', { name, input, id: null, version: startVersion(options) });
  }

  scheduleSubOrchestrationWithId(name, instanceId, input, options) {
    checkName(name, 'orchestration name');
    checkInstanceId(instanceId, 'sub-orchestration instanceId');
    return new Task('child', { name, input, id: instanceId, version: startVersion(options) });
  }

  /** Starts another orchestration without waiting for it (fire-and-forget). */
  startOrchestration(name, instanceId, input, options) {
    checkName(name, 'orchestration name');
    checkInstanceId(instanceId);
    return new Task('detached', { name, input, id: instanceId, version: startVersion(options) });
  }

  // duroxide-node's versioned forms: the version as an argument instead of `{ version }`.

  scheduleSubOrchestrationVersioned(name, version, input) {
    checkVersion(version, 'version');
    return this.scheduleSubOrchestration(name, input, { version });
  }

  scheduleSubOrchestrationVersionedWithId(name, version, instanceId, input) {
    checkVersion(version, 'version');
    return this.scheduleSubOrchestrationWithId(name, instanceId, input, { version });
  }

  startOrchestrationVersioned(name, version, instanceId, input) {
    checkVersion(version, 'version');
    return this.startOrchestration(name, instanceId, input, { version });
  }

  /** Waits for every task; resolves to `[{ok: value} | {err: message}]` in order, never throws. */
  all(tasks) {
    if (!Array.isArray(tasks)) throw new InvalidArgumentError(`all() takes an array of tasks, got ${describe(tasks)}`);
    checkTasks(tasks, 'all()');
    return new Task('all', { tasks: [...tasks] });
  }

  /** Resolves to `{index, value}` of the first task to finish; the others are cancelled. */
  race(...tasks) {
    if (tasks.length === 1 && Array.isArray(tasks[0])) tasks = tasks[0];
    if (tasks.length === 0) throw new InvalidArgumentError('race() needs at least one task');
    checkTasks(tasks, 'race()');
    return new Task('race', { tasks: [...tasks] });
  }

  /** The turn's timestamp (epoch ms): the same on every replay. */
  utcNow() {
    return new Task('utcNow', {});
  }

  /** A deterministic UUID (v5 of instance, execution and a counter). */
  newGuid() {
    return new Task('newGuid', {});
  }

  /** Ends this execution and starts a fresh one with `input` (latest registered version). */
  continueAsNew(input) {
    return new Task('continueAsNew', { input, version: null });
  }

  continueAsNewVersioned(input, version) {
    checkVersion(version, 'version');
    return new Task('continueAsNew', { input, version });
  }

  /** Sets a JSON value the client sees as `customStatus` (no yield needed). */
  setCustomStatus(value) {
    const st = this._state;
    const json = toJson(value, 'custom status');
    st.commands.push(`{"t":"status","value":${json}}`);
    st.customStatus = value === undefined ? null : JSON.parse(json);
  }

  /** Clears the custom status: the client sees `null` again. */
  resetCustomStatus() {
    this.setCustomStatus(null);
  }

  getCustomStatus() {
    return this._state.customStatus;
  }

  _trace(level, message) {
    if (this.isReplaying) return;
    native.trace(level, 'orchestration', this.instanceId, this.executionId, this.orchestrationName, String(message));
  }
}

/** What an activity function receives. */
class ActivityContext {
  constructor(item, signal) {
    this.instanceId = item.instanceId;
    this.executionId = item.executionId;
    this.activityName = item.name;
    this.attempt = item.attempt;
    /** Fires when the orchestration stops waiting (race lost, cancelled), on timeout, when the lease is lost, or at shutdown. */
    this.signal = signal;
  }
  _trace(level, message) {
    native.trace(level, 'activity', this.instanceId, this.executionId, this.activityName, String(message));
  }
}

// traceInfo/Warn/Error/Debug on both contexts: each forwards to its own `_trace`.
for (const Context of [OrchestrationContext, ActivityContext]) {
  for (const level of ['info', 'warn', 'error', 'debug']) {
    const method = `trace${level[0].toUpperCase()}${level.slice(1)}`;
    Object.defineProperty(Context.prototype, method, {
      value(message) {
        this._trace(level, message);
      },
      writable: true,
      configurable: true,
    });
  }
}

module.exports = { OrchestrationContext, ActivityContext, defineActivity, uuidV5, checkRetryPolicy };
