'use strict';

const os = require('node:os');
const native = require('./native');
const { Driver, errorFields } = require('./driver');
const { prometheusText, withAliases } = require('./metrics');
const { ActivityContext, BUILTIN_PREFIX, KV_READ_ACTIVITY } = require('./context');
const { Client } = require('./client');
const { checkTag } = require('./tasks');
const { InvalidArgumentError, InvalidStateError, nativeCall } = require('./errors');
const { checkName, checkOptionsObject, describe, toJson, MAX_DURATION_MS, MAX_DURATION_TEXT } = require('./json');
const { EventSubscription, checkEventOptions } = require('./events');
const { checkLogFormat, checkLogLevel } = require('./logging');

const DEFAULT_VERSION = '1.0.0';
const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

/**
 * Options accepted by `new Runtime(provider, options)`: name -> [minimum, maximum]. Durations
 * stop at MAX_DURATION_MS, so a time computed from them always fits the store; deliveries are
 * counted in a 32-bit signed column.
 */
const OPTIONS = {
  // 0: an activity-only worker (it never claims orchestrations).
  orchestrationConcurrency: [0, Number.MAX_SAFE_INTEGER],
  workerConcurrency: [1, Number.MAX_SAFE_INTEGER],
  generatorCacheSize: [0, Number.MAX_SAFE_INTEGER],
  lockTimeoutMs: [100, MAX_DURATION_MS],
  pollIntervalMs: [10, MAX_DURATION_MS],
  maxDeliveries: [1, 2 ** 31 - 1],
  notRegisteredGraceMs: [0, MAX_DURATION_MS],
  unservedGraceMs: [0, MAX_DURATION_MS],
  maxTurnMs: [100, MAX_DURATION_MS],
  activityTimeoutMs: [1, MAX_DURATION_MS],
  metricsIntervalMs: [100, MAX_DURATION_MS],
  heartbeatIntervalMs: [10, MAX_DURATION_MS],
  heartbeatTimeoutMs: [30, MAX_DURATION_MS],
};

/** duroxide-node's names for two options: same meaning, same limits. */
const ALIASES = {
  workerLockTimeoutMs: 'lockTimeoutMs',
  dispatcherPollIntervalMs: 'pollIntervalMs',
};

const MAX_WORKER_NODE_ID = 256;
/** Most tags in a `workerTagFilter` (duroxide-node's MAX_WORKER_TAGS). */
const MAX_WORKER_TAGS = 5;

/**
 * Session options: checked here, sent to the engine, and also kept on the runtime
 * (`_routing`, with the tag filter) for what it reports. name -> [minimum, maximum].
 */
const ROUTING_OPTIONS = {
  maxSessionsPerRuntime: [1, 2 ** 31 - 1],
  sessionIdleTimeoutMs: [1, MAX_DURATION_MS],
};

/** `workerTagFilter`: 'defaultOnly' | 'any' | 'none' | {tags: [...]} | {defaultAnd: [...]}. */
function checkTagFilter(filter) {
  if (filter === 'defaultOnly' || filter === 'any' || filter === 'none') return filter;
  const form = "'defaultOnly', 'any', 'none', {tags: [...]} or {defaultAnd: [...]}";
  if (!filter || typeof filter !== 'object' || Array.isArray(filter)) {
    throw new InvalidArgumentError(`options.workerTagFilter must be ${form}, got ${describe(filter)}`);
  }
  const keys = Object.keys(filter);
  if (keys.length !== 1 || (keys[0] !== 'tags' && keys[0] !== 'defaultAnd')) {
    throw new InvalidArgumentError(`options.workerTagFilter must be ${form}, got an object with ${keys.length ? keys.map((k) => `'${k}'`).join(', ') : 'no keys'}`);
  }
  const tags = filter[keys[0]];
  const field = `options.workerTagFilter.${keys[0]}`;
  if (!Array.isArray(tags)) throw new InvalidArgumentError(`${field} must be an array of tags, got ${describe(tags)}`);
  if (tags.length > MAX_WORKER_TAGS) {
    throw new InvalidArgumentError(`${field} has ${tags.length} tags; the limit is MAX_WORKER_TAGS (${MAX_WORKER_TAGS})`);
  }
  if (keys[0] === 'tags' && tags.length === 0) throw new InvalidArgumentError(`${field} needs at least one tag (use 'none' for no activities)`);
  tags.forEach((t, i) => checkTag(t, `${field}[${i}]`));
  return { [keys[0]]: [...tags] };
}

function checkServiceField(value, what) {
  checkName(value, what);
  return value;
}

/**
 * Options that are strings; each checked by its function, which returns the value to pass.
 * logFormat and logLevel apply when this runtime is the first thing to configure tracing.
 */
const STRING_OPTIONS = {
  logFormat: (value) => checkLogFormat(value, 'options.logFormat'),
  logLevel: (value) => checkLogLevel(value, 'options.logLevel'),
  serviceName: (value) => checkServiceField(value, 'options.serviceName'),
  serviceVersion: (value) => checkServiceField(value, 'options.serviceVersion'),
};

/** A checked `workerTagFilter` as the engine reads it: `{mode, tags?}`. */
function engineTagFilter(filter) {
  if (typeof filter === 'string') return { mode: filter };
  return 'tags' in filter ? { mode: 'tags', tags: filter.tags } : { mode: 'defaultAnd', tags: filter.defaultAnd };
}

/** The engine's options, and the routing ones kept in JavaScript: `[engine, routing]`. */
function checkOptions(options) {
  const out = { host: os.hostname() };
  const routing = { maxSessionsPerRuntime: 10, sessionIdleTimeoutMs: 300000, workerTagFilter: 'defaultOnly' };
  if (options === undefined || options === null) return [out, routing];
  checkOptionsObject(options, [...Object.keys(OPTIONS), ...Object.keys(ALIASES), ...Object.keys(ROUTING_OPTIONS), 'keepAlive', 'workerNodeId', 'workerTagFilter', ...Object.keys(STRING_OPTIONS)], 'options', 'Runtime');
  for (const [alias, name] of Object.entries(ALIASES)) {
    if (options[alias] !== undefined && options[name] !== undefined) {
      throw new InvalidArgumentError(`options.${alias} and options.${name} are two names of one option; pass one of them`);
    }
  }
  for (const [given, value] of Object.entries(options)) {
    const key = ALIASES[given] || given;
    if (key === 'keepAlive') {
      if (value !== undefined && typeof value !== 'boolean') throw new InvalidArgumentError(`options.keepAlive must be a boolean, got ${describe(value)}`);
      continue;
    }
    if (key === 'workerNodeId') {
      if (value === undefined) continue;
      checkName(value, 'options.workerNodeId');
      if (value.length > MAX_WORKER_NODE_ID) {
        throw new InvalidArgumentError(`options.workerNodeId is ${value.length} characters long; the limit is ${MAX_WORKER_NODE_ID}`);
      }
      out.workerNodeId = value;
      continue;
    }
    if (value === undefined) continue;
    if (key === 'workerTagFilter') {
      routing.workerTagFilter = checkTagFilter(value);
      continue;
    }
    if (STRING_OPTIONS[key]) {
      out[key] = STRING_OPTIONS[key](value);
      continue;
    }
    const [min, max] = OPTIONS[key] || ROUTING_OPTIONS[key];
    if (!Number.isSafeInteger(value) || value < min) {
      throw new InvalidArgumentError(`options.${given} must be an integer >= ${min}, got ${describe(value)}`);
    }
    if (value > max) {
      const limit = max === MAX_DURATION_MS ? MAX_DURATION_TEXT : max;
      throw new InvalidArgumentError(`options.${given} must be at most ${limit}, got ${describe(value)}`);
    }
    if (ROUTING_OPTIONS[key]) routing[key] = value;
    out[key] = value;
  }
  const interval = out.heartbeatIntervalMs ?? 1000;
  const timeout = out.heartbeatTimeoutMs ?? 3000;
  if (timeout < 2 * interval) {
    throw new InvalidArgumentError(`options.heartbeatTimeoutMs (${timeout}) must be at least twice options.heartbeatIntervalMs (${interval}): one late heartbeat must not make a runtime dead`);
  }
  return [out, routing];
}

// SIGINT/SIGTERM handling, shared by every runtime of the process: installed by the first
// start(), removed when the last started runtime has stopped, so a script can still exit.
const SIGNALS = ['SIGINT', 'SIGTERM'];
const SIGNAL_SHUTDOWN_MS = 10000;
// Marks our handlers, so a second copy of this module does not count as "another listener".
const OURS = Symbol.for('reprise.signalHandler');
const started = new Set();
let handlers = null;
let exitCode = null; // set once a signal began the shutdown

function onSignal(signal) {
  // A listener of the application's own owns the signal: it decides what happens.
  if (process.listeners(signal).some((l) => !l[OURS])) return;
  const code = 128 + os.constants.signals[signal];
  if (exitCode !== null) process.exit(exitCode); // a second signal: do not wait any more
  exitCode = code;
  const stopping = [...started].map((runtime) => runtime._stopping || runtime.shutdown(SIGNAL_SHUTDOWN_MS));
  Promise.allSettled(stopping).then(() => process.exit(code));
}

function track(runtime) {
  started.add(runtime);
  if (handlers) return;
  handlers = {};
  for (const signal of SIGNALS) {
    const handler = () => onSignal(signal);
    handler[OURS] = true;
    handlers[signal] = handler;
    process.on(signal, handler);
  }
}

function untrack(runtime) {
  started.delete(runtime);
  if (started.size > 0 || !handlers) return;
  for (const signal of SIGNALS) process.removeListener(signal, handlers[signal]);
  handlers = null;
}

function isGeneratorFunction(fn) {
  return typeof fn === 'function' && fn.constructor && fn.constructor.name === 'GeneratorFunction';
}

function checkOrchestrationFn(name, fn) {
  if (typeof fn !== 'function') throw new InvalidArgumentError(`orchestration '${name}' must be a generator function (function*), got ${describe(fn)}`);
  const kind = fn.constructor && fn.constructor.name;
  if (kind === 'AsyncFunction' || kind === 'AsyncGeneratorFunction') {
    throw new InvalidArgumentError(
      `orchestration '${name}' is an async function; orchestrations must be generator functions (function*) that yield ctx tasks, so they can be replayed deterministically`,
    );
  }
  if (!isGeneratorFunction(fn)) {
    throw new InvalidArgumentError(`orchestration '${name}' must be a generator function (function*), got a plain function`);
  }
}

/** Runs orchestrations and activities from a provider. One per Node environment. */
class Runtime {
  constructor(provider, options) {
    if (!provider || !provider._native) {
      throw new InvalidArgumentError('new Runtime(provider): provider must come from SqliteProvider.open(), SqliteProvider.inMemory() or PostgresProvider.connect()');
    }
    const [checked, routing] = checkOptions(options);
    this._keepAlive = !(options && options.keepAlive === false);
    this._native = new native.NativeRuntime(provider._native, JSON.stringify(checked));
    this._provider = provider;
    this._routing = routing;
    this._orchestrations = new Map(); // name -> Map(version -> fn)
    // The built-in activity behind ctx.getValueFromInstance.
    this._activities = new Map([[KV_READ_ACTIVITY, (ctx, { instanceId, key }) => ctx.getClient().getValue(instanceId, key)]]);
    this._running = new Map(); // activity id -> AbortController
    // On every trace line of this runtime's orchestrations and activities.
    this._service = { name: checked.serviceName, version: checked.serviceVersion };
    // What an ActivityContext reports and reaches: this runtime, a client on its store.
    this._host = {
      workerId: null,
      service: this._service,
      client: () => {
        if (!this._client) this._client = new Client(this._provider);
        return this._client;
      },
    };
    this._subscriptions = new Set();
    this._state = 'new';
    this._driver = new Driver((name, version) => {
      const versions = this._orchestrations.get(name);
      return versions && versions.get(version);
    }, this._service);
  }

  _checkRegistrationOpen(what) {
    if (this._state !== 'new') throw new InvalidStateError(`cannot register ${what} after the runtime has started`);
  }

  /** `registerActivity(name, fn)`, or `registerActivity(definition)` with one from `defineActivity`. */
  registerActivity(name, fn) {
    if (name !== null && typeof name === 'object') {
      const definition = name;
      if (fn !== undefined) {
        throw new InvalidArgumentError('registerActivity(definition) takes no second argument: the definition already holds the function');
      }
      checkName(definition.name, 'registerActivity(definition): definition.name');
      if (typeof definition.fn !== 'function') {
        throw new InvalidArgumentError(`registerActivity(definition): definition.fn of activity '${definition.name}' must be a function, got ${describe(definition.fn)}`);
      }
      name = definition.name;
      fn = definition.fn;
    }
    checkName(name, 'activity name');
    if (name.startsWith(BUILTIN_PREFIX)) {
      throw new InvalidArgumentError(`activity name '${name}' is reserved: names starting with '${BUILTIN_PREFIX}' belong to reprise's built-in activities`);
    }
    if (typeof fn !== 'function') throw new InvalidArgumentError(`activity '${name}' must be a function, got ${describe(fn)}`);
    this._checkRegistrationOpen(`activity '${name}'`);
    this._activities.set(name, fn);
    return this;
  }

  registerOrchestration(name, fn) {
    return this.registerOrchestrationVersioned(name, DEFAULT_VERSION, fn);
  }

  registerOrchestrationVersioned(name, version, fn) {
    checkName(name, 'orchestration name');
    if (typeof version !== 'string' || !SEMVER.test(version)) {
      throw new InvalidArgumentError(`version of orchestration '${name}' must be a semantic version like '1.2.0', got ${describe(version)}`);
    }
    checkOrchestrationFn(name, fn);
    this._checkRegistrationOpen(`orchestration '${name}'`);
    if (!this._orchestrations.has(name)) this._orchestrations.set(name, new Map());
    this._orchestrations.get(name).set(version, fn);
    return this;
  }

  // duroxide-node's typed registrations: values already cross as JSON here, so they are
  // the untyped ones.

  registerActivityTyped(name, fn) {
    return this.registerActivity(name, fn);
  }

  registerOrchestrationTyped(name, fn) {
    return this.registerOrchestration(name, fn);
  }

  registerOrchestrationVersionedTyped(name, version, fn) {
    return this.registerOrchestrationVersioned(name, version, fn);
  }

  async start() {
    if (this._state !== 'new') throw new InvalidStateError(`the runtime is already ${this._state}`);
    this._state = 'starting';
    const registry = {
      orchestrations: Object.fromEntries([...this._orchestrations].map(([n, v]) => [n, [...v.keys()]])),
      activities: [...this._activities.keys()],
      tags: engineTagFilter(this._routing.workerTagFilter),
    };
    this._native.setDriver((message) => this._onMessage(message));
    this._starting = nativeCall(this._native.start(JSON.stringify(registry)));
    try {
      await this._starting;
    } catch (error) {
      this._state = 'new';
      throw error;
    } finally {
      this._starting = null;
    }
    this._state = 'started';
    this._host.workerId = this._native.runtimeId();
    this._native.setEvents(this._subscriptions.size > 0);
    // Like a listening server: the process stays up until shutdown() unless unref()'d.
    this._timer = setInterval(() => {}, 1 << 30);
    if (!this._keepAlive) this._timer.unref();
    track(this);
  }

  /** Lets the process exit while this runtime runs (a script, not a worker). */
  unref() {
    this._keepAlive = false;
    if (this._timer) this._timer.unref();
    return this;
  }

  /** Undoes unref(): the runtime keeps the process alive while it runs (the default). */
  ref() {
    this._keepAlive = true;
    if (this._timer) this._timer.ref();
    return this;
  }

  /** Stops taking work; resolves when in-flight work drained or, at the deadline, was abandoned. */
  async shutdown(timeoutMs = 30000) {
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
      throw new InvalidArgumentError(`shutdown timeoutMs must be a number >= 0, got ${describe(timeoutMs)}`);
    }
    // A second call while the first runs resolves when the first has finished.
    if (this._stopping) return this._stopping;
    if (this._state !== 'started' && this._state !== 'starting') return;
    this._stopping = this._stop(timeoutMs);
    return this._stopping;
  }

  async _stop(timeoutMs) {
    if (this._state === 'starting') {
      // Shutdown during start: let the start settle, then stop what it started. start()
      // awaited the same promise first, so its state is set when this resumes.
      await this._starting.catch(() => {});
      if (this._state !== 'started') {
        this._stopping = null;
        return;
      }
    }
    this._state = 'stopping';
    try {
      await nativeCall(this._native.shutdown(timeoutMs));
    } finally {
      // Even a failed shutdown must not hold the process open.
      clearInterval(this._timer);
      untrack(this);
    }
    this._state = 'stopped';
    // Listeners still read what was emitted before the shutdown, then end.
    for (const subscription of [...this._subscriptions]) subscription.close(true);
  }

  /**
   * Lifecycle events of the work this runtime does, as an async iterator: every history
   * event its turns commit (instance started/completed/failed/continued-as-new/retried,
   * activity scheduled/completed/failed, timers, events, custom status...) and each
   * activity attempt it starts or schedules for retry. Listening begins at this call; it
   * ends when `signal` aborts, the loop breaks, or the runtime shuts down. `instanceId`
   * and `types` narrow it. A reader more than `bufferSize` (default 10000) events behind
   * loses the oldest and is told by an `eventsDropped` event.
   */
  events(options = {}) {
    const checked = checkEventOptions(options, ['signal', 'instanceId', 'types', 'bufferSize']);
    const { bufferSize = 10000 } = options;
    if (!Number.isSafeInteger(bufferSize) || bufferSize < 1) {
      throw new InvalidArgumentError(`options.bufferSize must be an integer >= 1, got ${describe(bufferSize)}`);
    }
    if (this._state === 'stopped') throw new InvalidStateError('the runtime has stopped');
    const subscription = new EventSubscription({ ...checked, bufferSize }, (s) => {
      this._subscriptions.delete(s);
      if (this._subscriptions.size > 0) return;
      if (this._state === 'started') this._native.setEvents(false);
      clearInterval(this._listening);
    });
    if (subscription._closed) return subscription;
    this._subscriptions.add(subscription);
    if (this._subscriptions.size === 1) {
      if (this._state === 'started') this._native.setEvents(true);
      // A listener keeps the process alive until it ends, even when the runtime is unref()'d.
      this._listening = setInterval(() => {}, 1 << 30);
    }
    return subscription;
  }

  /** Counters and gauges: driver calls, jobs sent, turns, activities, lease losses, ... */
  metricsSnapshot() {
    return withAliases(JSON.parse(this._native.metricsSnapshot()));
  }

  /** The snapshot as Prometheus text (`prometheusText` options: `{prefix, labels}`). */
  metricsPrometheus(options) {
    return prometheusText(this.metricsSnapshot(), options);
  }

  // Everything from Rust arrives here. Nothing may throw out of this callback.
  _onMessage(text) {
    try {
      const message = JSON.parse(text);
      switch (message.kind) {
        case 'turns':
          this._driver.handleTurns(message, (token, reply) => this._native.completeTurn(token, reply));
          break;
        case 'activities':
          for (const item of message.items) this._runActivity(item);
          break;
        case 'events':
          for (const event of message.events) {
            for (const subscription of this._subscriptions) subscription.push(event);
          }
          break;
        case 'abort':
          for (const id of message.ids) {
            const controller = this._running.get(id);
            if (controller) controller.abort(new Error(message.reason));
          }
          break;
        default:
          break;
      }
    } catch (error) {
      process.emitWarning(`reprise: driver message failed: ${error && error.stack}`);
    }
  }

  _runActivity(item) {
    const controller = new AbortController();
    this._running.set(item.id, controller);
    const fn = this._activities.get(item.name);
    const ctx = new ActivityContext(item, controller.signal, this._host);
    let settled = false;
    const settle = (text) => {
      if (settled) return;
      settled = true;
      this._running.delete(item.id);
      this._native.completeActivity(item.id, text);
    };
    const onError = (error) => settle(`{"err":${JSON.stringify(errorFields(error))}}`);
    const onValue = (value) => {
      let json;
      try {
        json = toJson(value, `the result of activity '${item.name}'`);
      } catch (error) {
        onError(error);
        return;
      }
      settle(`{"ok":${json}}`);
    };
    try {
      Promise.resolve(fn(ctx, item.input)).then(onValue, onError);
    } catch (error) {
      onError(error);
    }
  }
}

module.exports = { Runtime, DEFAULT_VERSION, MAX_WORKER_TAGS };
