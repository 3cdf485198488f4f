'use strict';

/** Base class of every error reprise throws; `code` is stable and documented. */
class RepriseError extends Error {
  constructor(message, code = 'ERR_REPRISE', options) {
    super(message, options);
    this.name = this.constructor.name;
    this.code = code;
  }
}

class InvalidArgumentError extends RepriseError {
  constructor(message, options) {
    super(message, 'ERR_INVALID_ARGUMENT', options);
  }
}

class InvalidStateError extends RepriseError {
  constructor(message) {
    super(message, 'ERR_INVALID_STATE');
  }
}

class NotFoundError extends RepriseError {
  constructor(message) {
    super(message, 'ERR_NOT_FOUND');
  }
}

class TimeoutError extends RepriseError {
  constructor(message) {
    super(message, 'ERR_TIMEOUT');
  }
}

class NondeterminismError extends RepriseError {
  constructor(message) {
    super(message, 'ERR_NONDETERMINISM');
  }
}

class NotRegisteredError extends RepriseError {
  constructor(message) {
    super(message, 'ERR_NOT_REGISTERED');
  }
}

/**
 * Storage failures. `retryable` is true when the same call can succeed later unchanged: the
 * store was unreachable (`ERR_UNAVAILABLE`).
 */
class StoreError extends RepriseError {
  constructor(message, code = 'ERR_STORE') {
    super(message, code);
    this.retryable = code === 'ERR_UNAVAILABLE';
  }
}

/** An activity or sub-orchestration failed; thrown into the orchestration at its `yield`. */
class TaskFailedError extends RepriseError {
  constructor(message, code = 'ERR_TASK_FAILED', originalName) {
    super(message, code);
    if (originalName) this.originalName = originalName;
  }
}

/**
 * Every stable code the native layer and the engine produce, with the class an error carrying
 * it is thrown as: the same codes in the same order as `ErrorCode::ALL` in
 * `src/error_code.rs` (a Rust test compares the two and the guide's error tables). Three codes
 * are JavaScript's own: `ERR_REPRISE` (the base class's default),
 * `ERR_NATIVE_BINARY_MISSING` (a plain `Error` at load time) and `ERR_RUN_FAILED` (a job run
 * awaited with `triggerAndWait` failed: lib/jobs/app.js).
 */
const CODES = [
  ['ERR_INVALID_ARGUMENT', 'InvalidArgumentError'],
  ['ERR_INVALID_STATE', 'InvalidStateError'],
  ['ERR_NOT_FOUND', 'NotFoundError'],
  ['ERR_TIMEOUT', 'TimeoutError'],
  ['ERR_NONDETERMINISM', 'NondeterminismError'],
  ['ERR_NOT_REGISTERED', 'NotRegisteredError'],
  ['ERR_STORE', 'StoreError'],
  ['ERR_LOCKED', 'StoreError'],
  ['ERR_UNAVAILABLE', 'StoreError'],
  ['ERR_LEASE_LOST', 'StoreError'],
  ['ERR_ALREADY_EXISTS', 'TaskFailedError'],
  ['ERR_CANCELED', 'TaskFailedError'],
  ['ERR_POISON', 'TaskFailedError'],
  ['ERR_PROTOCOL', 'RepriseError'],
  ['ERR_ORCHESTRATION_FAILED', 'RepriseError'],
  ['ERR_TASK_FAILED', 'TaskFailedError'],
];

/** Classes whose code is fixed: constructed from the message alone. */
const FIXED = { InvalidArgumentError, InvalidStateError, NotFoundError, TimeoutError, NondeterminismError, NotRegisteredError };
const byCode = Object.fromEntries(CODES.filter(([, cls]) => FIXED[cls]).map(([code, cls]) => [code, FIXED[cls]]));

/**
 * Turns an error from the native layer (`[CODE] message`) into the matching class; the
 * native layer only throws the fixed-class codes and store codes, so any other code is a
 * `StoreError` carrying it.
 */
function fromNative(error) {
  const text = error && typeof error.message === 'string' ? error.message : String(error);
  const match = /^\[([A-Z_]+)\] ([\s\S]*)$/.exec(text);
  if (!match) return error instanceof Error ? error : new RepriseError(text);
  const [, code, message] = match;
  const Class = byCode[code];
  if (Class) return new Class(message);
  return new StoreError(message, code);
}

/** Calls a native async function, translating its errors. */
async function nativeCall(promise) {
  try {
    return await promise;
  } catch (error) {
    throw fromNative(error);
  }
}

module.exports = {
  CODES,
  RepriseError,
  InvalidArgumentError,
  InvalidStateError,
  NotFoundError,
  TimeoutError,
  NondeterminismError,
  NotRegisteredError,
  StoreError,
  TaskFailedError,
  fromNative,
  nativeCall,
};
