'use strict';
// `npm test`: the Rust tests (engine, provider conformance), then the type tests
// (`tsc -p __test__`) and the node:test suites twice: with the generator cache and without it
// (every turn a full replay).
const { execFileSync, spawnSync } = require('node:child_process');

function hostTriple() {
  const out = execFileSync('rustc', ['-vV'], { encoding: 'utf8' });
  return /host: (\S+)/.exec(out)[1];
}

function run(cmd, args, env = {}) {
  console.log(`\n$ ${Object.entries(env).map(([k, v]) => `${k}=${v} `).join('')}${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(`\n${cmd} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
}

const only = process.argv[2];
if (!only || only === 'rust') {
  run('cargo', ['test', '--release', '--target', hostTriple()]);
}
if (!only || only === 'node') {
  run(process.execPath, [require.resolve('typescript/bin/tsc'), '--noEmit', '-p', '__test__']);
  run(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', '__test__/']);
  run(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', '__test__/'], { REPRISE_TEST_CACHE_SIZE: '0' });
  // The provider-independent suites once more, on PostgreSQL (DATABASE_URL).
  const portable = ['basics', 'bridge', 'composition', 'lease', 'management', 'follow'].map((f) => `__test__/${f}.test.js`);
  run(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...portable], { REPRISE_TEST_PROVIDER: 'postgres' });
}
