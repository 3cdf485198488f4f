'use strict';

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

module.exports = { Task, DURABLE, COMPOSITE, UNYIELDED };
