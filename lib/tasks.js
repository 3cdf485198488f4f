'use strict';

const { InvalidArgumentError } = require('./errors');

/** Longest tag, in UTF-8 bytes (duroxide-node's MAX_TAG_NAME_BYTES). */
const MAX_TAG_NAME_BYTES = 256;

/** A worker or activity tag: a non-empty string of at most MAX_TAG_NAME_BYTES bytes. */
function checkTag(tag, what = 'tag') {
  // Required lazily: json.js requires this module.
  const { checkName, describe } = require('./json');
  checkName(tag, what);
  const bytes = Buffer.byteLength(tag, 'utf8');
  if (bytes > MAX_TAG_NAME_BYTES) {
    throw new InvalidArgumentError(`${what} is ${bytes} bytes long; the limit is MAX_TAG_NAME_BYTES (${MAX_TAG_NAME_BYTES}): ${describe(tag.slice(0, 40))}…`);
  }
  return tag;
}

/** Set on what a task's `toJSON` throws: the task itself (see `toJson` in json.js). */
const UNYIELDED = Symbol('reprise.unyieldedTask');

/**
 * A durable step an orchestration yields. Plain `yield task` gives its result, and tasks are
 * iterable so `const x = yield* task` does too (which lets TypeScript infer the type).
 * A task gets its number when it is first yielded, not when it is created.
 */
class Task {
  constructor(kind, args) {
    this.kind = kind;
    this.args = args;
    /** Task number, assigned at the first yield. */
    this.taskId = undefined;
  }

  *[Symbol.iterator]() {
    return yield this;
  }

  /**
   * Routes this activity to workers whose `workerTagFilter` accepts `tag` (duroxide-node's
   * chainable form); returns the same task. Set it before the task is first yielded.
   */
  withTag(tag) {
    if (this.kind !== 'activity') {
      throw new InvalidArgumentError(`withTag() applies to activities, not to a ${this.kind} task`);
    }
    if (this.taskId !== undefined) {
      throw new InvalidArgumentError('withTag() must be called before the task is yielded');
    }
    this.args.tag = checkTag(tag);
    this.tag = tag;
    return this;
  }

  /** A task is not data: one returned or passed as a value (a forgotten `yield`) is refused. */
  toJSON() {
    const error = new TypeError(`a task (${this.kind}) is not data: yield it to get its result`);
    error[UNYIELDED] = this;
    throw error;
  }
}

/** Kinds that become a command and wait for a result. */
const DURABLE = new Set(['activity', 'timer', 'wait', 'child', 'detached']);
/** Kinds combining other tasks. */
const COMPOSITE = new Set(['all', 'race']);

module.exports = { Task, DURABLE, COMPOSITE, UNYIELDED, checkTag, MAX_TAG_NAME_BYTES };
