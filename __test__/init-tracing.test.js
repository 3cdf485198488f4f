'use strict';
// initTracing (duroxide-node's): every line to a file, at a level and in a format; and the
// runtime's own log options (logFormat, logLevel, serviceName, serviceVersion). Tracing is
// process-wide, so each case runs in a child process of its own.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { SqliteProvider, Runtime, initTracing, InvalidArgumentError } = require('..');
const { tempDir } = require('./helpers');

const ROOT = JSON.stringify(path.join(__dirname, '..'));

// argv[1]: a JSON object: {init?: initTracing options, runtime?: Runtime options, tag}.
// Runs one orchestration with an info and a debug trace line and an activity trace line.
const SCRIPT = `
const { SqliteProvider, Client, Runtime, initTracing } = require(${ROOT});
const spec = JSON.parse(process.argv[1]);
(async () => {
  if (spec.init) initTracing(spec.init);
  const provider = await SqliteProvider.inMemory();
  const runtime = new Runtime(provider, spec.runtime || {});
  runtime.registerActivity('Greet', async (ctx, name) => { ctx.traceInfo('activity-' + spec.tag); return 'hi ' + name; });
  runtime.registerOrchestration('Traced', function* (ctx, name) {
    ctx.traceInfo('hello-' + spec.tag);
    ctx.traceDebug('debug-' + spec.tag);
    return yield ctx.scheduleActivity('Greet', name);
  });
  await runtime.start();
  const client = new Client(provider);
  await client.startOrchestration('traced-' + spec.tag, 'Traced', 'bo');
  const r = await client.waitForOrchestration('traced-' + spec.tag, 10000);
  await runtime.shutdown();
  console.log(r.output);
})().catch((e) => { console.log(JSON.stringify({ code: e.code, name: e.name, message: e.message })); process.exitCode = 3; });
`;

function run(spec, env = {}, script = SCRIPT) {
  const e = { ...process.env };
  delete e.RUST_LOG;
  return spawnSync(process.execPath, ['-e', script, JSON.stringify(spec)], { env: { ...e, ...env }, encoding: 'utf8', timeout: 30000 });
}

const tag = () => Math.random().toString(36).slice(2, 10);
const jsonLines = (text) =>
  text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));

test('initTracing writes JSON lines to the file: the orchestration and activity traces with level, message and instance id', () => {
  const file = path.join(tempDir(), 'logs', 'reprise.log'); // the folder does not exist yet
  const t = tag();
  const r = run({ init: { logFile: file, logFormat: 'json', logLevel: 'info' }, tag: t });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(r.stdout.trim(), 'hi bo');
  assert.equal(r.stderr, '', 'nothing goes to stderr');
  const lines = jsonLines(fs.readFileSync(file, 'utf8'));
  const hello = lines.filter((l) => l.fields.message === `hello-${t}`);
  assert.equal(hello.length, 1, 'traced once: silent during replay');
  assert.equal(hello[0].level, 'INFO');
  assert.equal(hello[0].target, 'reprise::orchestration');
  assert.equal(hello[0].span.instance_id, `traced-${t}`);
  assert.equal(hello[0].span.execution_id, 1);
  const activity = lines.find((l) => l.fields.message === `activity-${t}`);
  assert.ok(activity, JSON.stringify(lines));
  assert.equal(activity.target, 'reprise::activity');
  assert.equal(activity.span.instance_id, `traced-${t}`);
  assert.ok(lines.some((l) => l.fields.message === 'runtime started'));
  assert.ok(!lines.some((l) => l.fields.message === `debug-${t}`), 'debug is below info');

  // Appends: a second process adds its lines after the first's.
  const t2 = tag();
  assert.equal(run({ init: { logFile: file, logFormat: 'json', logLevel: 'info' }, tag: t2 }).status, 0);
  const again = jsonLines(fs.readFileSync(file, 'utf8'));
  assert.ok(again.length > lines.length);
  assert.ok(again.some((l) => l.fields.message === `hello-${t}`) && again.some((l) => l.fields.message === `hello-${t2}`));
});

test('logLevel filters: a debug line is absent at info and present at debug; compact is the default format', () => {
  const dir = tempDir();
  const t = tag();
  const atInfo = path.join(dir, 'info.log');
  assert.equal(run({ init: { logFile: atInfo, logLevel: 'info' }, tag: t }).status, 0);
  const info = fs.readFileSync(atInfo, 'utf8');
  assert.ok(info.includes(`hello-${t}`), info);
  assert.ok(!info.includes(`debug-${t}`), info);
  const line = info.split('\n').find((l) => l.includes(`hello-${t}`));
  assert.match(line, /INFO/);
  assert.ok(line.includes(`instance_id=traced-${t}`), line);
  assert.throws(() => JSON.parse(line), 'compact, not JSON');

  const atDebug = path.join(dir, 'debug.log');
  assert.equal(run({ init: { logFile: atDebug, logLevel: 'debug' }, tag: t }).status, 0);
  assert.ok(fs.readFileSync(atDebug, 'utf8').includes(`debug-${t}`));

  // No level: warnings only, so a healthy run writes nothing.
  const quiet = path.join(dir, 'quiet.log');
  assert.equal(run({ init: { logFile: quiet }, tag: t }).status, 0);
  assert.equal(fs.readFileSync(quiet, 'utf8'), '');
});

test('RUST_LOG overrides logLevel', () => {
  const file = path.join(tempDir(), 'rust-log.log');
  const t = tag();
  const r = run({ init: { logFile: file, logLevel: 'warn' }, tag: t }, { RUST_LOG: 'reprise::orchestration=debug' });
  assert.equal(r.status, 0, r.stderr);
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text.includes(`debug-${t}`), text);
  assert.ok(!text.includes(`activity-${t}`), 'the activity target is not enabled by RUST_LOG');
});

const CALLS = `
const { SqliteProvider, Runtime, initTracing } = require(${ROOT});
const spec = JSON.parse(process.argv[1]);
const report = (e) => console.log(JSON.stringify({ code: e.code, name: e.name, message: e.message }));
(async () => {
  if (spec.first) initTracing(spec.first);
  if (spec.startRuntime) {
    const runtime = new Runtime(await SqliteProvider.inMemory());
    await runtime.start();
    await runtime.shutdown();
  }
  try { initTracing(spec.second); console.log('null'); } catch (e) { report(e); }
})();
`;

function secondCall(spec) {
  const r = run(spec, {}, CALLS);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('a second initTracing throws InvalidStateError', () => {
  const dir = tempDir();
  const e = secondCall({ first: { logFile: path.join(dir, 'a.log') }, second: { logFile: path.join(dir, 'b.log') } });
  assert.equal(e.code, 'ERR_INVALID_STATE');
  assert.equal(e.name, 'InvalidStateError');
  assert.match(e.message, /already configured \(by an earlier initTracing call\)/);
  assert.ok(!fs.existsSync(path.join(dir, 'b.log')));
});

test('initTracing after a runtime started throws InvalidStateError', () => {
  const file = path.join(tempDir(), 'late.log');
  const e = secondCall({ startRuntime: true, second: { logFile: file } });
  assert.equal(e.code, 'ERR_INVALID_STATE');
  assert.match(e.message, /by the first runtime's start.*before the first runtime starts/);
  assert.ok(!fs.existsSync(file));
});

test('a log file that cannot be created throws an error naming it, and a later call with a good path works', () => {
  const bad = '/proc/reprise-no-such-folder/trace.log';
  const good = path.join(tempDir(), 'good.log');
  const script = `
  const { initTracing } = require(${ROOT});
  const out = [];
  try { initTracing({ logFile: ${JSON.stringify(bad)} }); } catch (e) { out.push({ code: e.code, message: e.message }); }
  initTracing({ logFile: ${JSON.stringify(good)} });
  console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const [e] = JSON.parse(r.stdout);
  assert.equal(e.code, 'ERR_INVALID_ARGUMENT');
  assert.ok(e.message.includes(bad), e.message);
  assert.ok(fs.existsSync(good));
});

test('Runtime options logFormat json, logLevel, serviceName and serviceVersion: every line of the runtime carries the service', () => {
  const t = tag();
  const r = run({ runtime: { logFormat: 'json', logLevel: 'info', serviceName: 'billing', serviceVersion: '2.4.1' }, tag: t });
  assert.equal(r.status, 0, r.stderr);
  const lines = jsonLines(r.stderr);
  const messages = lines.map((l) => l.fields.message);
  for (const wanted of ['runtime started', `hello-${t}`, `activity-${t}`, 'runtime stopped']) {
    assert.ok(messages.includes(wanted), `${wanted} in ${messages}`);
  }
  assert.ok(!messages.includes(`debug-${t}`));
  for (const line of lines) {
    const service = (line.spans || []).find((s) => s['service.name'] !== undefined);
    assert.ok(service, `service fields on ${JSON.stringify(line)}`);
    assert.equal(service['service.name'], 'billing');
    assert.equal(service['service.version'], '2.4.1');
  }
  const hello = lines.find((l) => l.fields.message === `hello-${t}`);
  assert.equal(hello.span.instance_id, `traced-${t}`);
});

test('a later runtime with another logFormat keeps the first configuration and says so', () => {
  const script = `
  const { SqliteProvider, Runtime } = require(${ROOT});
  (async () => {
    const first = new Runtime(await SqliteProvider.inMemory(), { logLevel: 'warn' });
    await first.start();
    const second = new Runtime(await SqliteProvider.inMemory(), { logFormat: 'json' });
    await second.start();
    await second.shutdown();
    await first.shutdown();
  })();`;
  const e = { ...process.env };
  delete e.RUST_LOG;
  const r = spawnSync(process.execPath, ['-e', script], { env: e, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /WARN/);
  assert.match(lines[0], /logFormat\/logLevel \(json, -\) are ignored: tracing was configured before it started \(compact, warn\)/);
  assert.throws(() => JSON.parse(lines[0]), 'still compact');
});

test('bad log options are refused with the option named', async () => {
  const provider = await SqliteProvider.inMemory();
  const invalid = (pattern) => (e) => e instanceof InvalidArgumentError && e.code === 'ERR_INVALID_ARGUMENT' && pattern.test(e.message);
  assert.throws(() => new Runtime(provider, { logFormat: 'xml' }), invalid(/^options\.logFormat must be 'json', 'pretty' or 'compact', got "xml"$/));
  assert.throws(() => new Runtime(provider, { logLevel: 'loud' }), invalid(/^options\.logLevel must be 'error', 'warn', 'info', 'debug', 'trace' or 'off', got "loud"$/));
  assert.throws(() => new Runtime(provider, { logLevel: 3 }), invalid(/^options\.logLevel must be/));
  assert.throws(() => new Runtime(provider, { serviceName: '' }), invalid(/^options\.serviceName must be a non-empty string/));
  assert.throws(() => new Runtime(provider, { serviceVersion: 2 }), invalid(/^options\.serviceVersion must be a non-empty string/));
  assert.throws(() => initTracing(), invalid(/^initTracing\(options\): options must be an object with a logFile/));
  assert.throws(() => initTracing({ logFile: '' }), invalid(/^initTracing: options\.logFile must be a non-empty string/));
  assert.throws(() => initTracing({ logFile: 'x.log', logFormat: 'yaml' }), invalid(/^initTracing: options\.logFormat must be 'json', 'pretty' or 'compact'/));
  assert.throws(() => initTracing({ logFile: 'x.log', logLevel: 'verbose' }), invalid(/^initTracing: options\.logLevel must be/));
  assert.throws(() => initTracing({ logFile: 'x.log', level: 'info' }), invalid(/^options\.level is not a tracing option \(known: logFile, logFormat, logLevel\)$/));
  assert.ok(!fs.existsSync('x.log'));
});
