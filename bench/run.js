'use strict';
// `npm run bench`: throughput and latency on a SQLite file, printed with the machine's facts.
// Medians and ratios are what to compare; single runs on shared machines are noisy.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { SqliteProvider, Client, Runtime } = require('..');

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

async function environment(dir, name) {
  const provider = await SqliteProvider.open(path.join(dir, `${name}.db`));
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

async function burst(dir, name, orchestration, count) {
  const { client, runtime } = await environment(dir, name);
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

async function sequentialLatency(dir, count) {
  const { client, runtime } = await environment(dir, 'latency');
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
  console.log(`    (starting took ${a.startMs.toFixed(0)} ms; ${a.m.turns_committed} turns in ${a.m.driver_calls} driver calls, ${a.m.claims} claims)`);

  const n2 = Math.round(200 * scale);
  const b = await sequentialLatency(dir, n2);
  console.log(`(b) ${n2} sequential start -> completed round trips: p50 ${ms(b.p50)}, p99 ${ms(b.p99)}`);

  const n3 = Math.round(1000 * scale);
  const c = await burst(dir, 'five', 'Five', n3);
  console.log(`(c) ${n3} five-activity orchestrations: ${c.seconds.toFixed(2)} s = ${(n3 / c.seconds).toFixed(0)} orchestrations/s, ${((n3 * 5) / c.seconds).toFixed(0)} activities/s`);
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
