'use strict';
// How the `reprise` CLI refuses what it does not understand and reports what went wrong:
// strict flags per command, exit codes as the README promises them, and `--json` errors.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { SqliteProvider, Client, Runtime } = require('..');
const { dbPath, runtimeOptions, psql, uniqueSchema, databaseUrl } = require('./helpers');

const CLI = path.join(__dirname, '..', 'bin', 'reprise.js');
const GLOBAL_FLAGS = ['--db', '--schema', '--json', '--help'];
const FLAGS = {
  list: ['--status', '--name', '--limit', '--cursor'],
  show: ['--execution'],
  watch: ['--since'],
  retry: [],
  cancel: ['--reason'],
  delete: ['--force'],
};

/** Runs the CLI; resolves {code, stdout, stderr}. */
function cli(args, env = {}) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, REPRISE_DB: '', ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr });
    });
  });
}

/** A SQLite file holding a Pending instance 'pending-1' (no runtime ever claims it). */
async function store(name) {
  const file = dbPath(name);
  const client = new Client(await SqliteProvider.open(file));
  await client.startOrchestration('pending-1', 'Waiter');
  return { file, client, db: ['--db', file] };
}

/** A usage error: exit 2, nothing on stdout, one message and the hint on stderr. */
function assertUsage(r, message, what) {
  assert.equal(r.code, 2, `${what}: exit ${r.code}, stderr ${r.stderr}`);
  assert.equal(r.stdout, '', what);
  assert.match(r.stderr, /^reprise: [^\n]+\nRun 'reprise --help' for usage\.\n$/, what);
  assert.match(r.stderr, message, what);
}

/** The one JSON line on stderr of a failed `--json` run, with its exit code checked. */
function jsonError(r, code, what) {
  assert.equal(r.code, code, `${what}: exit ${r.code}, stderr ${r.stderr}`);
  assert.equal(r.stdout, '', what);
  assert.match(r.stderr, /^\{[^\n]*\}\n$/, `${what}: one JSON line on stderr, got ${r.stderr}`);
  const error = JSON.parse(r.stderr);
  assert.deepEqual(Object.keys(error).sort(), ['code', 'message'], what);
  assert.equal(typeof error.message, 'string', what);
  assert.doesNotMatch(error.message, /^reprise:/, what);
  return error;
}

test('every command refuses an unknown flag and names the flags it knows', async () => {
  const { db } = await store('cli-unknown');
  for (const [command, flags] of Object.entries(FLAGS)) {
    const args = command === 'list' ? [command] : [command, 'pending-1'];
    for (const bogus of ['--bogus', '--bogus=3', '-x', '--forse']) {
      const r = await cli([...db, ...args, bogus]);
      const what = `${args.join(' ')} ${bogus}`;
      assertUsage(r, new RegExp(`unknown option '${bogus.split('=')[0]}'`), what);
      for (const flag of [...flags, ...GLOBAL_FLAGS]) assert.ok(r.stderr.includes(flag), `${what}: ${r.stderr} lacks ${flag}`);
      for (const [other, otherFlags] of Object.entries(FLAGS)) {
        if (other !== command) for (const flag of otherFlags) assert.ok(!r.stderr.includes(flag), `${what}: ${r.stderr} names ${other}'s ${flag}`);
      }
    }
  }
  // The command is known wherever the flag stands.
  let r = await cli([...db, '--bogus', 'show', 'pending-1']);
  assertUsage(r, /unknown option '--bogus' \('show' takes: --execution; global: /, '--bogus show');
  // Without a command (or with an unknown one): the global flags and every command's.
  for (const args of [['--bogus'], ['--bogus', 'frobnicate']]) {
    r = await cli([...db, ...args]);
    assertUsage(r, /unknown option '--bogus'/, args.join(' '));
    for (const flag of [...GLOBAL_FLAGS, ...Object.values(FLAGS).flat()]) assert.ok(r.stderr.includes(flag), `${r.stderr} lacks ${flag}`);
  }
  // A misspelt flag is reported as such, not as an unknown command made of its value.
  assertUsage(await cli(['--databse', 'x.db', 'list']), /unknown option '--databse'/, '--databse x.db list');
});

test('a flag of another command is refused, with the flags the command does take', async () => {
  const { db } = await store('cli-wrong');
  const cases = [
    [['list', '--force'], 'list', '--force'],
    [['list', '--reason', 'r'], 'list', '--reason'],
    [['show', 'pending-1', '--force'], 'show', '--force'],
    [['show', 'pending-1', '--since', 'now'], 'show', '--since'],
    [['watch', 'pending-1', '--execution', '1'], 'watch', '--execution'],
    [['retry', 'pending-1', '--since', 'now'], 'retry', '--since'],
    [['cancel', 'pending-1', '--limit', '3'], 'cancel', '--limit'],
    [['cancel', 'pending-1', '--force'], 'cancel', '--force'],
    [['delete', 'pending-1', '--status', 'Failed'], 'delete', '--status'],
    [['delete', 'pending-1', '--reason', 'r'], 'delete', '--reason'],
  ];
  for (const [args, command, flag] of cases) {
    const r = await cli([...db, ...args]);
    const what = args.join(' ');
    assertUsage(r, new RegExp(`'${command}' takes no ${flag}`), what);
    for (const own of [...FLAGS[command], ...GLOBAL_FLAGS]) assert.ok(r.stderr.includes(own), `${what}: ${r.stderr} lacks ${own}`);
  }
});

test('a flag without its value, a value for a switch and a repeated flag are usage errors', async () => {
  const { file, db, client } = await store('cli-values');
  const cases = [
    [['list', '--limit'], /--limit needs a value/],
    [['list', '--name'], /--name needs a value/],
    [['list', '--status', ''], /--status needs a value/],
    [['list', '--cursor='], /--cursor needs a value/],
    [['show', 'pending-1', '--execution'], /--execution needs a value/],
    [['show', 'pending-1', '--execution', '--json'], /--execution needs a value, got '--json'/],
    [['watch', 'pending-1', '--since'], /--since needs a value/],
    [['cancel', 'pending-1', '--reason'], /--reason needs a value/],
    [['cancel', 'pending-1', '--reason', '--force'], /--reason needs a value, got '--force'/],
    [['list', '--schema'], /--schema needs a value/],
    [['delete', 'pending-1', '--force=false'], /--force takes no value, got 'false'/],
    [['list', '--help=1'], /--help takes no value/],
    [['list', '--limit', '2', '--limit', '3'], /--limit given twice/],
    [['list', '--status', 'Running', '--status=Failed'], /--status given twice/],
  ];
  for (const [args, message] of cases) assertUsage(await cli([...db, ...args]), message, args.join(' '));
  assertUsage(await cli(['list', '--db']), /--db needs a value/, 'list --db');
  assertUsage(await cli(['list', '--db', file, '--db', file]), /--db given twice/, '--db twice');
  // A value that starts with a dash is given with `=`.
  const r = await cli([...db, 'cancel', 'pending-1', '--reason=-not a flag-']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /cancel requested for 'pending-1'/);
  const info = await client.getInstanceInfo('pending-1');
  assert.equal(info.instanceId, 'pending-1');
});

test('numbers are whole and in range, and say which flag is wrong', async () => {
  const { db } = await store('cli-numbers');
  for (const bad of ['0', '-1', '1.5', '1e3', 'ten', '0x10', ' 5', '10001', '99999999999999999999']) {
    const r = await cli([...db, 'list', `--limit=${bad}`]);
    assertUsage(r, /--limit must be an integer from 1 to 10000, got '/, `--limit=${bad}`);
    assert.ok(r.stderr.includes(`got '${bad}'`), r.stderr);
    assert.doesNotMatch(r.stderr, /options\./);
  }
  assert.equal((await cli([...db, 'list', '--limit', '10000'])).code, 0);
  for (const bad of ['0', '-3', '2.0', 'one', '9007199254740993']) {
    const r = await cli([...db, 'show', 'pending-1', `--execution=${bad}`]);
    assertUsage(r, /--execution must be an integer >= 1, got '/, `--execution=${bad}`);
  }
});

test('cancel and delete of an unknown instance exit 1, like show, watch and retry', async () => {
  const { db } = await store('cli-unknown-id');
  for (const command of ['show', 'watch', 'retry', 'cancel', 'delete']) {
    const r = await cli([...db, command, 'nobody']);
    assert.equal(r.code, 1, `${command}: ${r.stderr}`);
    assert.equal(r.stdout, '', command);
    assert.equal(r.stderr, "reprise: no instance 'nobody'\n", command);
  }
  // Known instances are no error: a Pending one is canceled, then deleted.
  let r = await cli([...db, 'cancel', 'pending-1']);
  assert.equal(r.code, 0, r.stderr);
  r = await cli([...db, 'delete', 'pending-1', '--force']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'deleted 1 instance\n');
  r = await cli([...db, 'delete', 'pending-1']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "reprise: no instance 'pending-1'\n");
});

test('cancel of a finished instance exits 0 and says how it ended', { timeout: 20000 }, async (t) => {
  const { file, db, client } = await store('cli-finished');
  const runtime = new Runtime(await SqliteProvider.open(file), runtimeOptions());
  runtime.registerOrchestration('Quick', function* () {
    return 1;
  });
  runtime.registerOrchestration('Waiter', function* (ctx) {
    return yield ctx.waitForEvent('go');
  });
  await runtime.start();
  t.after(() => runtime.shutdown(5000));
  await client.startOrchestration('quick-1', 'Quick');
  await client.waitForOrchestration('quick-1', 5000);
  let r = await cli([...db, 'cancel', 'quick-1']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "'quick-1' is not running (Completed): nothing to cancel\n");
  r = await cli([...db, '--json', 'cancel', 'quick-1']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { instanceId: 'quick-1', canceled: false });
});

test('with --json every error is one JSON object on stderr with a code and a message', { timeout: 30000 }, async (t) => {
  const { file, db, client } = await store('cli-json');
  const runtime = new Runtime(await SqliteProvider.open(file), runtimeOptions());
  runtime.registerOrchestration('Broken', function* () {
    throw Object.assign(new Error('it broke'), { code: 'E_BROKEN' });
  });
  runtime.registerOrchestration('Waiter', function* (ctx) {
    return yield ctx.waitForEvent('go');
  });
  await runtime.start();
  t.after(() => runtime.shutdown(5000));
  await client.startOrchestration('broken-1', 'Broken');
  assert.equal((await client.waitForOrchestration('broken-1', 5000)).status, 'Failed');
  await client.startOrchestration('waiter-1', 'Waiter');

  // Usage errors, wherever --json stands: code ERR_USAGE, exit 2.
  const usage = [
    [['--json'], /no command given/],
    [['--json', 'frobnicate'], /unknown command 'frobnicate'/],
    [['list', '--bogus', '--json'], /unknown option '--bogus'/],
    [['--json', 'show'], /'show' needs an instance ID/],
    [['show', 'a', 'b', '--json'], /unexpected argument 'b'/],
    [['--json', 'list', '--limit', '0'], /--limit must be an integer/],
    [['--json', 'list', '--status', 'Sleeping'], /--status must be one of/],
    [['--json', 'list', '--limit'], /--limit needs a value/],
    [['list', '--json=yes'], /--json takes no value, got 'yes'/],
    [['cancel', 'x', '--json', '--json'], /--json given twice/],
    [['--json', 'delete', 'x', '--reason', 'r'], /'delete' takes no --reason/],
    [['--json', 'watch', 'x', '--since', 'later'], /--since must be 'start' or 'now'/],
    [['--json', 'list', '--cursor', 'nonsense'], /cursor/],
    [['--json', 'show', ''], /'show' needs an instance ID, got ''/],
    [['--json', '--schema', 'x', 'list'], /--schema applies to PostgreSQL only/],
  ];
  for (const [args, message] of usage) {
    const what = args.join(' ');
    const error = jsonError(await cli([...db, ...args]), 2, what);
    assert.equal(error.code, 'ERR_USAGE', what);
    assert.match(error.message, message, what);
  }
  let error = jsonError(await cli(['--json', 'list']), 2, 'no --db');
  assert.equal(error.code, 'ERR_USAGE');
  assert.match(error.message, /--db is required/);
  error = jsonError(await cli(['--json', '--db', 'mysql://h/x', 'list']), 2, 'mysql');
  assert.equal(error.code, 'ERR_USAGE');

  // Operation errors: the error's code, exit 1.
  const operations = [
    [['show', 'nobody'], 'ERR_NOT_FOUND', /^no instance 'nobody'$/],
    [['show', 'broken-1', '--execution', '9'], 'ERR_NOT_FOUND', /no history for execution 9/],
    [['watch', 'nobody'], 'ERR_NOT_FOUND', /^no instance 'nobody'$/],
    [['retry', 'nobody'], 'ERR_NOT_FOUND', /^no instance 'nobody'$/],
    [['cancel', 'nobody'], 'ERR_NOT_FOUND', /^no instance 'nobody'$/],
    [['delete', 'nobody'], 'ERR_NOT_FOUND', /^no instance 'nobody'$/],
    [['retry', 'waiter-1'], 'ERR_INVALID_STATE', /only a Failed instance can be retried/],
    [['delete', 'waiter-1'], 'ERR_INVALID_STATE', /is running; cancel it first or pass --force/],
    [['watch', 'broken-1'], 'ERR_INSTANCE_FAILED', /^instance 'broken-1' failed: .*it broke/],
    [['watch', 'broken-1', '--since', 'now'], 'ERR_INSTANCE_FAILED', /^instance 'broken-1' failed: it broke/],
  ];
  for (const [args, code, message] of operations) {
    const what = args.join(' ');
    const r = await cli([...db, '--json', ...args]);
    if (what === 'watch broken-1') {
      // watch --json prints the events on stdout, then the failure on stderr.
      assert.match(r.stdout.trim().split('\n').at(-1), /"type":"instanceFailed"/);
      r.stdout = '';
    }
    error = jsonError(r, 1, what);
    assert.equal(error.code, code, what);
    assert.match(error.message, message, what);
  }
  error = jsonError(await cli(['--json', '--db', path.join(path.dirname(file), 'missing.db'), 'list']), 1, 'missing file');
  assert.equal(error.code, 'ERR_NOT_FOUND');
  assert.match(error.message, /^no database at /);
  error = jsonError(await cli(['--json', '--db', 'postgres://u:secret@127.0.0.1:1/x', 'list']), 1, 'unreachable');
  assert.equal(error.code, 'ERR_UNAVAILABLE');
  assert.doesNotMatch(error.message, /secret/);

  // Without --json, the same errors stay one plain line.
  const r = await cli([...db, 'delete', 'nobody']);
  assert.equal(r.stderr, "reprise: no instance 'nobody'\n");
});

test('--schema naming a PostgreSQL schema that does not exist is an error and creates nothing', { timeout: 30000 }, async (t) => {
  const schema = uniqueSchema('cli_missing');
  t.after(() => psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
  for (const json of [false, true]) {
    const r = await cli(['--db', databaseUrl, '--schema', schema, ...(json ? ['--json'] : []), 'list']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    if (json) {
      const error = JSON.parse(r.stderr);
      assert.equal(error.code, 'ERR_NOT_FOUND');
      assert.match(error.message, new RegExp(`schema '${schema}'`));
    } else {
      assert.match(r.stderr, new RegExp(`^reprise: .*schema '${schema}'`));
    }
    assert.equal(psql(`SELECT count(*) FROM pg_namespace WHERE nspname = '${schema}'`), '0', 'the schema was created');
  }
});
