#!/usr/bin/env node
'use strict';
// reprise: inspect and manage orchestration instances from the command line.
// Only opens a Client (never a Runtime), so it can run next to a live runtime.

const fs = require('node:fs');
const { parseArgs } = require('node:util');

const USAGE = `Usage: reprise [--db URL] [--schema NAME] [--json] <command> [options]

Commands:
  list [--status Pending|Running|Completed|Failed|Canceled] [--name N] [--limit N] [--cursor C]
                          List instances in creation order (--status: a stored status)
  show ID [--execution N] Show an instance and the timeline of its current (or Nth) execution
  watch ID [--since start|now]
                          Print the instance's lifecycle events as they happen, from its
                          start (default) or from now, until it completes or fails
                          (exit 1 if it fails); --json prints one JSON object per line
  retry ID                Re-run a failed instance from its last good point (activities
                          that succeeded are not run again; failed sub-orchestrations too)
  cancel ID [--reason R]  Cancel a running instance (and its sub-orchestrations);
                          a finished one is left as it is
  delete ID [--force]     Delete an instance with its sub-orchestrations;
                          a running instance needs --force
  runtimes                List the runtimes on this store (live, or dead and not yet
                          removed): id, workerNodeId, host, pid, heartbeat, what they run

Global options:
  --db URL        sqlite:PATH, a SQLite file path, or postgres://user:pass@host:port/db
                  (default: the REPRISE_DB environment variable)
  --schema NAME   PostgreSQL schema (default: public); it must exist: the CLI never creates one
  --json          Print one JSON document on stdout (watch: one per event)
  -h, --help      Show this help

Flags must belong to the command; a value that starts with '-' is given as --flag=-value.

Exit codes: 0 success; 1 operation error (unknown instance, running instance without
--force, retry of an instance that is not failed, a watched instance that failed, missing
database file, unreachable server); 2 usage error. With --json, an error is one JSON object
{"code", "message"} on stderr; code is ERR_USAGE for usage errors.
`;

const OPTIONS = {
  db: { type: 'string' },
  schema: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  status: { type: 'string' },
  name: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  execution: { type: 'string' },
  reason: { type: 'string' },
  force: { type: 'boolean' },
  since: { type: 'string' },
};
const GLOBAL = ['db', 'schema', 'json', 'help'];
const COMMANDS = {
  list: { options: ['status', 'name', 'limit', 'cursor'], id: false },
  show: { options: ['execution'], id: true },
  watch: { options: ['since'], id: true },
  retry: { options: [], id: true },
  cancel: { options: ['reason'], id: true },
  delete: { options: ['force'], id: true },
  runtimes: { options: [], id: false },
};
/** The CLI shows and filters on the stored statuses. */
const STATUSES = ['Pending', 'Running', 'Completed', 'Failed', 'Canceled'];
/** The most rows `listInstances` returns in one page. */
const MAX_LIMIT = 10000;

/** Bad command line: exit 2, `code` ERR_USAGE with --json. */
class UsageError extends Error {
  constructor(message) {
    super(message);
    this.code = 'ERR_USAGE';
  }
}

/** The command could not do what was asked: exit 1; `code` says why. */
class OperationError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

/** Set once the arguments are read: errors are then printed as JSON. */
let jsonErrors = false;

const flagList = (names) => names.map((n) => `--${n}`).join(', ');

/** The flags `command` takes (every command's when it is not a known one), for messages. */
function knownFlags(command) {
  const global = `global: ${flagList(GLOBAL)}`;
  if (Object.hasOwn(COMMANDS, command)) return `'${command}' takes: ${flagList(COMMANDS[command].options) || 'no flags of its own'}; ${global}`;
  const each = Object.entries(COMMANDS).filter(([, spec]) => spec.options.length).map(([name, spec]) => `${name}: ${flagList(spec.options)}`);
  return `${global}; ${each.join('; ')}`;
}

/**
 * Reads the command line strictly: every flag must be known and belong to the command, a
 * string flag needs a non-empty value (a value starting with '-' is given as --flag=-value),
 * a switch takes none, and no flag is given twice.
 */
function parse(argv) {
  const { tokens } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: false, tokens: true });
  jsonErrors = tokens.some((t) => t.kind === 'option' && t.name === 'json');
  const positionals = tokens.filter((t) => t.kind === 'positional').map((t) => t.value);
  const command = positionals[0];
  const values = {};
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const { name, rawName, value } = token;
    if (!Object.hasOwn(OPTIONS, name)) throw new UsageError(`unknown option '${rawName}' (${knownFlags(command)})`);
    if (!GLOBAL.includes(name) && Object.hasOwn(COMMANDS, command) && !COMMANDS[command].options.includes(name)) {
      throw new UsageError(`'${command}' takes no --${name} (${knownFlags(command)})`);
    }
    if (Object.hasOwn(values, name)) throw new UsageError(`--${name} given twice`);
    if (OPTIONS[name].type === 'boolean') {
      if (value !== undefined) throw new UsageError(`--${name} takes no value, got '${value}'`);
      values[name] = true;
    } else {
      if (value === undefined || value === '') throw new UsageError(`--${name} needs a value`);
      if (!token.inlineValue && value.startsWith('-')) {
        throw new UsageError(`--${name} needs a value, got '${value}' (write --${name}=${value} for a value that starts with '-')`);
      }
      values[name] = value;
    }
  }
  return { values, positionals };
}

function parseCount(text, option, max) {
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < 1 || Number(text) > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? '>= 1' : `from 1 to ${max}`;
    throw new UsageError(`--${option} must be an integer ${range}, got '${text}'`);
  }
  return Number(text);
}

async function openProvider(db, schema, command) {
  const { SqliteProvider, PostgresProvider } = require('..');
  if (/^postgres(ql)?:\/\//.test(db)) {
    // `watch` sees other processes' commits by polling: a short interval keeps it live.
    // A CLI never creates a schema: a misspelt --schema is an error, not a new empty store.
    const options = { poolSize: 2, connectTimeoutMs: 5000, pollIntervalMs: command === 'watch' ? 200 : 1000, createSchema: false };
    return schema === undefined
      ? PostgresProvider.connect(db, options)
      : PostgresProvider.connectWithSchema(db, schema, options);
  }
  if (schema !== undefined) throw new UsageError('--schema applies to PostgreSQL only');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(db) && !db.startsWith('sqlite://')) {
    throw new UsageError(`--db '${db}' is neither a SQLite path nor a postgres:// URL`);
  }
  // SqliteProvider.open creates missing files; a CLI must not invent an empty database.
  const path = db.replace(/^sqlite:(\/\/)?/, '').split('?')[0];
  if (path === '' || path === ':memory:') throw new UsageError(`--db '${db}' names no file`);
  let stat;
  try {
    stat = fs.statSync(path);
  } catch {
    throw new OperationError(`no database at '${path}'`, 'ERR_NOT_FOUND');
  }
  if (!stat.isFile()) throw new OperationError(`'${path}' is not a file`, 'ERR_NOT_FOUND');
  return SqliteProvider.open(db);
}

// ---- formatting ----

const iso = (ms) => (ms === null || ms === undefined ? '-' : new Date(ms).toISOString());

function short(value, max = 60) {
  let text = JSON.stringify(value === undefined ? null : value);
  if (text === undefined) text = String(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(headers), ...rows.map(line)].join('\n');
}

function offset(ms) {
  if (ms < 1000) return `+${ms}ms`;
  if (ms < 60000) return `+${(ms / 1000).toFixed(3)}s`;
  const minutes = Math.floor(ms / 60000);
  const seconds = ((ms % 60000) / 1000).toFixed(3);
  if (minutes < 60) return `+${minutes}m${seconds}s`;
  return `+${Math.floor(minutes / 60)}h${minutes % 60}m${seconds}s`;
}

function errorText(error) {
  if (!error || typeof error !== 'object') return short(error);
  const name = error.name ? `${error.name}: ` : '';
  const code = error.code ? ` (${error.code})` : '';
  return `${name}${error.message}${code}`;
}

/** One readable summary per history event; `names` maps task numbers to what they run. */
function summarize(event, names) {
  const d = event.data || {};
  const task = names.get(event.taskId);
  switch (event.kind) {
    case 'ExecutionStarted':
      return `${d.name} ${d.version} input=${short(d.input)}`;
    case 'ActivityScheduled':
      names.set(event.taskId, d.name);
      return `activity ${d.name} input=${short(d.input)}`;
    case 'ActivityCompleted':
      return `activity ${task} result=${short(d.result)}`;
    case 'ActivityFailed':
      return `activity ${task} failed: ${errorText(d.error)}`;
    case 'TimerCreated':
      names.set(event.taskId, 'timer');
      return `timer fires at ${iso(d.fireAt)} (in ${d.fireAt - event.timestamp}ms)`;
    case 'TimerFired':
      return 'timer fired';
    case 'EventWaitStarted':
      names.set(event.taskId, `event "${d.name}"`);
      return `waiting for event "${d.name}"`;
    case 'EventRaised':
      return `event "${d.name}" data=${short(d.data)}`;
    case 'ChildScheduled':
      names.set(event.taskId, `${d.name} (${d.instanceId})`);
      return `sub-orchestration ${d.name} (${d.instanceId}) input=${short(d.input)}`;
    case 'ChildCompleted':
      return `sub-orchestration ${task} output=${short(d.output)}`;
    case 'ChildFailed':
      return `sub-orchestration ${task} failed: ${errorText(d.error)}`;
    case 'DetachedStarted':
      return `started ${d.name} (${d.instanceId}) input=${short(d.input)}`;
    case 'TaskCanceled':
      return `canceled ${task || 'task'}`;
    case 'CustomStatusSet':
      return `custom status=${short(d.value)}`;
    case 'CancelRequested':
      return `reason ${short(d.reason)}`;
    case 'ExecutionCompleted':
      return `output=${short(d.output)}`;
    case 'ExecutionFailed':
      return `error: ${errorText(d.error)}`;
    case 'ExecutionRetried':
      return `retried after: ${errorText(d.error)} (${d.removed} events rewound)`;
    case 'ContinuedAsNew':
      return `input=${short(d.input)}${d.version ? ` version ${d.version}` : ''}`;
    default:
      return short(d);
  }
}

function timeline(history) {
  const names = new Map();
  const start = history.length ? history[0].timestamp : 0;
  const rows = history.map((e) => [
    offset(e.timestamp - start),
    e.kind,
    e.taskId === null || e.taskId === undefined ? '' : `#${e.taskId}`,
    summarize(e, names),
  ]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => `  ${r.slice(0, 3).map((c, i) => c.padEnd(widths[i])).join('  ')}  ${r[3]}`).join('\n');
}

// ---- commands ----

async function list(client, values, out) {
  const options = {};
  if (values.status !== undefined) {
    if (!STATUSES.includes(values.status)) throw new UsageError(`--status must be one of ${STATUSES.join(', ')}, got '${values.status}'`);
    options.storedStatus = values.status;
  }
  if (values.name !== undefined) options.name = values.name;
  if (values.limit !== undefined) options.limit = parseCount(values.limit, 'limit', MAX_LIMIT);
  if (values.cursor !== undefined) options.cursor = values.cursor;
  const page = await client.listInstances(options);
  if (values.json) return out(page);
  const lines = [];
  if (page.instances.length === 0) lines.push('no instances');
  else {
    // An instance no live runtime can run says so beside its status.
    lines.push(table(['ID', 'NAME', 'VERSION', 'STATUS', 'CREATED', 'UPDATED'], page.instances.map((i) => [
      i.instanceId, i.name, i.version || '-', i.waitingForRuntime ? `${i.storedStatus} (no runtime)` : i.storedStatus, iso(i.createdAt), iso(i.updatedAt),
    ])));
  }
  if (page.nextCursor) lines.push(`next cursor: ${page.nextCursor}`);
  out(lines.join('\n'));
}

async function show(client, id, values, out) {
  const executionId = values.execution === undefined ? undefined : parseCount(values.execution, 'execution', Number.MAX_SAFE_INTEGER);
  const info = await client.getInstanceInfo(id);
  if (!info) throw new OperationError(`no instance '${id}'`, 'ERR_NOT_FOUND');
  const history = await client.readStoredHistory(id, executionId);
  if (executionId !== undefined && history.length === 0) {
    throw new OperationError(`instance '${id}' has no history for execution ${executionId}`, 'ERR_NOT_FOUND');
  }
  const execution = executionId === undefined ? info.executionId : executionId;
  const job = await jobDetails(client, info);
  if (values.json) return out({ instance: info, executionId: execution, history, ...(job ? { job } : {}) });
  const fields = [
    ['instance', info.instanceId],
    ['name', `${info.name}${info.version ? ` (version ${info.version})` : ''}`],
    ['status', info.storedStatus],
    ['execution', String(info.executionId)],
    ['created', iso(info.createdAt)],
    ['updated', iso(info.updatedAt)],
  ];
  if (info.parentId) fields.push(['parent', info.parentId]);
  fields.push(['input', short(info.input, 200)]);
  if (info.status === 'Completed') fields.push(['output', short(info.output, 200)]);
  if (info.status === 'Failed') fields.push(['error', `${info.error} (${info.errorCode})`]);
  if (info.customStatusVersion > 0) fields.push(['custom', short(info.customStatus, 200)]);
  const lines = fields.map(([k, v]) => `${k.padEnd(10)}${v}`);
  if (job) lines.push('', ...jobLines(job));
  lines.push('', `history of execution ${execution} (${history.length} event${history.length === 1 ? '' : 's'}):`);
  lines.push(history.length ? timeline(history) : '  (none yet)');
  out(lines.join('\n'));
}

/** A job run's progress, steps and last log lines (null for other instances). */
async function jobDetails(client, info) {
  if (!info.input || typeof info.input !== 'object' || info.input.$job !== 1) return null;
  const state = await client._jobQuery({ op: 'state', instanceId: info.instanceId });
  const logs = await client._jobQuery({ op: 'logs', instanceId: info.instanceId, afterSeq: 0, limit: 1000 });
  const parse = (text) => (text == null ? null : JSON.parse(text));
  return {
    startedAt: state.startedAt,
    progress: parse(state.progress),
    steps: state.steps.map((step) => ({ name: step.name, state: step.state, attempts: step.attempts, value: parse(step.value), untilMs: step.untilMs, updatedAt: step.updatedAt })),
    logs: logs.map((line) => ({ level: line.level, message: line.message, data: parse(line.data), createdAt: line.createdAt })),
  };
}

function jobLines(job) {
  const lines = [`job run ${job.startedAt == null ? 'not started yet' : `started ${iso(job.startedAt)}`}`];
  if (job.progress) {
    const { current, total, message } = job.progress;
    lines.push(`progress  ${current}${total === undefined ? '' : `/${total}`}${message ? ` ${message}` : ''}`);
  }
  lines.push(`steps (${job.steps.length}):`);
  for (const step of job.steps) {
    const detail = step.state === 'done' ? short(step.value, 80) : step.untilMs != null ? `until ${iso(step.untilMs)}` : step.value ? short(step.value.message ?? step.value, 80) : '';
    lines.push(`  ${step.name.padEnd(24)} ${step.state.padEnd(9)} ${detail}`);
  }
  const last = job.logs.slice(-20);
  lines.push(`logs (${job.logs.length}${job.logs.length > last.length ? `, last ${last.length}` : ''}):`);
  for (const line of last) lines.push(`  ${iso(line.createdAt)} ${line.level.padEnd(5)} ${line.message}${line.data == null ? '' : ` ${short(line.data, 120)}`}`);
  return lines;
}

/**
 * One line for a lifecycle event from `client.watch`; `names` remembers what each task
 * runs, so results and failures say which activity they belong to.
 */
function describeEvent(e, names) {
  if (e.task !== undefined && e.name !== undefined && e.type.endsWith('Scheduled')) names.set(e.task, e.name);
  const task = e.task === undefined ? '' : `#${e.task} `;
  const known = e.name === undefined ? names.get(e.task) : e.name;
  const name = known === undefined ? '' : `${known} `;
  const parts = [];
  switch (e.type) {
    case 'instanceStarted':
      parts.push(`${e.name}${e.version ? ` ${e.version}` : ''}`, `input=${short(e.input)}`);
      break;
    case 'activityStarted':
      parts.push(`${task}${name}attempt ${e.attempt}`);
      break;
    case 'activityRetried':
      parts.push(`${task}${name}attempt ${e.attempt} at ${iso(e.retryAt)}`);
      break;
    case 'timerCreated':
      parts.push(`${task}fires at ${iso(e.fireAt)}`);
      break;
    case 'subOrchestrationScheduled':
    case 'detachedOrchestrationStarted':
      parts.push(`${task}${name}(${e.childInstanceId}) input=${short(e.input)}`);
      break;
    default:
      if (task || name) parts.push(`${task}${name}`.trim());
      if (e.input !== undefined) parts.push(`input=${short(e.input)}`);
      if (e.result !== undefined) parts.push(`result=${short(e.result)}`);
      if (e.output !== undefined) parts.push(`output=${short(e.output)}`);
      if (e.data !== undefined) parts.push(`data=${short(e.data)}`);
      if (e.value !== undefined) parts.push(`value=${short(e.value)}`);
      if (e.reason !== undefined) parts.push(`reason=${short(e.reason)}`);
      if (e.error !== undefined) parts.push(`error: ${errorText(e.error)}`);
      if (e.removed !== undefined) parts.push(`(${e.removed} events rewound)`);
  }
  return `${iso(e.timestamp)}  ${e.type.padEnd(26)} ${parts.join(' ')}`.trimEnd();
}

async function watch(client, id, values, out) {
  const since = values.since === undefined ? 'start' : values.since;
  if (since !== 'start' && since !== 'now') throw new UsageError(`--since must be 'start' or 'now', got '${since}'`);
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  let last = null;
  const names = new Map();
  try {
    for await (const event of client.watch(id, { since, signal: controller.signal })) {
      last = event;
      process.stdout.write(`${values.json ? JSON.stringify(event) : describeEvent(event, names)}\n`);
    }
  } catch (e) {
    if (e && e.code === 'ERR_NOT_FOUND') throw new OperationError(`no instance '${id}'`, 'ERR_NOT_FOUND');
    throw e;
  }
  if (controller.signal.aborted) return;
  if (last === null) {
    // since=now on a finished instance: say how it ended.
    const status = await client.getStatus(id);
    if (!values.json) out(`'${id}' is already ${status.status}`);
    if (status.status === 'Failed') throw new OperationError(`instance '${id}' failed: ${status.error}`, 'ERR_INSTANCE_FAILED');
    return;
  }
  if (last.type === 'instanceFailed') throw new OperationError(`instance '${id}' failed: ${errorText(last.error)}`, 'ERR_INSTANCE_FAILED');
}

async function retry(client, id, values, out) {
  let retried;
  try {
    retried = await client.retryInstance(id);
  } catch (e) {
    if (e && e.code === 'ERR_NOT_FOUND') throw new OperationError(`no instance '${id}'`, e.code);
    if (e && e.code === 'ERR_INVALID_STATE') throw new OperationError(e.message, e.code);
    throw e;
  }
  if (values.json) return out({ instanceId: id, retried });
  const children = retried.slice(1);
  out(`retrying '${id}' from its last good point${children.length ? `, with sub-orchestration${children.length === 1 ? '' : 's'} ${children.join(', ')}` : ''}`);
}

async function cancel(client, id, values, out) {
  const canceled = await client.cancelInstance(id, values.reason);
  // cancelInstance says false for a finished instance and for an unknown one alike.
  const info = canceled ? null : await client.getInstanceInfo(id);
  if (!canceled && info === null) throw new OperationError(`no instance '${id}'`, 'ERR_NOT_FOUND');
  if (values.json) return out({ instanceId: id, canceled });
  out(canceled
    ? `cancel requested for '${id}' (it was running)`
    : `'${id}' is not running (${info.storedStatus}): nothing to cancel`);
}

async function remove(client, id, values, out) {
  let deleted;
  try {
    deleted = await client.deleteInstance(id, { force: Boolean(values.force) });
  } catch (e) {
    if (e && e.code === 'ERR_INVALID_STATE') {
      const message = e.message.replace('{force: true}', '--force');
      throw new OperationError(message === e.message ? `${message} (--force deletes it anyway)` : message, e.code);
    }
    throw e;
  }
  if (deleted === 0) throw new OperationError(`no instance '${id}'`, 'ERR_NOT_FOUND');
  if (values.json) return out({ instanceId: id, deleted });
  out(`deleted ${deleted} instance${deleted === 1 ? '' : 's'}`);
}

async function runtimes(client, values, out) {
  const list = await client.listRuntimes();
  if (values.json) return out(list);
  if (list.length === 0) return out('no runtimes');
  out(table(['RUNTIME', 'NODE', 'HOST', 'PID', 'STARTED', 'HEARTBEAT', 'RUNS'], list.map((r) => [
    r.runtimeId,
    r.workerNodeId || '-',
    r.host || '-',
    String(r.pid),
    iso(r.startedAt),
    r.alive ? `${r.heartbeatAgeMs} ms ago` : `dead (${Math.round(r.heartbeatAgeMs / 1000)} s ago)`,
    `${r.orchestrations.length} orchestration${r.orchestrations.length === 1 ? '' : 's'}, ${r.activities.length} activit${r.activities.length === 1 ? 'y' : 'ies'}`,
  ])));
}

// ---- main ----

async function main(argv, out) {
  const { values, positionals } = parse(argv);
  if (values.help || positionals[0] === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const [command, ...args] = positionals;
  if (command === undefined) throw new UsageError('no command given');
  if (!Object.hasOwn(COMMANDS, command)) throw new UsageError(`unknown command '${command}' (commands: ${Object.keys(COMMANDS).join(', ')})`);
  const spec = COMMANDS[command];
  if (spec.id && args.length === 0) throw new UsageError(`'${command}' needs an instance ID`);
  if (spec.id && args[0] === '') throw new UsageError(`'${command}' needs an instance ID, got ''`);
  if (args.length > (spec.id ? 1 : 0)) throw new UsageError(`unexpected argument '${args[spec.id ? 1 : 0]}'`);
  const db = values.db !== undefined ? values.db : process.env.REPRISE_DB;
  if (db === undefined || db === '') throw new UsageError('--db is required (or set REPRISE_DB)');

  if (values.schema !== undefined && !/^[A-Za-z0-9_]{1,63}$/.test(values.schema)) {
    throw new UsageError(`--schema must be 1 to 63 letters, digits or underscores, got '${values.schema}'`);
  }
  if (values.schema !== undefined && /^pg_/i.test(values.schema)) {
    throw new UsageError(`--schema names starting with pg_ are reserved by PostgreSQL, got '${values.schema}'`);
  }

  const { Client } = require('..');
  // A malformed URL is a usage error (ERR_INVALID_ARGUMENT); an unreachable database is not.
  const provider = await openProvider(db, values.schema, command);
  const client = new Client(provider);
  const print = (value) => out(values.json ? JSON.stringify(value, null, 2) : value);
  if (command === 'list') return list(client, values, print);
  if (command === 'show') return show(client, args[0], values, print);
  if (command === 'cancel') return cancel(client, args[0], values, print);
  if (command === 'watch') return watch(client, args[0], values, print);
  if (command === 'retry') return retry(client, args[0], values, print);
  if (command === 'runtimes') return runtimes(client, values, print);
  return remove(client, args[0], values, print);
}

function exit(code) {
  // Let stdout and stderr drain (pipes may be asynchronous) before leaving.
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

main(process.argv.slice(2), (text) => process.stdout.write(`${text}\n`)).then(
  () => exit(0),
  (e) => {
    // The library's InvalidArgumentError (a malformed URL, say) is a usage error too.
    const usage = e instanceof UsageError || (e && e.code === 'ERR_INVALID_ARGUMENT');
    // Never echo a database password.
    const message = (e && e.message ? e.message : String(e)).replace(/(postgres(?:ql)?:\/\/[^:/@\s]*):[^@\s]*@/g, '$1:***@');
    if (jsonErrors) {
      const code = usage ? 'ERR_USAGE' : e && typeof e.code === 'string' ? e.code : 'ERR_REPRISE';
      process.stderr.write(`${JSON.stringify({ code, message })}\n`);
    } else {
      process.stderr.write(`reprise: ${message}\n`);
      if (usage) process.stderr.write("Run 'reprise --help' for usage.\n");
    }
    exit(usage ? 2 : 1);
  },
);
