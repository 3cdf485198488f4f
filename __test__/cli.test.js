'use strict';
// The `reprise` command-line tool, run as a child process against a SQLite file that a
// runtime in this process holds.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { SqliteProvider, Client, Runtime } = require('..');
const { dbPath, runtimeOptions, eventually, sleep, startEnv, databaseUrl } = require('./helpers');

const CLI = path.join(__dirname, '..', 'bin', 'reprise.js');

/** Runs the CLI; resolves {code, stdout, stderr}. */
function cli(args, env = {}) {
  let child;
  const done = new Promise((resolve) => {
    child = execFile(process.execPath, [CLI, ...args], { env: { ...process.env, REPRISE_DB: '', ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr });
    });
  });
  done.child = child;
  return done;
}

/** Resolves once process `pid` has `file` open (it has opened the store), on Linux. */
async function opened(pid, file) {
  const fdDir = `/proc/${pid}/fd`;
  if (!fs.existsSync(fdDir)) return sleep(1000);
  const target = fs.realpathSync(file);
  await eventually(() => {
    try {
      return fs.readdirSync(fdDir).some((fd) => {
        try {
          return fs.readlinkSync(`${fdDir}/${fd}`) === target;
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  }, 10000, 'the CLI to open the database');
}

function assertClean(r) {
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

test('reprise list shows and filters on stored statuses: Pending until claimed, Canceled once canceled', { timeout: 20000 }, async (t) => {
  const file = dbPath('cli-stored');
  const provider = await SqliteProvider.open(file);
  const client = new Client(provider);
  await client.startOrchestration('queued-1', 'Waiter');
  await client.startOrchestration('stopped-1', 'Waiter');
  const db = ['--db', file];
  let r = await cli([...db, 'list', '--status', 'Pending']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^queued-1\s+Waiter\s+-\s+Pending\s/m);
  assert.match(r.stdout, /^stopped-1\s+Waiter\s+-\s+Pending\s/m);
  r = await cli([...db, 'list', '--status', 'Running']);
  assert.equal(r.stdout.trim(), 'no instances', 'a stored-status filter: Pending is not Running here');

  const runtime = new Runtime(provider, runtimeOptions());
  runtime.registerOrchestration('Waiter', function* (ctx) {
    return yield ctx.waitForEvent('go');
  });
  await runtime.start();
  t.after(() => runtime.shutdown(5000));
  await client.cancelInstance('stopped-1', 'not needed');
  await client.waitForOrchestration('stopped-1', 5000);
  await eventually(async () => (await client.getInstanceInfo('queued-1')).storedStatus === 'Running', 5000, 'the first turn');
  r = await cli([...db, 'list', '--status', 'Canceled']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^stopped-1\s+Waiter\s+1\.0\.0\s+Canceled\s/m);
  assert.doesNotMatch(r.stdout, /queued-1/);
  r = await cli([...db, 'list', '--status', 'Running']);
  assert.match(r.stdout, /^queued-1\s+Waiter\s+1\.0\.0\s+Running\s/m);
  r = await cli([...db, 'show', 'stopped-1']);
  assert.match(r.stdout, /^status\s+Canceled$/m);
});

test('reprise list, show, cancel and delete against a live SQLite file', { timeout: 20000 }, async (t) => {
  const file = dbPath('cli');
  const provider = await SqliteProvider.open(file);
  const client = new Client(provider);
  const runtime = new Runtime(provider, runtimeOptions());
  runtime.registerActivity('Greet', async (ctx, who) => `hello ${who}`);
  runtime.registerActivity('Explode', async () => {
    throw new TypeError('kaboom');
  });
  runtime.registerOrchestration('Double', function* (ctx, n) {
    return n * 2;
  });
  runtime.registerOrchestration('Main', function* (ctx, who) {
    const greeting = yield ctx.scheduleActivity('Greet', who);
    yield ctx.scheduleTimer(5);
    const doubled = yield ctx.scheduleSubOrchestration('Double', 21);
    return { greeting, doubled };
  });
  runtime.registerOrchestration('Broken', function* (ctx) {
    yield ctx.scheduleActivity('Explode');
  });
  runtime.registerOrchestration('Waiter', function* (ctx) {
    return yield ctx.waitForEvent('go');
  });
  await runtime.start();
  t.after(() => runtime.shutdown(5000));

  await client.startOrchestration('main-1', 'Main', 'ada');
  await client.startOrchestration('main-2', 'Main', 'bob');
  await client.startOrchestration('broken-1', 'Broken');
  await client.startOrchestration('waiter-1', 'Waiter');
  assert.equal((await client.waitForOrchestration('main-1', 5000)).status, 'Completed');
  assert.equal((await client.waitForOrchestration('main-2', 5000)).status, 'Completed');
  assert.equal((await client.waitForOrchestration('broken-1', 5000)).status, 'Failed');
  await eventually(async () => (await client.readStoredHistory('waiter-1')).some((e) => e.kind === 'EventWaitStarted'), 5000, 'the wait');

  const db = ['--db', file];

  // list: a table of all six instances (two sub-orchestrations included).
  let r = await cli([...db, 'list']);
  assertClean(r);
  assert.equal(r.code, 0, r.stderr);
  let lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /^ID\s+NAME\s+VERSION\s+STATUS\s+CREATED\s+UPDATED$/);
  assert.equal(lines.length, 7);
  assert.match(r.stdout, /^main-1\s+Main\s+1\.0\.0\s+Completed\s+\d{4}-\d\d-\d\dT/m);
  assert.match(r.stdout, /^main-1:1:3\s+Double\s+1\.0\.0\s+Completed/m);
  assert.match(r.stdout, /^broken-1\s+Broken\s+1\.0\.0\s+Failed/m);
  assert.match(r.stdout, /^waiter-1\s+Waiter\s+1\.0\.0\s+Running/m);
  assert.doesNotMatch(r.stdout, /next cursor/);

  // list --json with a status filter, via REPRISE_DB; then paging with --limit and --cursor.
  r = await cli(['list', '--status', 'Completed', '--json'], { REPRISE_DB: `sqlite:${file}` });
  assert.equal(r.code, 0, r.stderr);
  let page = JSON.parse(r.stdout);
  assert.deepEqual(page.instances.map((i) => i.instanceId).sort(), ['main-1', 'main-1:1:3', 'main-2', 'main-2:1:3']);
  assert.ok(page.instances.every((i) => i.status === 'Completed'));
  assert.equal(page.nextCursor, null);
  r = await cli([...db, 'list', '--limit', '4']);
  const cursor = r.stdout.match(/^next cursor: (\S+)$/m)[1];
  r = await cli([...db, '--json', 'list', '--cursor', cursor]);
  page = JSON.parse(r.stdout);
  assert.equal(page.instances.length, 2);
  r = await cli([...db, 'list', '--name', 'Broken', '--status', 'Failed', '--json']);
  assert.deepEqual(JSON.parse(r.stdout).instances.map((i) => i.instanceId), ['broken-1']);

  // show: header and a timeline line per event.
  r = await cli([...db, 'show', 'main-1']);
  assertClean(r);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^status\s+Completed$/m);
  assert.match(r.stdout, /^output\s+\{"greeting":"hello ada","doubled":42\}$/m);
  assert.match(r.stdout, /^\s+\+0ms\s+ExecutionStarted\s+Main 1\.0\.0 input="ada"$/m);
  assert.match(r.stdout, /^\s+\+\d+ms\s+ActivityScheduled\s+#1\s+activity Greet input="ada"$/m);
  assert.match(r.stdout, /^\s+\+\d+ms\s+ActivityCompleted\s+#1\s+activity Greet result="hello ada"$/m);
  assert.match(r.stdout, /^\s+\+\d+ms\s+TimerCreated\s+#2\s+timer fires at \d{4}-\d\d-\d\dT[\d:.]+Z \(in 5ms\)$/m);
  assert.match(r.stdout, /^\s+\+\d+ms\s+TimerFired\s+#2\s+timer fired$/m);
  assert.match(r.stdout, /^\s+\+\d+ms\s+ChildScheduled\s+#3\s+sub-orchestration Double \(main-1:1:3\) input=21$/m);
  assert.match(r.stdout, /^\s+\+\d+ms\s+ChildCompleted\s+#3\s+sub-orchestration Double \(main-1:1:3\) output=42$/m);
  assert.match(r.stdout, /^\s+\+\d+ms\s+ExecutionCompleted\s+output=\{"greeting":"hello ada","doubled":42\}$/m);

  r = await cli([...db, 'show', 'broken-1']);
  assert.match(r.stdout, /^error\s+kaboom \(ERR_TASK_FAILED\)$/m);
  assert.match(r.stdout, /ActivityFailed\s+#1\s+activity Explode failed: TypeError: kaboom$/m);

  r = await cli([...db, 'show', 'main-1', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const shown = JSON.parse(r.stdout);
  assert.equal(shown.instance.instanceId, 'main-1');
  assert.equal(shown.executionId, 1);
  assert.deepEqual(shown.history, await client.readStoredHistory('main-1'));

  // cancel the running instance; a second cancel finds it finished.
  r = await cli([...db, 'cancel', 'waiter-1', '--reason', 'from the cli']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /it was running/);
  const canceled = await client.waitForOrchestration('waiter-1', 5000);
  assert.equal(canceled.status, 'Failed');
  assert.equal(canceled.error, 'canceled: from the cli');
  r = await cli([...db, '--json', 'cancel', 'waiter-1']);
  assert.deepEqual(JSON.parse(r.stdout), { instanceId: 'waiter-1', canceled: false });

  // delete: a running instance needs --force; a finished one goes with its child.
  await client.startOrchestration('waiter-2', 'Waiter');
  r = await cli([...db, 'delete', 'waiter-2']);
  assertClean(r);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "reprise: instance 'waiter-2' is running; cancel it first or pass --force\n");
  assert.equal(r.stdout, '');
  r = await cli([...db, 'delete', 'waiter-2', '--force']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'deleted 1 instance\n');
  assert.equal(await client.getInstanceInfo('waiter-2'), null);
  r = await cli([...db, 'delete', 'main-2']);
  assert.equal(r.stdout, 'deleted 2 instances\n');
  r = await cli([...db, '--json', 'delete', 'main-2']);
  assert.equal(r.code, 1);
  assert.deepEqual(JSON.parse(r.stderr), { code: 'ERR_NOT_FOUND', message: "no instance 'main-2'" });

  // Operation errors: exit 1, one clear line, no stack trace.
  for (const args of [[...db, 'show', 'no-such-id'], [...db, 'show', 'main-1', '--execution', '7'], ['--db', path.join(path.dirname(file), 'missing.db'), 'list'], ['--db', 'postgres://u:secret@127.0.0.1:1/x', 'list']]) {
    r = await cli(args);
    assertClean(r);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, /^reprise: (no instance 'no-such-id'|instance 'main-1' has no history for execution 7|no database at |.*cannot connect to PostgreSQL)/);
    assert.doesNotMatch(r.stderr, /secret/);
  }

  // Usage errors: exit 2.
  const usage = [
    [[...db], /no command given/],
    [[...db, 'frobnicate'], /unknown command 'frobnicate'/],
    [[...db, 'show'], /'show' needs an instance ID/],
    [[...db, 'delete'], /'delete' needs an instance ID/],
    [['list'], /--db is required/],
    [[...db, 'list', '--status', 'Sleeping'], /--status must be one of/],
    [[...db, 'list', '--limit', 'ten'], /--limit must be an integer/],
    [[...db, 'list', '--force'], /'list' takes no --force/],
    [[...db, 'list', '--bogus'], /unknown option '--bogus'/],
    [[...db, 'list', '--cursor', 'nonsense'], /cursor/],
    [[...db, '--schema', 'x', 'list'], /--schema applies to PostgreSQL only/],
    [['--db', 'mysql://localhost/x', 'list'], /neither a SQLite path nor a postgres:\/\/ URL/],
    [['--db', 'postgres://u:secret@[bad/x', 'list'], /invalid PostgreSQL URL 'postgres:\/\/u:\*\*\*@\[bad/],
    [[...db, 'watch'], /'watch' needs an instance ID/],
    [[...db, 'watch', 'main-1', '--since', 'later'], /--since must be 'start' or 'now'/],
    [[...db, 'retry', 'main-1', '--force'], /'retry' takes no --force/],
  ];
  for (const [args, message] of usage) {
    r = await cli(args);
    assertClean(r);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stdout, '');
  }

  r = await cli(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Usage: reprise/);
});

test('reprise watch follows a live instance from another process; reprise retry revives a failed one', { timeout: 30000 }, async (t) => {
  const file = dbPath('cli-follow');
  const provider = await SqliteProvider.open(file);
  const client = new Client(provider);
  const runtime = new Runtime(provider, runtimeOptions({ pollIntervalMs: 50 }));
  let healthy = false;
  const calls = { Fetch: 0, Store: 0 };
  runtime.registerActivity('Fetch', async () => {
    calls.Fetch += 1;
    return 41;
  });
  runtime.registerActivity('Store', async (ctx, n) => {
    calls.Store += 1;
    if (!healthy) throw new Error('database is down');
    return n + 1;
  });
  runtime.registerOrchestration('Pipeline', function* (ctx) {
    const n = yield ctx.scheduleActivity('Fetch');
    ctx.setCustomStatus('storing');
    return yield ctx.scheduleActivity('Store', n);
  });
  runtime.registerOrchestration('Waiter', function* (ctx) {
    return yield ctx.waitForEvent('go');
  });
  await runtime.start();
  t.after(() => runtime.shutdown(5000));
  const db = ['--db', file];

  await client.startOrchestration('pipe-1', 'Pipeline');
  assert.equal((await client.waitForOrchestration('pipe-1', 5000)).status, 'Failed');

  // watch of a failed instance: its story, then exit 1.
  let r = await cli([...db, 'watch', 'pipe-1']);
  assertClean(r);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^\S+Z  instanceStarted\s+Pipeline 1\.0\.0 input=null$/m);
  assert.match(r.stdout, /^\S+Z  activityCompleted\s+#1 Fetch result=41$/m);
  assert.match(r.stdout, /^\S+Z  activityFailed\s+#2 Store error: database is down$/m);
  assert.match(r.stdout, /^\S+Z  customStatusChanged\s+value="storing"$/m);
  assert.match(r.stdout, /^\S+Z  instanceFailed\s+error: TaskFailedError: database is down \(ERR_TASK_FAILED\)$/m);
  assert.equal(r.stderr, "reprise: instance 'pipe-1' failed: TaskFailedError: database is down (ERR_TASK_FAILED)\n");

  // retry from the CLI; the runtime here finishes it without fetching again.
  healthy = true;
  r = await cli([...db, 'retry', 'pipe-1']);
  assertClean(r);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "retrying 'pipe-1' from its last good point\n");
  assert.equal((await client.waitForOrchestration('pipe-1', 5000)).output, 42);
  assert.deepEqual(calls, { Fetch: 1, Store: 2 });
  r = await cli([...db, 'retry', 'pipe-1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^reprise: instance 'pipe-1' is Completed; only a Failed instance can be retried\n/);
  r = await cli([...db, 'retry', 'nobody']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^reprise: no instance 'nobody'/);

  // watch --json of the retried instance: one JSON object per line, ending completed.
  r = await cli([...db, 'watch', 'pipe-1', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout.trim().split('\n').map((line) => JSON.parse(line));
  assert.deepEqual(events.map((e) => e.type).filter((t) => t.startsWith('instance')), ['instanceStarted', 'instanceRetried', 'instanceCompleted']);
  assert.equal(events.at(-1).output, 42);

  // A live watch in another process sees what happens after it began, then exits 0.
  await client.startOrchestration('wait-1', 'Waiter');
  await eventually(async () => (await client.readStoredHistory('wait-1')).length >= 2, 5000, 'the wait');
  const watching = cli([...db, 'watch', 'wait-1', '--since', 'now']);
  // Raise the event only once the watcher is there: it has opened the store (a slow start
  // under load took longer than any fixed pause), and a moment more for its first read.
  await opened(watching.child.pid, file);
  await sleep(200);
  await client.raiseEvent('wait-1', 'go', 'yes');
  r = await watching;
  assertClean(r);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /eventReceived\s+go data="yes"$/);
  assert.match(lines.at(-1), /instanceCompleted\s+output="yes"$/);

  r = await cli([...db, 'watch', 'nobody']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "reprise: no instance 'nobody'\n");
});

test('reprise list, show, retry and watch on PostgreSQL, against a runtime in another process', { timeout: 30000 }, async () => {
  const schema = `t_cli_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  let healthy = false;
  const env = await startEnv((rt) => {
    rt.registerActivity('Charge', async (ctx, n) => {
      if (!healthy) throw new Error('card service down');
      return n * 2;
    });
    rt.registerOrchestration('Pay', function* (ctx, n) {
      return yield ctx.scheduleActivity('Charge', n);
    });
  }, runtimeOptions({ pollIntervalMs: 50 }), `pg:${schema}`);
  try {
    const db = ['--db', databaseUrl, '--schema', schema];
    await env.client.startOrchestration('pay-1', 'Pay', 21);
    assert.equal((await env.client.waitForOrchestration('pay-1', 10000)).status, 'Failed');
    let r = await cli([...db, 'list', '--status', 'Failed']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pay-1\s+Pay\s+1\.0\.0\s+Failed/m);
    healthy = true;
    r = await cli([...db, '--json', 'retry', 'pay-1']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { instanceId: 'pay-1', retried: ['pay-1'] });
    r = await cli([...db, 'watch', 'pay-1']);
    assertClean(r);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /instanceRetried\s+error: .*card service down.*\(2 events rewound\)$/m);
    assert.match(r.stdout, /instanceCompleted\s+output=42$/m);
    r = await cli([...db, 'show', 'pay-1']);
    assert.match(r.stdout, /ExecutionRetried\s+retried after: .*card service down/);
  } finally {
    await env.drop();
  }
});
