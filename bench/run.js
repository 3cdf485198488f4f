'use strict';
// `npm run bench`: throughput and latency on a SQLite file, printed with the machine's facts.
// Medians and ratios are what to compare; single runs on shared machines are noisy.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const reprise = require('..');
const { SqliteProvider, Client, Runtime } = reprise;

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')));
const scale = Number(args.get('scale') || 1);

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const ms = (n) => `${n.toFixed(2)} ms`;

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
  times.sort((a, b) => a - b);
  return percentile(times, 50);
}

async function environment(dir, name, open = () => SqliteProvider.open(path.join(dir, `${name}.db`))) {
  const provider = await open();
  const client = new Client(provider);
  const runtime = new Runtime(provider, { orchestrationConcurrency: 500, workerConcurrency: 500 });
  runtime.registerActivity('Work', async (ctx, n) => n + 1);
  runtime.registerOrchestration('One', function* (ctx, n) {
    return yield ctx.scheduleActivity('Work', n);
  });
  runtime.registerOrchestration('Five', function* (ctx, n) {
    let x = n;
    for (let i = 0; i < 5; i++) x = yield ctx.scheduleActivity('Work', x);
    return x;
  });
  await runtime.start();
  return { client, runtime };
}

async function burst(dir, name, orchestration, count, open) {
  const { client, runtime } = await environment(dir, name, open);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: count }, (_, i) => client.startOrchestration(`${name}-${i}`, orchestration, i)));
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: count }, (_, i) => client.waitForOrchestration(`${name}-${i}`, 600000)));
  const done = performance.now();
  if (results.some((r) => r.status !== 'Completed')) throw new Error(`${name}: not every instance completed`);
  const m = runtime.metricsSnapshot();
  await runtime.shutdown();
  return { seconds: (done - t0) / 1000, startMs: started - t0, m };
}

async function sequentialLatency(dir, count, open) {
  const { client, runtime } = await environment(dir, 'latency', open);
  const times = [];
  for (let i = 0; i < count + 10; i++) {
    const t = performance.now();
    await client.startOrchestration(`lat-${i}`, 'One', i);
    await client.waitForOrchestration(`lat-${i}`, 60000);
    if (i >= 10) times.push(performance.now() - t); // the first ten warm up
  }
  await runtime.shutdown();
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

async function main() {
  const dir = fs.mkdtempSync(path.join(args.get('dir') || os.tmpdir(), 'reprise-bench-'));
  const flush = flushTime(dir);
  console.log('reprise benchmark (SQLite, synchronous=NORMAL)');
  console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0].model.trim()}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
  console.log(`disk flush time F (4 KiB write + fdatasync, median of 50): ${ms(flush)}   folder: ${dir}`);
  console.log('');

  const n1 = Math.round(2000 * scale);
  const a = await burst(dir, 'burst', 'One', n1);
  console.log(`(a) ${n1} one-activity orchestrations started at once: all completed in ${a.seconds.toFixed(2)} s = ${(n1 / a.seconds).toFixed(0)} orchestrations/s`);
  console.log(`    (starting took ${a.startMs.toFixed(0)} ms; ${a.m.turnsCommitted} turns in ${a.m.driverCalls} driver calls, ${a.m.claims} claims)`);

  const n2 = Math.round(200 * scale);
  const b = await sequentialLatency(dir, n2);
  console.log(`(b) ${n2} sequential start -> completed round trips: p50 ${ms(b.p50)}, p99 ${ms(b.p99)}`);

  const n3 = Math.round(1000 * scale);
  const c = await burst(dir, 'five', 'Five', n3);
  console.log(`(c) ${n3} five-activity orchestrations: ${c.seconds.toFixed(2)} s = ${(n3 / c.seconds).toFixed(0)} orchestrations/s, ${((n3 * 5) / c.seconds).toFixed(0)} activities/s`);
  if (args.has('pg') || args.has('postgres')) await postgres(flush);
  fs.rmSync(dir, { recursive: true, force: true });
}

const sorted = (xs) => [...xs].sort((a, b) => a - b);

async function postgres(flush) {
  if (!reprise.PostgresProvider) {
    console.log('\nPostgreSQL: this build has no PostgresProvider; skipped');
    return;
  }
  const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `bench_${process.pid}`;
  const open = (suffix = '') => reprise.PostgresProvider.connectWithSchema(url, schema + suffix);
  console.log('');
  console.log(`PostgreSQL (${url}, schema ${schema}); F = ${ms(flush)} (measured above; every commit pays it)`);
  try {
    // Start latency: one client call, one commit.
    const startClient = new Client(await open('_starts'));
    const starts = [];
    for (let i = 0; i < 210; i++) {
      const t = performance.now();
      await startClient.startOrchestration(`start-${i}`, 'Nobody', i);
      if (i >= 10) starts.push(performance.now() - t);
    }
    const s = sorted(starts);
    console.log(`start latency: p50 ${ms(percentile(s, 50))}, p99 ${ms(percentile(s, 99))}  (F + 0.5 ms = ${ms(flush + 0.5)})`);

    // Dispatch latency: started here, picked up by a worker process.
    const client = new Client(await open());
    const worker = spawn(process.execPath, [path.join(__dirname, 'pg-worker.js'), url, schema], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => worker.stdout.on('data', (d) => String(d).includes('ready') && resolve()));
    const dispatch = [];
    const roundTrips = [];
    for (let i = 0; i < 110; i++) {
      const t0 = Date.now();
      const p0 = performance.now();
      await client.startOrchestration(`stamp-${i}`, 'Stamp');
      const r = await client.waitForOrchestration(`stamp-${i}`, 30000);
      if (i >= 10) {
        dispatch.push(r.output - t0);
        roundTrips.push(performance.now() - p0);
      }
    }
    const d = sorted(dispatch);
    const rt = sorted(roundTrips);
    console.log(`dispatch latency to another process (start -> its activity running): p50 ${ms(percentile(d, 50))}, p99 ${ms(percentile(d, 99))}`);
    console.log(`one-activity start -> completed across processes: p50 ${ms(percentile(rt, 50))}, p99 ${ms(percentile(rt, 99))}`);
    worker.kill('SIGTERM');
    await new Promise((resolve) => worker.on('exit', resolve));

    // Sustained throughput, runtime in this process.
    const n = Math.round(2000 * scale);
    const a = await burst(null, 'pgburst', 'One', n, () => open('_burst'));
    console.log(`sustained: ${n} one-activity orchestrations in ${a.seconds.toFixed(2)} s = ${(n / a.seconds).toFixed(0)} orchestrations/s`);
  } finally {
    for (const s of [schema, `${schema}_starts`, `${schema}_burst`]) {
      spawnSync('psql', [url, '-c', `DROP SCHEMA IF EXISTS ${s} CASCADE`], { stdio: 'ignore' });
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
