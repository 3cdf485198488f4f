'use strict';
// `npm run bench`: throughput and latency of reprise on SQLite and PostgreSQL, each figure
// printed beside its target, with the machine's facts measured in the same run.
//
//   node bench/run.js [--pg] [--runs N] [--scale X] [--json FILE] [--compare FILE]
//                     [--only sqlite|pg] [--all]
//
// --runs N      alternated runs of every workload (default 3); the medians are reported
// --scale X     multiplies the workload sizes (0.1 for a quick look)
// --json FILE   writes the results (medians) as JSON, for --compare by a later run
// --compare F   prints this run's ratio to F's figure on every line, and flags any workload
//               more than 10 % worse
// --only K,...  runs only these rows (keys or prefixes: sqlite, pg, sqlite.w1, pg.lat)
// --all         adds the slow rows: a 5,000-activity orchestration and the memory of
//               50,000 waiting instances
//
// Medians and ratios are what to compare: single runs on shared machines are noisy.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const reprise = require('..');
const { SqliteProvider, PostgresProvider, Client, Runtime } = reprise;

const SWITCHES = new Set(['pg', 'postgres', 'all']);
const args = new Map();
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const [key, value] = argv[i].replace(/^--/, '').split('=');
    if (value !== undefined || SWITCHES.has(key)) args.set(key, value ?? true);
    else args.set(key, argv[++i]);
  }
  const known = new Set([...SWITCHES, 'runs', 'scale', 'json', 'compare', 'only', 'dir']);
  for (const key of args.keys()) {
    if (!known.has(key)) {
      console.error(`unknown option --${key} (known: ${[...known].map((k) => `--${k}`).join(', ')})`);
      process.exit(2);
    }
  }
}
const scale = Number(args.get('scale') || 1);
const runs = Number(args.get('runs') || 3);
const withPg = args.has('pg') || args.has('postgres');
// --only takes comma-separated row keys or prefixes: `sqlite`, `pg`, `sqlite.w1`, `pg.lat`.
const only = args.has('only') ? String(args.get('only')).split(',') : null;
const want = (key) => !only || only.some((p) => key === p || key.startsWith(`${p}.`) || (p === 'sqlite' && key.startsWith('sqlite_')));
const all = args.has('all');
const databaseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const n = (count) => Math.max(10, Math.round(count * scale));

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
const median = (values) => percentile(values, 50);

/** Median time of write(4 KiB) + fdatasync on the benchmark's disk. */
function flushTime(dir) {
  const file = path.join(dir, 'flush-probe');
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.alloc(4096, 1);
  const times = [];
  for (let i = 0; i < 50; i++) {
    const t = process.hrtime.bigint();
    fs.writeSync(fd, buf, 0, buf.length, 0);
    fs.fdatasyncSync(fd);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  fs.closeSync(fd);
  fs.unlinkSync(file);
  return median(times);
}

/**
 * C: a single-row insert + commit round trip to PostgreSQL, timed by one psql session
 * (`\timing`, measured at the client), median of 200 after 20 warm-up.
 */
function pgRoundTrip(schema) {
  const statements = [`CREATE TABLE ${schema}.c_probe (id serial primary key, v int);`, '\\timing on'];
  for (let i = 0; i < 220; i++) statements.push(`INSERT INTO ${schema}.c_probe (v) VALUES (${i});`);
  const r = spawnSync('psql', [databaseUrl, '-X', '-q', '-v', 'ON_ERROR_STOP=1'], { input: statements.join('\n'), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
  const times = [...r.stdout.matchAll(/^Time: ([\d.]+) ms/gm)].map((m) => Number(m[1])).slice(20);
  return median(times);
}

function register(runtime) {
  runtime.registerActivity('Work', async (ctx, x) => x + 1);
  runtime.registerOrchestration('One', function* (ctx, x) {
    return yield ctx.scheduleActivity('Work', x);
  });
  runtime.registerOrchestration('Five', function* (ctx, x) {
    let v = x;
    for (let i = 0; i < 5; i++) v = yield ctx.scheduleActivity('Work', v);
    return v;
  });
  runtime.registerOrchestration('Chain', function* (ctx, count) {
    let v = 0;
    for (let i = 0; i < count; i++) v = yield ctx.scheduleActivity('Work', v);
    return v;
  });
  runtime.registerOrchestration('FanThenWait', function* (ctx, count) {
    yield ctx.all(Array.from({ length: count }, (_, i) => ctx.scheduleActivity('Work', i)));
    return yield ctx.waitForEvent('go');
  });
  runtime.registerOrchestration('Sleeps', function* (ctx) {
    yield ctx.scheduleTimer(3600 * 1000);
  });
}

/** A store per workload: `open(name)` gives a fresh provider. */
async function environment(open, name, options = {}) {
  const provider = await open(name);
  const client = new Client(provider);
  const runtime = new Runtime(provider, { orchestrationConcurrency: 500, workerConcurrency: 500, keepAlive: false, ...options });
  register(runtime);
  await runtime.start();
  return { provider, client, runtime };
}

async function burst(open, name, orchestration, count) {
  const { client, runtime } = await environment(open, name);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: count }, (_, i) => client.startOrchestration(`${name}-${i}`, orchestration, i)));
  const results = await Promise.all(Array.from({ length: count }, (_, i) => client.waitForOrchestration(`${name}-${i}`, 600000)));
  const seconds = (performance.now() - t0) / 1000;
  if (results.some((r) => r.status !== 'Completed')) throw new Error(`${name}: not every instance completed`);
  await runtime.shutdown();
  return count / seconds;
}

async function roundTrips(open, name, count) {
  const { client, runtime } = await environment(open, name);
  const times = [];
  for (let i = 0; i < count + 10; i++) {
    const t = performance.now();
    await client.startOrchestration(`${name}-${i}`, 'One', i);
    await client.waitForOrchestration(`${name}-${i}`, 60000);
    if (i >= 10) times.push(performance.now() - t); // the first ten warm up
  }
  await runtime.shutdown();
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

/**
 * Round trips (start -> completed, p50) of this application's 'One' while `others`
 * instances of another application's orchestration wait in the same store (that
 * application ran, then went down: its work is unserved, not failed): the claim reads an
 * index by name, so the figure should match the plain round trip's.
 */
async function routedRoundTrips(open, name, others, count) {
  const provider = await open(name);
  const away = new Runtime(provider, { keepAlive: false });
  away.registerOrchestration('OtherApp', function* () {
    return null;
  });
  await away.start();
  await away.shutdown();
  const client = new Client(provider);
  for (let i = 0; i < others; i += 10000) {
    const batch = Array.from({ length: Math.min(10000, others - i) }, (_, k) => ({ id: `other-${i + k}`, name: 'OtherApp', input: null }));
    await client.startOrchestrations(batch);
  }
  const { runtime } = await environment(() => provider, name);
  const times = [];
  for (let i = 0; i < count + 10; i++) {
    const t = performance.now();
    await client.startOrchestration(`${name}-${i}`, 'One', i);
    await client.waitForOrchestration(`${name}-${i}`, 60000);
    if (i >= 10) times.push(performance.now() - t);
  }
  const waiting = (await client.getQueueDepths()).orchestrator.visible;
  await runtime.shutdown();
  if (waiting < others) throw new Error(`${name}: only ${waiting} of ${others} other instances still wait`);
  return percentile(times, 50);
}

/** startOrchestration alone (no runtime on the store): one insert and commit each. */
async function startLatency(open, name, count) {
  const client = new Client(await open(name));
  const times = [];
  for (let i = 0; i < count + 10; i++) {
    const t = performance.now();
    await client.startOrchestration(`${name}-${i}`, 'Nobody', i);
    if (i >= 10) times.push(performance.now() - t);
  }
  return median(times);
}

async function batchStart(open, name, count) {
  const client = new Client(await open(name));
  if (typeof client.startOrchestrations !== 'function') return null;
  const batch = Array.from({ length: count }, (_, i) => ({ id: `${name}-${i}`, name: 'Nobody', input: i }));
  const t0 = performance.now();
  await client.startOrchestrations(batch);
  return count / ((performance.now() - t0) / 1000);
}

/** Time per activity in one orchestration of `count` sequential activities. */
async function chain(open, name, count) {
  const { client, runtime } = await environment(open, name);
  const t0 = performance.now();
  await client.startOrchestration(name, 'Chain', count);
  const r = await client.waitForOrchestration(name, 3600 * 1000);
  const ms = performance.now() - t0;
  if (r.output !== count) throw new Error(`${name}: chain ended with ${JSON.stringify(r.output)}`);
  await runtime.shutdown();
  return ms / count;
}

/**
 * Jobs: median time of a run of `steps` sequential steps (trigger -> completed), over
 * `count` runs. Each step is recorded as it finishes; the function runs once (no sleeps).
 */
async function jobRuns(open, name, steps, count) {
  const provider = await open(name);
  const app = await reprise.createReprise({ storage: provider, keepAlive: false });
  const job = reprise.defineJob({
    name: `steps${steps}`,
    run: async (step) => {
      let sum = 0;
      for (let i = 0; i < steps; i++) sum += await step.run('step', () => i);
      return sum;
    },
  });
  const { handle } = app.register({ handle: job });
  await app.start();
  const times = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const { output } = await handle.triggerAndWait(null);
    times.push(performance.now() - t0);
    if (output !== (steps * (steps - 1)) / 2) throw new Error(`${name}: the job returned ${output}`);
  }
  await app.stop();
  return percentile(times, 50);
}

/** Jobs of 10 and 100 steps: their run times and the cost of one step. */
async function jobRows(open, prefix, out) {
  const ten = await jobRuns(open, 'job10', 10, n(40));
  const hundred = await jobRuns(open, 'job100', 100, n(20));
  out(`${prefix}.job.10`, ten);
  out(`${prefix}.job.100`, hundred);
  out(`${prefix}.job.step`, (hundred - ten) / 90);
}

/** One cold full replay (generator cache off) of a history of `events` events. */
async function replay(open, name, events) {
  const count = Math.round((events - 4) / 2);
  const { client, runtime } = await environment(open, name, { generatorCacheSize: 0 });
  await client.startOrchestration(name, 'FanThenWait', count);
  // Wait until the fan-out is in and the wait is recorded.
  for (;;) {
    const history = await client.readStoredHistory(name);
    if (history.some((e) => e.kind === 'EventWaitStarted')) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const t0 = performance.now();
  await client.raiseEvent(name, 'go', 1);
  await client.waitForOrchestration(name, 600000);
  const ms = performance.now() - t0;
  await runtime.shutdown();
  return ms;
}

/** Marginal RSS per instance waiting on a timer, from `from` to `to` waiting instances. */
async function memory(open, name, from, to) {
  const { client, runtime } = await environment(open, name);
  const fill = async (start, end) => {
    for (let i = start; i < end; i += 1000) {
      await Promise.all(Array.from({ length: Math.min(1000, end - i) }, (_, k) => client.startOrchestration(`${name}-${i + k}`, 'Sleeps')));
    }
    for (;;) {
      const m = runtime.metricsSnapshot();
      if (m.turnsCommitted >= end) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    if (global.gc) global.gc();
    await new Promise((r) => setTimeout(r, 500));
    return process.memoryUsage().rss;
  };
  const a = await fill(0, from);
  const b = await fill(from, to);
  await runtime.shutdown(1000);
  return (b - a) / (to - from) / 1024;
}

/** Every row of the table: key, label, unit, which way is better, target text. */
const ROWS = [
  ['sqlite.w1', 'SQLite: 2,000 one-activity orchestrations started at once', '/s', 'higher', '>= 5,000/s'],
  ['sqlite.w2', 'SQLite: 1,000 five-activity orchestrations', '/s', 'higher', '>= 2,000/s'],
  ['sqlite.lat.p50', 'SQLite: one-activity start -> completed, sequential, p50', 'ms', 'lower', '<= 1 ms'],
  ['sqlite.lat.p99', 'SQLite: one-activity start -> completed, sequential, p99', 'ms', 'lower', '<= 3 ms'],
  ['sqlite.start.p50', 'SQLite: start latency p50', 'ms', 'lower', '<= 0.1 ms'],
  ['sqlite.routed.p50', 'SQLite: start -> completed p50 beside 100,000 waiting instances of another app', 'ms', 'lower', '<= 1.2x the plain p50'],
  ['sqlite_full.w1', 'SQLite synchronous=FULL: one-activity orchestrations', '/s', 'higher', '>= 1,000/s'],
  ['sqlite.long.10', 'time per activity, 10 sequential activities', 'ms', 'lower', '(reference)'],
  ['sqlite.long.500', 'time per activity, 500 sequential activities', 'ms', 'lower', '<= 1.2x the 10-activity figure'],
  ['sqlite.long.5000', 'time per activity, 5,000 sequential activities (--all)', 'ms', 'lower', '<= 1.2x the 10-activity figure'],
  ['sqlite.job.10', 'SQLite: a 10-step job, trigger -> completed, p50', 'ms', 'lower', '(reference)'],
  ['sqlite.job.100', 'SQLite: a 100-step job, trigger -> completed, p50', 'ms', 'lower', '<= 12x the 10-step job'],
  ['sqlite.job.step', 'SQLite: one job step ((100-step - 10-step) / 90)', 'ms', 'lower', '<= 0.3 ms'],
  ['sqlite.replay.10000', 'replay of a 10,000-event history (cold, cache off)', 'ms', 'lower', '<= 50 ms'],
  ['sqlite.memory', 'memory per idle waiting instance, 10,000 -> 50,000 (--all)', 'KB', 'lower', '<= 0.5 KB'],
  ['pg.C', 'PostgreSQL: C, a single-row insert + commit round trip', 'ms', 'lower', '(machine fact)'],
  ['pg.w1', 'PostgreSQL, one process: 2,000 one-activity orchestrations', '/s', 'higher', '>= 2,500/s'],
  ['pg.w2', 'PostgreSQL, one process: 1,000 five-activity orchestrations', '/s', 'higher', '(as SQLite)'],
  ['pg.start.p50', 'PostgreSQL: start latency p50', 'ms', 'lower', '<= C + 0.3 ms'],
  ['pg.lat.p50', 'PostgreSQL, one process: one-activity start -> completed p50', 'ms', 'lower', '<= 4C + 0.5 ms'],
  ['pg.lat.p99', 'PostgreSQL, one process: one-activity start -> completed p99', 'ms', 'lower', ''],
  ['pg.routed.p50', 'PostgreSQL: start -> completed p50 beside 100,000 waiting instances of another app', 'ms', 'lower', '<= 1.2x the plain p50'],
  ['pg.job.10', 'PostgreSQL: a 10-step job, trigger -> completed, p50', 'ms', 'lower', '(reference)'],
  ['pg.job.100', 'PostgreSQL: a 100-step job, trigger -> completed, p50', 'ms', 'lower', '<= 12x the 10-step job'],
  ['pg.job.step', 'PostgreSQL: one job step ((100-step - 10-step) / 90)', 'ms', 'lower', ''],
  ['pg.batch', 'PostgreSQL: batch start (startOrchestrations), instances', '/s', 'higher', '>= 10,000/s'],
  ['pg.cross.lat.p50', 'PostgreSQL: start -> completed by another process, p50', 'ms', 'lower', ''],
  ['pg.failover', 'PostgreSQL: SIGKILLed worker -> its activity done elsewhere, median of 10 kills', 'ms', 'lower', '<= 5,000 ms (lease 30 s)'],
];

async function sqliteRound(dir, round, out) {
  const file = (name) => path.join(dir, `${name}-${round}.db`);
  const open = (name) => SqliteProvider.open(file(name));
  const openFull = (name) => SqliteProvider.open(file(name), { synchronous: 'full' });
  if (want('sqlite.w1')) out('sqlite.w1', await burst(open, 'w1', 'One', n(2000)));
  if (want('sqlite.w2')) out('sqlite.w2', await burst(open, 'w2', 'Five', n(1000)));
  if (want('sqlite.lat')) {
    const lat = await roundTrips(open, 'lat', n(200));
    out('sqlite.lat.p50', lat.p50);
    out('sqlite.lat.p99', lat.p99);
  }
  if (want('sqlite.start')) out('sqlite.start.p50', await startLatency(open, 'start', n(200)));
  if (want('sqlite.routed')) out('sqlite.routed.p50', await routedRoundTrips(open, 'routed', n(100000), n(200)));
  if (want('sqlite_full.w1')) out('sqlite_full.w1', await burst(openFull, 'full', 'One', n(1000)));
  if (want('sqlite.long')) {
    out('sqlite.long.10', await chain(open, 'long10', 10));
    out('sqlite.long.500', await chain(open, 'long500', n(500)));
    if (all) out('sqlite.long.5000', await chain(open, 'long5000', n(5000)));
  }
  if (want('sqlite.job')) await jobRows(open, 'sqlite', out);
  if (want('sqlite.replay')) out('sqlite.replay.10000', await replay(open, 'replay', n(10000)));
  if (all && round === 0 && want('sqlite.memory')) out('sqlite.memory', await memory(open, 'memory', n(10000), n(50000)));
}

async function pgRound(round, out, schemas) {
  const open = (name) => {
    const schema = `bench_${process.pid}_${name}_${round}`;
    schemas.push(schema);
    return PostgresProvider.connectWithSchema(databaseUrl, schema);
  };
  if (want('pg.w1')) out('pg.w1', await burst(open, 'w1', 'One', n(2000)));
  if (want('pg.w2')) out('pg.w2', await burst(open, 'w2', 'Five', n(1000)));
  if (want('pg.start')) out('pg.start.p50', await startLatency(open, 'start', n(200)));
  if (want('pg.lat')) {
    const lat = await roundTrips(open, 'lat', n(200));
    out('pg.lat.p50', lat.p50);
    out('pg.lat.p99', lat.p99);
  }
  if (want('pg.routed')) out('pg.routed.p50', await routedRoundTrips(open, 'routed', n(100000), n(200)));
  if (want('pg.job')) await jobRows(open, 'pg', out);
  if (want('pg.batch')) {
    const batch = await batchStart(open, 'batch', n(10000));
    if (batch !== null) out('pg.batch', batch);
  }
  if (want('pg.cross')) out('pg.cross.lat.p50', await crossProcess(open, round));
  if (round === 0 && want('pg.failover')) out('pg.failover', await failover(open, n(10)));
}

/**
 * Time from SIGKILL of a worker holding an activity to that activity's instance completed
 * by this process's runtime (default options: 30 s lease, 3 s heartbeat timeout); median
 * of `kills`. The worker is the failover tests' fixture.
 */
async function failover(open, kills) {
  const name = 'failover';
  const provider = await open(name);
  const schema = `bench_${process.pid}_${name}_0`;
  const client = new Client(provider);
  const fixture = path.join(__dirname, '..', '__test__', 'fixtures', 'failover-worker.js');
  const times = [];
  for (let i = 0; i < kills; i++) {
    const worker = spawn(process.execPath, [fixture, databaseUrl, schema, '{}', 'hang'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    const saw = (what) => new Promise((resolve) => worker.stdout.on('data', (d) => (text += d).includes(what) && resolve()));
    await saw('ready');
    const id = `kill-${i}`;
    await client.startOrchestration(id, 'OneStep', i);
    await saw(`started ${id}`);
    // A runtime here joins only now, so the worker holds the activity.
    const runtime = new Runtime(provider, { keepAlive: false });
    runtime.registerActivity('Step', async (ctx, input) => ({ input, pid: process.pid }));
    runtime.registerOrchestration('OneStep', function* (ctx, input) {
      return yield ctx.scheduleActivity('Step', input);
    });
    await runtime.start();
    const t = performance.now();
    worker.kill('SIGKILL');
    await client.waitForOrchestration(id, 60000);
    times.push(performance.now() - t);
    await runtime.shutdown(2000);
  }
  return median(times);
}

/** Start here, run by a worker process: start -> completed p50. */
async function crossProcess(open, round) {
  const client = new Client(await open('cross'));
  const schema = `bench_${process.pid}_cross_${round}`;
  const worker = spawn(process.execPath, [path.join(__dirname, 'pg-worker.js'), databaseUrl, schema], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => worker.stdout.on('data', (d) => String(d).includes('ready') && resolve()));
  const times = [];
  for (let i = 0; i < n(100) + 10; i++) {
    const t = performance.now();
    await client.startOrchestration(`cross-${i}`, 'One', i);
    await client.waitForOrchestration(`cross-${i}`, 30000);
    if (i >= 10) times.push(performance.now() - t);
  }
  worker.kill('SIGTERM');
  await new Promise((resolve) => worker.on('exit', resolve));
  return median(times);
}

function format(value, unit) {
  if (value === undefined || Number.isNaN(value)) return '-';
  if (unit === '/s') return `${Math.round(value).toLocaleString('en-US')}/s`;
  if (unit === 'KB') return `${value.toFixed(2)} KB`;
  return `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(args.get('dir') || os.tmpdir(), 'reprise-bench-'));
  const flush = flushTime(dir);
  const samples = new Map();
  const out = (key, value) => {
    if (!samples.has(key)) samples.set(key, []);
    samples.get(key).push(value);
  };
  const schemas = [];
  let c = null;
  try {
    const anyPg = withPg && ROWS.some(([key]) => key.startsWith('pg.') && want(key));
    if (anyPg && want('pg.C')) {
      const probe = `bench_${process.pid}_c`;
      schemas.push(probe);
      spawnSync('psql', [databaseUrl, '-q', '-c', `CREATE SCHEMA ${probe}`], { stdio: 'ignore' });
      c = pgRoundTrip(probe);
      out('pg.C', c);
    }
    for (let round = 0; round < runs; round++) {
      process.stderr.write(`run ${round + 1} of ${runs}...\n`);
      if (ROWS.some(([key]) => key.startsWith('sqlite') && want(key))) await sqliteRound(dir, round, out);
      if (anyPg) await pgRound(round, out, schemas);
    }
  } finally {
    for (const s of schemas) spawnSync('psql', [databaseUrl, '-q', '-c', `DROP SCHEMA IF EXISTS ${s} CASCADE`], { stdio: 'ignore' });
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const results = {};
  for (const [key, , unit, better] of ROWS) {
    if (samples.has(key)) results[key] = { value: median(samples.get(key)), unit, better, samples: samples.get(key) };
  }
  const baseline = args.has('compare') ? JSON.parse(fs.readFileSync(args.get('compare'), 'utf8')) : null;
  const cpus = os.cpus();
  console.log(`reprise benchmark: medians of ${runs} alternated run(s)${scale !== 1 ? `, scale ${scale}` : ''}`);
  console.log(`machine: ${cpus.length} cores (${cpus[0].model.trim()}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
  console.log(`disk flush time F (4 KiB write + fdatasync, median of 50): ${format(flush, 'ms')}${c !== null ? `; PostgreSQL C: ${format(c, 'ms')}` : ''}`);
  if (baseline) console.log(`compared with ${args.get('compare')} (${baseline.date}); ratio > 1 is better, ! marks more than 10 % worse`);
  console.log('');
  const width = Math.max(...ROWS.map((r) => r[1].length));
  let worse = 0;
  for (const [key, label, unit, better, target] of ROWS) {
    const r = results[key];
    if (!r) continue;
    let line = `${label.padEnd(width)}  ${format(r.value, unit).padStart(10)}   target ${target || '-'}`;
    const base = baseline && baseline.results[key];
    if (base) {
      const ratio = better === 'higher' ? r.value / base.value : base.value / r.value;
      const flag = ratio < 0.9 ? ' !' : '';
      if (flag) worse += 1;
      line += `   vs ${format(base.value, unit)}: ${ratio.toFixed(2)}x${flag}`;
    }
    console.log(line);
  }
  if (baseline) console.log(`\n${worse} workload(s) more than 10 % worse than the baseline`);
  if (args.has('json')) {
    const doc = {
      date: new Date().toISOString(),
      version: require('../package.json').version,
      machine: { cores: cpus.length, model: cpus[0].model.trim(), memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      flushMs: flush,
      runs,
      scale,
      results,
    };
    fs.writeFileSync(args.get('json'), `${JSON.stringify(doc, null, 2)}\n`);
    console.log(`\nwrote ${args.get('json')}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
