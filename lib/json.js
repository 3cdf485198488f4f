'use strict';

const { InvalidArgumentError } = require('./errors');
const { Task, UNYIELDED } = require('./tasks');

/** Largest payload (JSON text) accepted: inputs, outputs, events, custom status. */
const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

/**
 * Longest timer delay, retry delay or timeout accepted, in ms: 100 years of 365.25 days.
 * Added to any epoch-ms time it stays far inside a signed 64-bit integer (and inside the
 * exact integers of a double), so every due time it gives is representable in the store.
 */
const MAX_DURATION_MS = 100 * 365.25 * 24 * 60 * 60 * 1000;
const MAX_DURATION_TEXT = `${MAX_DURATION_MS} ms (100 years)`;

/** Epoch ms a `Date` can hold: ±8.64e15. */
const MAX_EPOCH_MS = 8.64e15;

/** What a task is, for messages: `activity 'Charge'`, `timer`, `ctx.all`... */
function taskLabel(task) {
  const a = task.args || {};
  switch (task.kind) {
    case 'activity':
      return `activity '${a.name}'`;
    case 'timer':
      return 'timer';
    case 'wait':
      return `waitForEvent '${a.name}'`;
    case 'child':
      return `sub-orchestration '${a.name}'`;
    case 'detached':
      return `startOrchestration '${a.name}'`;
    default:
      return `ctx.${task.kind}`;
  }
}

function isTask(value) {
  try {
    return value instanceof Task;
  } catch {
    return false; // a Proxy whose getPrototypeOf trap throws
  }
}

/** What of `value` JSON would silently turn into something else, as a message part; or null. */
function notData(value) {
  if (value === null || typeof value !== 'object') return null;
  if (isTask(value)) return `a task (${taskLabel(value)}) that was never yielded: yield it to get its result (did you forget \`yield\`?)`;
  if (typeof value.then === 'function') {
    return 'a Promise, which cannot be stored (await it first; in an orchestration, do async work in an activity: a Promise cannot be replayed)';
  }
  if (value instanceof Map) return 'a Map, which JSON would store as {} (convert it first, e.g. Object.fromEntries(map))';
  if (value instanceof Set) return 'a Set, which JSON would store as {} (convert it first, e.g. [...set])';
  if (value instanceof WeakMap) return 'a WeakMap, which JSON would store as {}';
  if (value instanceof WeakSet) return 'a WeakSet, which JSON would store as {}';
  return null;
}

/** Where `target` sits inside `root` (`.a[2].b`), or '' when not found. */
function pathTo(root, target) {
  const seen = new Set();
  const walk = (node, path) => {
    if (node === target) return path;
    if (node === null || typeof node !== 'object' || seen.has(node) || seen.size > 100000) return null;
    seen.add(node);
    if (isTask(node)) return null;
    const entries = Array.isArray(node) ? node.map((v, i) => [`[${i}]`, v]) : Object.keys(node).map((k) => [/^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`, node[k]]);
    for (const [step, child] of entries) {
      const found = walk(child, path + step);
      if (found !== null) return found;
    }
    return null;
  };
  try {
    return walk(root, '') || '';
  } catch {
    return '';
  }
}

/** A marker thrown by the replacer: `found` is the value that is not data. */
class NotData extends Error {
  constructor(found, reason) {
    super(reason);
    this.found = found;
  }
}

function replacer(key, value) {
  if (value !== null && typeof value === 'object') {
    const reason = notData(value);
    if (reason) throw new NotData(value, reason);
  }
  return value;
}

/**
 * Serializes a value for the store. `undefined` becomes `null`, and so does a top-level
 * function or symbol (JSON's own rules). Values JSON cannot carry (BigInt, circular objects,
 * a getter or `toJSON` that throws), values that are not data (an unyielded task, a Promise,
 * a Map or Set, anywhere: JSON would store `{}` silently) and oversized payloads throw an
 * InvalidArgumentError naming `what`.
 */
function toJson(value, what) {
  // A function or symbol on its own is not data (JSON would store null); inside an object,
  // JSON leaves such a property out, as documented.
  if (typeof value === 'function') throw new InvalidArgumentError(`${what} is a function, which is not data: return or pass plain JSON data`);
  if (typeof value === 'symbol') throw new InvalidArgumentError(`${what} is a symbol, which is not data: return or pass plain JSON data`);
  const top = safely(() => notData(value));
  if (top) throw new InvalidArgumentError(`${what} is ${top}`);
  let text;
  try {
    text = JSON.stringify(value === undefined ? null : value);
    // A Promise, Map or Set nested anywhere became `{}`: look again, naming the culprit.
    if (text !== undefined && text.includes('{}')) JSON.stringify(value, replacer);
  } catch (error) {
    throw jsonError(error, value, what);
  }
  if (text === undefined) text = 'null';
  if (text.length > MAX_PAYLOAD_BYTES / 4 && Buffer.byteLength(text) > MAX_PAYLOAD_BYTES) {
    throw new InvalidArgumentError(
      `${what} is ${Buffer.byteLength(text)} bytes as JSON; the limit is ${MAX_PAYLOAD_BYTES} bytes`,
    );
  }
  return text;
}

function safely(fn) {
  try {
    return fn();
  } catch (error) {
    return `${UNREADABLE_VALUE} (${errorText(error)})`;
  }
}

function jsonError(error, value, what) {
  let found;
  let reason;
  if (error instanceof NotData) {
    found = error.found;
    reason = error.message;
  } else if (error !== null && typeof error === 'object' && safely(() => error[UNYIELDED]) instanceof Task) {
    found = error[UNYIELDED];
    reason = notData(found);
  }
  if (found !== undefined) {
    const at = pathTo(value, found);
    return new InvalidArgumentError(`${what} contains${at ? `, at ${at},` : ''} ${reason}`);
  }
  const message = errorText(error);
  const text = /BigInt/i.test(message)
    ? 'it contains a BigInt (convert it to a string or number first)'
    : /circular/i.test(message)
      ? 'it contains a circular reference'
      : `serializing it threw: ${message}`;
  return new InvalidArgumentError(`${what} cannot be stored as JSON: ${text}`, { cause: error });
}

/** A thrown value's message as a string; never throws. */
function errorText(error) {
  try {
    if (typeof error === 'string') return error;
    const message = error !== null && (typeof error === 'object' || typeof error === 'function') ? error.message : undefined;
    if (typeof message === 'string') return message;
    return describe(error);
  } catch {
    return 'an error that cannot be read';
  }
}

/** Longest instance id accepted. */
const MAX_INSTANCE_ID = 256;

/**
 * Refuses strings that would not reach the store exactly: a lone surrogate (not valid
 * UTF-16, so not representable in UTF-8: it would be rewritten to U+FFFD and two different
 * ids would name one instance) and NUL (which PostgreSQL cannot store in text).
 */
function checkExact(value, what) {
  if (!value.isWellFormed()) {
    const at = [...value].findIndex((c) => c.length === 1 && c >= '\uD800' && c <= '\uDFFF');
    throw new InvalidArgumentError(`${what} must be valid UTF-16: it has a lone surrogate (at code point ${at}), got ${describe(value)}`);
  }
  if (value.includes('\0')) {
    throw new InvalidArgumentError(`${what} must not contain a NUL character (\\u0000), got ${describe(value)}`);
  }
}

function checkInstanceId(id, what = 'instanceId') {
  if (typeof id !== 'string' || id.length === 0) {
    throw new InvalidArgumentError(`${what} must be a non-empty string, got ${describe(id)}`);
  }
  if (id.length > MAX_INSTANCE_ID) {
    throw new InvalidArgumentError(`${what} is ${id.length} characters long; the limit is ${MAX_INSTANCE_ID}`);
  }
  checkExact(id, what);
}

function checkName(name, what) {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError(`${what} must be a non-empty string, got ${describe(name)}`);
  }
  checkExact(name, what);
}

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

/** An orchestration version: a semantic version like '1.2.0' (what registration accepts). */
function checkVersion(version, what) {
  if (typeof version !== 'string' || !SEMVER.test(version)) {
    throw new InvalidArgumentError(`${what} must be a semantic version like '1.2.0', got ${describe(version)}`);
  }
}

/** A duration in ms: a number from 0 to MAX_DURATION_MS (`integer`: a whole number). */
function checkDuration(value, what, { min = 0, integer = true } = {}) {
  const ok = typeof value === 'number' && (integer ? Number.isInteger(value) : Number.isFinite(value));
  if (!ok || value < min) {
    throw new InvalidArgumentError(`${what} must be ${integer ? 'an integer' : 'a finite number of milliseconds'} >= ${min}, got ${describe(value)}`);
  }
  if (value > MAX_DURATION_MS) {
    throw new InvalidArgumentError(`${what} must be at most ${MAX_DURATION_TEXT}, got ${describe(value)}`);
  }
  return value;
}

/**
 * Checks that `options` is an options object (not null, not an array) whose own keys are all
 * in `known`, so a misspelt option is an error instead of silently meaning its default.
 * Returns it, or `{}` for undefined. `what` prefixes the keys in messages (`options.x`);
 * `kind` names whose options they are (`options.x is not a Runtime option (known: ...)`).
 */
function checkOptionsObject(options, known, what = 'options', kind) {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError(`${kind ? `${kind} options` : what} must be an object, got ${describe(options)}`);
  }
  checkKnownKeys(options, known, what, kind);
  return options;
}

/** Refuses any own key of `options` that is not in `known`, listing the known ones. */
function checkKnownKeys(options, known, what = 'options', kind) {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new InvalidArgumentError(`${what}.${key} is not ${kind ? `a ${kind} option` : 'an option'} (known: ${known.join(', ') || 'none'})`);
    }
  }
}

/** What `describe` says of a value it cannot read. */
const UNREADABLE_VALUE = 'a value that cannot be read';

/** A short description of a value for messages; never throws. */
function describe(value) {
  try {
    if (value === null) return 'null';
    if (value === undefined) return 'undefined';
    if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
    if (typeof value === 'function') return 'a function';
    if (typeof value !== 'object') return `${typeof value} ${String(value)}`;
    if (isTask(value)) return `a task (${taskLabel(value)})`;
    if (typeof value.then === 'function') return 'a Promise';
    if (Array.isArray(value)) return 'an array';
    return 'an object';
  } catch {
    return UNREADABLE_VALUE;
  }
}

module.exports = {
  toJson,
  checkInstanceId,
  checkName,
  checkExact,
  checkVersion,
  checkDuration,
  checkOptionsObject,
  checkKnownKeys,
  describe,
  errorText,
  isTask,
  UNREADABLE_VALUE,
  SEMVER,
  MAX_PAYLOAD_BYTES,
  MAX_INSTANCE_ID,
  MAX_DURATION_MS,
  MAX_DURATION_TEXT,
  MAX_EPOCH_MS,
};
