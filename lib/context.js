'use strict';

const crypto = require('node:crypto');
const native = require('./native');
const { Task } = require('./tasks');
const { InvalidArgumentError } = require('./errors');
const { checkExact, checkName, checkInstanceId, checkDuration, checkOptionsObject, checkKnownKeys, checkVersion, describe, toJson, MAX_DURATION_MS } = require('./json');

const { QUEUE_PREFIX } = require('./history');

/** Prefix of the built-in activities' names; reserved (user registrations are refused). */
const BUILTIN_PREFIX = 'reprise.';
/** The built-in activity behind `ctx.getValueFromInstance` (every runtime registers it). */
const KV_READ_ACTIVITY = `${BUILTIN_PREFIX}getValueFromInstance`;
/** Per-instance key-value limits (duroxide-node's MAX_KV_KEYS and MAX_KV_VALUE_BYTES). */
const MAX_KV_KEYS = 150;
const MAX_KV_VALUE_BYTES = 65536;
/** Longest key-value key, in characters. */
const MAX_KV_KEY_CHARS = 1024;

function checkKvKey(key) {
  checkName(key, 'key-value key');
  if (key.length > MAX_KV_KEY_CHARS) {
    throw new InvalidArgumentError(`key-value key is ${key.length} characters long; the limit is ${MAX_KV_KEY_CHARS}`);
  }
}

function checkSessionId(sessionId) {
  checkName(sessionId, 'sessionId');
  if (sessionId.length > 256) throw new InvalidArgumentError(`sessionId is ${sessionId.length} characters long; the limit is 256`);
  return sessionId;
}

/** The session id of `scheduleActivity`'s options (`{sessionId}`), or undefined. */
function sessionOption(options) {
  if (options === undefined || options === null) return undefined;
  checkOptionsObject(options, ['sessionId']);
  return options.sessionId === undefined || options.sessionId === null ? undefined : checkSessionId(options.sessionId);
}

/** Marks `task` as a typed variant's: a string result holding JSON is parsed once more. */
function typed(task) {
  task.typed = true;
  return task;
}

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

const RETRY_POLICY_KEYS = ['maxAttempts', 'backoff', 'initialDelayMs', 'maxDelayMs', 'timeoutMs', 'totalTimeoutMs', 'jitter'];

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
  const total = duration('totalTimeoutMs', 1);
  if (total !== undefined) out.totalTimeoutMs = total;
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

  /** Runs an activity; `options.sessionId` pins it (and the session's others) to one worker. */
  scheduleActivity(name, input, options) {
    checkName(name, 'activity name');
    return new Task('activity', { name, input, session: sessionOption(options) });
  }

  scheduleActivityWithRetry(name, input, retryPolicy, options) {
    checkName(name, 'activity name');
    return new Task('activity', { name, input, retry: checkRetryPolicy(retryPolicy), session: sessionOption(options) });
  }

  scheduleActivityOnSession(name, input, sessionId) {
    return this.scheduleActivity(name, input, { sessionId: checkSessionId(sessionId) });
  }

  scheduleActivityWithRetryOnSession(name, input, retryPolicy, sessionId) {
    return this.scheduleActivityWithRetry(name, input, retryPolicy, { sessionId: checkSessionId(sessionId) });
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

  /** The next message of the instance's FIFO queue `queueName` (see `client.enqueueEvent`). */
  dequeueEvent(queueName) {
    checkName(queueName, 'queue name');
    return new Task('wait', { name: QUEUE_PREFIX + queueName });
  }

  /**
   * Another instance's key-value value (`string | null`), read durably: recorded in history
   * (as a built-in activity), so a replay sees the same value.
   */
  getValueFromInstance(instanceId, key) {
    checkInstanceId(instanceId);
    checkKvKey(key);
    return new Task('activity', { name: KV_READ_ACTIVITY, input: { instanceId, key } });
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

  // Per-instance key-value store: string values, written with the turn (so replay sees the
  // same), readable by clients once the turn commits, carried across continue-as-new.

  setValue(key, value) {
    checkKvKey(key);
    const text = String(value);
    checkExact(text, `key-value value of '${key}'`);
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > MAX_KV_VALUE_BYTES) {
      throw new InvalidArgumentError(`key-value value of '${key}' is ${bytes} bytes; the limit is MAX_KV_VALUE_BYTES (${MAX_KV_VALUE_BYTES})`);
    }
    const st = this._state;
    if (!st.kv.has(key) && st.kv.size >= MAX_KV_KEYS) {
      throw new InvalidArgumentError(`cannot set key-value key '${key}': the instance already has MAX_KV_KEYS (${MAX_KV_KEYS}) keys`);
    }
    st.commands.push(`{"t":"kvSet","key":${JSON.stringify(key)},"text":${JSON.stringify(text)}}`);
    st.kv.set(key, { value: text, updatedAt: st.now });
  }

  getValue(key) {
    checkKvKey(key);
    const entry = this._state.kv.get(key);
    return entry === undefined ? null : entry.value;
  }

  clearValue(key) {
    checkKvKey(key);
    const st = this._state;
    st.commands.push(`{"t":"kvClear","key":${JSON.stringify(key)}}`);
    st.kv.delete(key);
  }

  clearAllValues() {
    const st = this._state;
    st.commands.push('{"t":"kvClearAll"}');
    st.kv.clear();
  }

  getKvAllValues() {
    const out = {};
    for (const [key, entry] of this._state.kv) out[key] = entry.value;
    return out;
  }

  getKvAllKeys() {
    return [...this._state.kv.keys()];
  }

  getKvLength() {
    return this._state.kv.size;
  }

  /** Removes the keys last set before `cutoffMs` (epoch ms); returns how many. */
  pruneKvValuesUpdatedBefore(cutoffMs) {
    if (typeof cutoffMs !== 'number' || !Number.isFinite(cutoffMs)) {
      throw new InvalidArgumentError(`cutoffMs must be epoch milliseconds, got ${describe(cutoffMs)}`);
    }
    let removed = 0;
    for (const [key, entry] of [...this._state.kv]) {
      if (entry.updatedAt < cutoffMs) {
        this.clearValue(key);
        removed++;
      }
    }
    return removed;
  }

  _trace(level, message) {
    if (this.isReplaying) return;
    const service = this._state.service || {};
    native.trace(level, 'orchestration', this.instanceId, this.executionId, this.orchestrationName, String(message), service.name, service.version);
  }
}

/** What an activity function receives. */
class ActivityContext {
  /** `host`: `{workerId, client(), service}` of the runtime running the activity. */
  constructor(item, signal, host = {}) {
    Object.defineProperty(this, '_host', { value: host, enumerable: false });
    Object.defineProperty(this, '_service', { value: host.service || {}, enumerable: false });
    Object.defineProperty(this, '_tag', { value: item.tag ?? null, enumerable: false });
    // The runtime's id of this running attempt (what a job attempt's fenced writes name).
    Object.defineProperty(this, '_id', { value: item.id, enumerable: false });
    this.instanceId = item.instanceId;
    this.executionId = item.executionId;
    this.orchestrationName = item.orchestrationName ?? null;
    this.orchestrationVersion = item.orchestrationVersion ?? null;
    this.activityName = item.name;
    this.attempt = item.attempt;
    /** The runtime running it (its id in the registry of runtimes). */
    this.workerId = host ? host.workerId : null;
    /** The session it runs on, or null. */
    this.sessionId = item.sessionId ?? null;
    /** Fires when the orchestration stops waiting (race lost, cancelled), on timeout, when the lease is lost, or at shutdown. */
    this.signal = signal;
  }

  /** The tag that routed it here, or null. */
  tag() {
    return this._tag;
  }

  /** True once the activity is cancelled (the same moment `signal` fires). */
  isCancelled() {
    return this.signal.aborted;
  }

  /** A Client on the runtime's store: start, wait for, query or prune orchestrations. */
  getClient() {
    return this._host.client();
  }

  _trace(level, message) {
    native.trace(level, 'activity', this.instanceId, this.executionId, this.activityName, String(message), this._service.name, this._service.version);
  }
}

// duroxide-node's typed variants: the same tasks, whose results are parsed once more when
// they are a string of JSON (a value a client sent already stringified).
for (const [typedName, base] of [
  ['scheduleActivityTyped', 'scheduleActivity'],
  ['scheduleActivityOnSessionTyped', 'scheduleActivityOnSession'],
  ['scheduleActivityWithRetryTyped', 'scheduleActivityWithRetry'],
  ['scheduleActivityWithRetryOnSessionTyped', 'scheduleActivityWithRetryOnSession'],
  ['scheduleSubOrchestrationTyped', 'scheduleSubOrchestration'],
  ['scheduleSubOrchestrationWithIdTyped', 'scheduleSubOrchestrationWithId'],
  ['scheduleSubOrchestrationVersionedTyped', 'scheduleSubOrchestrationVersioned'],
  ['scheduleSubOrchestrationVersionedWithIdTyped', 'scheduleSubOrchestrationVersionedWithId'],
  ['waitForEventTyped', 'waitForEvent'],
  ['dequeueEventTyped', 'dequeueEvent'],
  ['allTyped', 'all'],
  ['raceTyped', 'race'],
  ['startOrchestrationTyped', 'startOrchestration'],
  ['startOrchestrationVersionedTyped', 'startOrchestrationVersioned'],
  ['continueAsNewTyped', 'continueAsNew'],
  ['continueAsNewVersionedTyped', 'continueAsNewVersioned'],
]) {
  Object.defineProperty(OrchestrationContext.prototype, typedName, {
    value(...args) {
      return typed(this[base](...args));
    },
    writable: true,
    configurable: true,
  });
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

module.exports = { OrchestrationContext, ActivityContext, defineActivity, uuidV5, checkRetryPolicy, BUILTIN_PREFIX, KV_READ_ACTIVITY, MAX_KV_KEYS, MAX_KV_VALUE_BYTES };
