'use strict';

// The generator driver: applies an activation's jobs one at a time, in history order,
// running the orchestration's generator until it blocks after each, and answers with the
// commands the code issued. Live generators are kept in a cache whose contents Rust
// mirrors (it tells us what to evict), so a steady-state turn costs O(new events).

const { DURABLE, COMPOSITE } = require('./tasks');
const { OrchestrationContext, uuidV5 } = require('./context');
const { InvalidArgumentError, TaskFailedError } = require('./errors');
const { toJson, describe, errorText, isTask, UNREADABLE_VALUE } = require('./json');

const BLOCKED = Symbol('blocked');
const ENDED = Symbol('ended');

/** Longest error message recorded, in characters; longer ones are cut, saying how much was. */
const MAX_MESSAGE_CHARS = 64 * 1024;
/** Longest error `code` or `name` recorded, in characters. */
const MAX_TAG_CHARS = 256;

/**
 * `text` as every store keeps it exactly: valid UTF-16 (a lone surrogate becomes U+FFFD), no
 * NUL (PostgreSQL text cannot hold it; it becomes U+FFFD too), at most `max` characters.
 */
function storable(text, max) {
  let t = text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
  if (!t.isWellFormed()) t = t.toWellFormed();
  if (t.includes('\0')) t = t.replaceAll('\0', '\uFFFD');
  return t;
}

/** Returned by `read` when reading threw. */
const UNREADABLE = Symbol('unreadable');

/** `object[key]`, or UNREADABLE when reading it throws (a getter, a Proxy trap). */
function read(object, key) {
  try {
    return object[key];
  } catch {
    return UNREADABLE;
  }
}

function scalarText(value) {
  if (typeof value === 'string') return value;
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'bigint') return String(value);
  return undefined;
}

/** What JSON shows of a thrown non-Error object, briefly; '' if it cannot be shown. */
function preview(value) {
  try {
    const text = JSON.stringify(value);
    if (typeof text !== 'string' || text === '{}' || text === '[]') return '';
    return `: ${text.length > 200 ? `${text.slice(0, 200)}…` : text}`;
  } catch {
    return '';
  }
}

/**
 * The `{message, code?, name?}` recorded for anything user code throws. Never throws: a
 * value whose fields cannot be read or stored (throwing getters, a Proxy, BigInt fields,
 * cycles, lone surrogates, NUL) is recorded with what can be kept. The `message` and `code` of
 * a plain object survive; any other non-Error value is described.
 */
function errorFields(error) {
  try {
    return fieldsOf(error);
  } catch {
    return { message: 'an error that cannot be read was thrown' };
  }
}

/** `value instanceof Error`, false when that check throws (a Proxy's getPrototypeOf trap). */
function isErrorObject(value) {
  try {
    return value instanceof Error;
  } catch {
    return false;
  }
}

function fieldsOf(error) {
  if (typeof error === 'string') return { message: storable(error, MAX_MESSAGE_CHARS) };
  if (error === null || (typeof error !== 'object' && typeof error !== 'function')) {
    return { message: storable(`${describe(error)} was thrown (not an Error)`, MAX_MESSAGE_CHARS) };
  }
  const isError = isErrorObject(error);
  const rawMessage = read(error, 'message');
  let message = scalarText(rawMessage);
  if (message === '' && isError) {
    try {
      message = String(error);
    } catch {
      message = undefined;
    }
  }
  if (message === undefined) {
    const what = isError ? 'an Error' : describe(error);
    message = rawMessage === UNREADABLE
      ? `${what}${what === UNREADABLE_VALUE ? '' : ' whose message cannot be read'} was thrown`
      : isError
        ? `${what} whose message is ${describe(rawMessage)} was thrown`
        : `${what} was thrown (not an Error)${preview(error)}`;
  }
  const out = { message: storable(message, MAX_MESSAGE_CHARS) };
  const code = scalarText(read(error, 'code'));
  if (code) out.code = storable(code, MAX_TAG_CHARS);
  if (typeof error !== 'function') {
    const name = read(error, 'name');
    if (typeof name === 'string' && name && name !== 'Error') out.name = storable(name, MAX_TAG_CHARS);
  }
  return out;
}

/** A typed variant's result: a string holding JSON is parsed once more. */
function reparse(value) {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** `outcome` of a typed task (see `reparse`): for all and race, their values inside. */
function typedOutcome(task, outcome) {
  // A detached start settles with its instance id, which stays as it is.
  if ('error' in outcome || task.kind === 'detached') return outcome;
  if (task.kind === 'all') return { value: outcome.value.map((o) => ('ok' in o ? { ok: reparse(o.ok) } : o)) };
  if (task.kind === 'race') return { value: { index: outcome.value.index, value: reparse(outcome.value.value) } };
  return { value: reparse(outcome.value) };
}

function taskError(e) {
  return new TaskFailedError(e.message, e.code || 'ERR_TASK_FAILED', e.name);
}

class Execution {
  constructor(activation, fn, service) {
    this.service = service;
    this.instanceId = activation.instanceId;
    this.executionId = activation.executionId;
    this.name = activation.name;
    this.version = activation.version;
    this.fn = fn;
    this.gen = null;
    this.ctx = new OrchestrationContext(this);
    this.nextTask = 1;
    /** task number -> {value} | {error} */
    this.results = new Map();
    /** Bound, unresolved waits in task order. */
    this.pendingWaits = [];
    /** Events nobody waited for yet, oldest first: {name, data, ord}. */
    this.buffer = [];
    /** Arrival ordinal of the next event (carried-in events first), shared with the engine. */
    this.arrivals = 0;
    /** Set by continueAsNew: the command is written at the end of the activation. */
    this.continued = null;
    this.blocked = null;
    this.done = false;
    this.guids = 0;
    this.now = 0;
    this.customStatus = null;
    /** The key-value store: key -> {value, updatedAt}. */
    this.kv = new Map();
    /** Command JSON texts of the current activation. */
    this.commands = [];
  }

  apply(job) {
    this.now = job.ts;
    switch (job.t) {
      case 'start':
        for (const e of job.events || []) this.buffer.push({ name: e.name, data: e.data, ord: this.arrivals++ });
        if (job.customStatus !== undefined) this.customStatus = job.customStatus;
        if (job.kv) for (const [key, entry] of Object.entries(job.kv)) this.kv.set(key, entry);
        this.resume({ value: undefined, first: true });
        break;
      case 'ok':
        this.results.set(job.task, { value: job.value });
        this.wake();
        break;
      case 'err':
        this.results.set(job.task, { error: taskError(job.error) });
        this.wake();
        break;
      case 'event':
        this.deliver(job.name, job.data);
        break;
      default:
        throw new Error(`unknown job '${job.t}'`);
    }
  }

  deliver(name, data) {
    const ord = this.arrivals++;
    const i = this.done ? -1 : this.pendingWaits.findIndex((w) => w.args.name === name);
    if (i < 0) {
      this.buffer.push({ name, data, ord });
      return;
    }
    const [wait] = this.pendingWaits.splice(i, 1);
    this.results.set(wait.taskId, { value: data });
    this.wake();
  }

  wake() {
    if (this.done || !this.blocked) return;
    const outcome = this.outcome(this.blocked);
    if (!outcome) return;
    this.blocked = null;
    this.resume(outcome);
  }

  /** Runs the generator from an outcome until it blocks or ends. */
  resume(outcome) {
    let step;
    for (;;) {
      try {
        if (outcome.first) {
          this.gen = this.fn(this.ctx, this.input);
          step = this.gen.next();
        } else if ('error' in outcome) {
          step = this.gen.throw(outcome.error);
        } else {
          step = this.gen.next(outcome.value);
        }
      } catch (error) {
        this.fail(errorFields(error));
        return;
      }
      if (step.done) {
        this.complete(step.value);
        return;
      }
      const next = this.onYield(step.value);
      if (next === BLOCKED) {
        this.blocked = step.value;
        return;
      }
      if (next === ENDED) return;
      outcome = next;
    }
  }

  onYield(task) {
    if (!isTask(task)) {
      this.fail({
        message:
          `the orchestration yielded ${describe(task)}, which is not a task: yield only what ctx methods return ` +
          `(use activities for async work; a Promise cannot be replayed)`,
        code: 'ERR_INVALID_ARGUMENT',
      });
      return ENDED;
    }
    switch (task.kind) {
      case 'utcNow':
        return { value: this.now };
      case 'newGuid':
        return { value: uuidV5(`${this.instanceId}:${this.executionId}:${this.guids++}`) };
      case 'continueAsNew': {
        let input;
        try {
          input = toJson(task.args.input, 'continueAsNew input');
        } catch (error) {
          return { error };
        }
        // Written when the activation ends, so events arriving later in it are carried too;
        // they are named by ordinal so the engine carries their exact stored text.
        this.continued = { input, version: task.args.version };
        this.done = true;
        return ENDED;
      }
      default:
        break;
    }
    try {
      this.encode(task);
    } catch (error) {
      return { error };
    }
    this.bind(task);
    return this.outcome(task) || BLOCKED;
  }

  /** Serializes the inputs of every not-yet-bound task first, so a bad input binds nothing. */
  encode(task) {
    if (COMPOSITE.has(task.kind)) {
      for (const t of task.args.tasks) this.encode(t);
      return;
    }
    if (task.taskId !== undefined || task.json !== undefined) return;
    if (task.kind === 'activity') task.json = toJson(task.args.input, `input of activity '${task.args.name}'`);
    else if (task.kind === 'child' || task.kind === 'detached') {
      task.json = toJson(task.args.input, `input of orchestration '${task.args.name}'`);
    } else task.json = null;
  }

  bind(task) {
    if (COMPOSITE.has(task.kind)) {
      for (const t of task.args.tasks) this.bind(t);
      return;
    }
    if (task.taskId !== undefined) return;
    const no = this.nextTask++;
    task.taskId = no;
    const a = task.args;
    switch (task.kind) {
      case 'activity': {
        const retry = a.retry ? `,"retry":${JSON.stringify(a.retry)}` : '';
        const session = a.session === undefined ? '' : `,"session":${JSON.stringify(a.session)}`;
        const tag = a.tag === undefined ? '' : `,"tag":${JSON.stringify(a.tag)}`;
        this.commands.push(`{"t":"activity","task":${no},"name":${JSON.stringify(a.name)},"input":${task.json}${retry}${session}${tag}}`);
        break;
      }
      case 'timer':
        this.commands.push(`{"t":"timer","task":${no},"delayMs":${a.delayMs}}`);
        break;
      case 'wait': {
        this.commands.push(`{"t":"wait","task":${no},"name":${JSON.stringify(a.name)}}`);
        const i = this.buffer.findIndex((e) => e.name === a.name);
        if (i >= 0) this.results.set(no, { value: this.buffer.splice(i, 1)[0].data });
        else this.pendingWaits.push(task);
        break;
      }
      case 'child':
      case 'detached': {
        const id = a.id == null ? '' : `,"id":${JSON.stringify(a.id)}`;
        const version = a.version == null ? '' : `,"version":${JSON.stringify(a.version)}`;
        this.commands.push(`{"t":"${task.kind}","task":${no},"name":${JSON.stringify(a.name)}${id},"input":${task.json}${version}}`);
        if (task.kind === 'detached') this.results.set(no, { value: a.id });
        break;
      }
      default:
        throw new Error(`cannot bind task kind '${task.kind}'`);
    }
    task.json = undefined;
  }

  /** The outcome of a yielded task if it is settled: `{value}` or `{error}`. */
  outcome(task) {
    const outcome = this.settledOutcome(task);
    return outcome && task.typed ? typedOutcome(task, outcome) : outcome;
  }

  settledOutcome(task) {
    if (task.settled) return task.settled;
    let result;
    if (DURABLE.has(task.kind)) {
      result = this.results.get(task.taskId);
      return result;
    }
    const children = task.args.tasks;
    if (task.kind === 'all') {
      // Resume the scan where the last call stopped: a settled child stays settled, so a
      // fan-out of n tasks costs O(n) over all its wake-ups, not O(n) per result.
      let settled = task.scanned || 0;
      while (settled < children.length && this.outcome(children[settled])) settled++;
      task.scanned = settled;
      if (settled < children.length) return undefined;
      const outs = children.map((t) => this.outcome(t));
      result = { value: outs.map((o) => ('error' in o ? { err: o.error.message } : { ok: o.value })) };
    } else {
      const index = children.findIndex((t) => this.outcome(t));
      if (index < 0) return undefined;
      const won = this.outcome(children[index]);
      children.forEach((t, i) => i !== index && this.cancel(t));
      if ('error' in won) {
        const error = won.error;
        error.index = index;
        result = { error };
      } else {
        result = { value: { index, value: won.value } };
      }
    }
    task.settled = result;
    return result;
  }

  /** Cancels every unsettled durable task inside `task` (race losers). */
  cancel(task) {
    if (COMPOSITE.has(task.kind)) {
      if (!task.settled) task.args.tasks.forEach((t) => this.cancel(t));
      return;
    }
    if (task.taskId === undefined || this.results.has(task.taskId)) return;
    this.results.set(task.taskId, { error: new TaskFailedError('canceled: lost a race', 'ERR_CANCELED') });
    this.pendingWaits = this.pendingWaits.filter((w) => w !== task);
    this.commands.push(`{"t":"cancel","task":${task.taskId}}`);
  }

  complete(value) {
    let output;
    try {
      output = toJson(value, 'the orchestration output');
    } catch (error) {
      this.fail(errorFields(error));
      return;
    }
    this.commands.push(`{"t":"complete","output":${output}}`);
    this.done = true;
  }

  /** The deferred continue-as-new command, if the code asked for one. */
  finishActivation() {
    if (!this.continued) return;
    const { input, version } = this.continued;
    const v = version == null ? '' : `,"version":${JSON.stringify(version)}`;
    const kv = this.kv.size === 0 ? '' : `,"kv":${JSON.stringify(Object.fromEntries(this.kv))}`;
    this.commands.push(`{"t":"continueAsNew","input":${input}${v},"carry":[${this.buffer.map((e) => e.ord).join(',')}]${kv}}`);
    this.continued = null;
  }

  /** `error`: from `errorFields` (or built of storable text). */
  fail(error) {
    this.commands.push(`{"t":"fail","error":${JSON.stringify(error)}}`);
    this.done = true;
  }
}

class Driver {
  /**
   * @param lookup (name, version) => generator function | undefined
   * @param service {name, version} of the runtime, for trace lines (either may be undefined)
   */
  constructor(lookup, service = {}) {
    this.lookup = lookup;
    this.service = service;
    this.cache = new Map();
  }

  /** Handles one `turns` delivery; `reply(token, json)` answers each activation. */
  handleTurns(message, reply) {
    for (const id of message.evict) this.cache.delete(id);
    for (const activation of message.activations) {
      reply(activation.token, this.run(activation));
    }
  }

  run(a) {
    let ex;
    try {
      if (a.fresh) {
        const fn = this.lookup(a.name, a.version);
        if (!fn) return JSON.stringify({ fault: `orchestration '${a.name}' ${a.version} is not registered in this process` });
        ex = new Execution(a, fn, this.service);
      } else {
        ex = this.cache.get(a.instanceId);
        if (!ex || ex.executionId !== a.executionId) {
          this.cache.delete(a.instanceId);
          return JSON.stringify({ fault: `no cached generator for '${a.instanceId}'` });
        }
      }
      ex.commands = [];
      const ctx = ex.ctx;
      for (let i = 0; i < a.jobs.length; i++) {
        const job = a.jobs[i];
        ctx.isReplaying = i < a.replayCount;
        if (job.t === 'start') ex.input = job.input;
        ex.apply(job);
      }
      ctx.isReplaying = false;
      ex.finishActivation();
      if (a.keep && !ex.done) this.cache.set(a.instanceId, ex);
      else this.cache.delete(a.instanceId);
      return `{"commands":[${ex.commands.join(',')}]}`;
    } catch (error) {
      this.cache.delete(a.instanceId);
      const stack = isErrorObject(error) ? read(error, 'stack') : undefined;
      return JSON.stringify({ fault: storable(`driver error: ${typeof stack === 'string' ? stack : errorText(error)}`, MAX_MESSAGE_CHARS) });
    }
  }
}

module.exports = { Driver, errorFields, InvalidArgumentError };
