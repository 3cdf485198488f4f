'use strict';
// `npm test`: the lint (scripts/lint.js), the Rust tests (engine, provider conformance), then
// the type tests (`tsc -p __test__`) and the node:test suites twice: with the generator cache
// and without it (every turn a full replay), then the provider-independent suites on PostgreSQL.
//
// The long suites (processes SIGKILLed and SIGSTOPped mid-work, server restarts, the
// crash-point simulation's 300 seeds) mostly wait, so they run in a parallel phase beside
// the other node suites, in both cache modes.
//
//   node scripts/test.js [lint|rust|node|long]
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function hostTriple() {
  const out = execFileSync('rustc', ['-vV'], { encoding: 'utf8' });
  return /host: (\S+)/.exec(out)[1];
}

/** Runs a command to its end; resolves with its exit status (output goes to ours). */
function run(cmd, args, env = {}, label = '') {
  console.log(`\n${label}$ ${Object.entries(env).map(([k, v]) => `${k}=${v} `).join('')}${cmd} ${args.join(' ')}`);
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
    child.on('exit', (code, signal) => {
      if (code !== 0) console.error(`\n${label}${cmd} failed (exit ${code ?? signal})`);
      resolve(code === 0);
    });
  });
}

const NODE_TEST = ['--test', '--test-concurrency=2', '--test-timeout=300000'];
const LONG = ['crash', 'jobs-crash', 'postgres-processes', 'lease-postgres', 'failover-postgres', 'outage-postgres', 'routing-processes'].map((f) => `__test__/${f}.test.js`);
const JOBS = ['jobs', 'jobs-runs'].map((f) => `__test__/${f}.test.js`);
const PORTABLE = [
  'basics', 'activities', 'events', 'determinism', 'custom-status', 'client-start-wait', 'race-and-all', 'sub-orchestrations',
  'continue-as-new', 'versions', 'cancel', 'retry-policy', 'retry-values', 'timeouts', 'runtime-events', 'metrics',
  'retry-instance', 'watch', 'bridge', 'lease', 'management', 'replay', 'wakeups', 'stored-status', 'dropped-events', 'ids', 'batch-start', 'registry',
  'strict-options', 'duroxide-forms', 'duroxide-kv-queues', 'duroxide-admin', 'worker-tags', 'routing',
]
  .map((f) => `__test__/${f}.test.js`)
  .filter((f) => fs.existsSync(path.join(__dirname, '..', f)));
const regular = () =>
  fs
    .readdirSync(path.join(__dirname, '..', '__test__'))
    .filter((f) => /\.test\.(js|mjs)$/.test(f))
    .map((f) => `__test__/${f}`)
    .filter((f) => !LONG.includes(f));

/** Seeds of the crash-point simulation (src/runtime/simulation/) in the parallel phase. */
const SIMULATION_SEEDS = '300';

async function longSuites() {
  const simulation = ['test', '--release', '--target', hostTriple(), '--lib', 'simulation'];
  if (!(await run('cargo', simulation, { REPRISE_SIM_SEEDS: SIMULATION_SEEDS }, '[long] '))) return false;
  if (!(await run(process.execPath, [...NODE_TEST, ...LONG], {}, '[long] '))) return false;
  if (!(await run(process.execPath, [...NODE_TEST, ...LONG], { REPRISE_TEST_CACHE_SIZE: '0' }, '[long] '))) return false;
  // The jobs suites on PostgreSQL: here, one file at a time, rather than beside the timing
  // tests of the PostgreSQL phase (each job test opens apps with pools of their own).
  return run(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=300000', ...JOBS], { REPRISE_TEST_PROVIDER: 'postgres' }, '[long] ');
}

async function nodeSuites() {
  if (!(await run(process.execPath, [require.resolve('typescript/bin/tsc'), '--noEmit', '-p', '__test__']))) return false;
  if (!(await run(process.execPath, [...NODE_TEST, ...regular()]))) return false;
  if (!(await run(process.execPath, [...NODE_TEST, ...regular()], { REPRISE_TEST_CACHE_SIZE: '0' }))) return false;
  return run(process.execPath, [...NODE_TEST, ...PORTABLE], { REPRISE_TEST_PROVIDER: 'postgres' });
}

async function main() {
  const only = process.argv[2];
  if (!only || only === 'lint') {
    if (!(await run(process.execPath, [path.join(__dirname, 'lint.js')]))) return false;
  }
  if (!only || only === 'rust') {
    if (!(await run('cargo', ['test', '--release', '--target', hostTriple()]))) return false;
  }
  const tracks = [];
  if (!only || only === 'node') tracks.push(nodeSuites());
  if (!only || only === 'long' || only === 'node') tracks.push(longSuites());
  return (await Promise.all(tracks)).every(Boolean);
}

main().then((ok) => process.exit(ok ? 0 : 1));
