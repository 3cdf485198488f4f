'use strict';

const { InvalidArgumentError } = require('./errors');
const { checkInstanceId, describe } = require('./json');

/** Every lifecycle event type `client.watch()` and `runtime.events()` report. */
const LIFECYCLE_TYPES = [
  'instanceStarted',
  'instanceCompleted',
  'instanceFailed',
  'instanceContinuedAsNew',
  'instanceRetried',
  'cancelRequested',
  'activityScheduled',
  'activityStarted',
  'activityCompleted',
  'activityFailed',
  'activityRetried',
  'timerCreated',
  'timerFired',
  'eventWaitStarted',
  'eventReceived',
  'subOrchestrationScheduled',
  'subOrchestrationCompleted',
  'subOrchestrationFailed',
  'detachedOrchestrationStarted',
  'taskCanceled',
  'customStatusChanged',
];

const ABORTED = Symbol('aborted');

function checkSignal(signal, field) {
  if (signal === undefined || signal === null) return undefined;
  if (typeof signal !== 'object' || typeof signal.aborted !== 'boolean' || typeof signal.addEventListener !== 'function') {
    throw new InvalidArgumentError(`${field} must be an AbortSignal, got ${describe(signal)}`);
  }
  return signal;
}

/** A Set of the types asked for, or `null` for all of them. */
function checkTypes(types, field) {
  if (types === undefined || types === null) return null;
  if (!Array.isArray(types) || types.length === 0) {
    throw new InvalidArgumentError(`${field} must be a non-empty array of event types, got ${describe(types)}`);
  }
  types.forEach((t, i) => {
    if (!LIFECYCLE_TYPES.includes(t)) {
      throw new InvalidArgumentError(`${field}[${i}] is not an event type: ${describe(t)} (known: ${LIFECYCLE_TYPES.join(', ')})`);
    }
  });
  return new Set(types);
}

/** Resolves like `promise`, or to ABORTED as soon as `signal` aborts. */
function unlessAborted(promise, signal) {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.resolve(ABORTED);
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => {});
      resolve(ABORTED);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * One `runtime.events()` listener: a bounded queue read by `for await`. When the reader
 * falls `bufferSize` events behind, the oldest are dropped and an `eventsDropped` event
 * with their `count` comes first.
 */
class EventSubscription {
  constructor({ signal, instanceId, types, bufferSize }, onClose) {
    this._signal = signal;
    this._instanceId = instanceId;
    this._types = types;
    this._bufferSize = bufferSize;
    this._queue = [];
    this._dropped = 0;
    this._waiter = null;
    this._closed = false;
    this._onClose = onClose;
    if (signal) {
      this._onAbort = () => this.close();
      if (signal.aborted) this.close();
      else signal.addEventListener('abort', this._onAbort, { once: true });
    }
  }

  push(event) {
    if (this._closed) return;
    if (this._instanceId !== undefined && event.instanceId !== this._instanceId) return;
    if (this._types && !this._types.has(event.type)) return;
    this._queue.push(event);
    if (this._queue.length > this._bufferSize) {
      this._queue.shift();
      this._dropped += 1;
    }
    this._wake();
  }

  /** Ends the subscription; with `drain`, events already queued are still read first. */
  close(drain = false) {
    if (this._closed) return;
    this._closed = true;
    this._drain = drain;
    if (this._signal && this._onAbort) this._signal.removeEventListener('abort', this._onAbort);
    this._onClose(this);
    this._wake();
  }

  _wake() {
    const waiter = this._waiter;
    this._waiter = null;
    if (waiter) waiter();
  }

  async next() {
    for (;;) {
      if (this._closed && !(this._drain && this._queue.length > 0)) {
        this._queue.length = 0;
        return { done: true, value: undefined };
      }
      if (this._dropped > 0) {
        const count = this._dropped;
        this._dropped = 0;
        return { done: false, value: { type: 'eventsDropped', count, timestamp: Date.now() } };
      }
      if (this._queue.length > 0) return { done: false, value: this._queue.shift() };
      await new Promise((resolve) => {
        this._waiter = resolve;
      });
    }
  }

  async return() {
    this._drain = false;
    this.close();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

function checkEventOptions(options, known) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError(`options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new InvalidArgumentError(`options.${key} is not an option (expected ${known.join(', ')})`);
  }
  const out = {
    signal: checkSignal(options.signal, 'options.signal'),
    types: checkTypes(options.types, 'options.types'),
  };
  if (options.instanceId !== undefined && options.instanceId !== null) {
    checkInstanceId(options.instanceId, 'options.instanceId');
    out.instanceId = options.instanceId;
  }
  return out;
}

module.exports = { LIFECYCLE_TYPES, ABORTED, EventSubscription, checkEventOptions, unlessAborted };
