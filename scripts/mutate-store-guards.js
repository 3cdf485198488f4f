'use strict';
// Mutation run for the guards a Rust mutation tool does not reach: the store's SQL
// (fencing, leases, stale-commit gates, inside string literals) and the runtime's lease
// keeping, which only the node suites exercise. Each mutant in
// scripts/store-guard-mutants.json names its file, the function it lives in, an exact text
// that must occur once there and its replacement, and what must fail: a conformance suite
// (`test`) or node test files (`node`, run against an addon built from the mutated copy).
// The tree is copied to a temporary folder and mutated there (the working tree is never
// touched).
//
//   node scripts/mutate-store-guards.js [--out results.json] [id ...]
//
// Builds in debug, in target/store-guard-mutants (shared between runs, so only the crate
// itself rebuilds per mutant). Exits 1 when a mutant is missed or cannot be applied.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const mutants = JSON.parse(fs.readFileSync(path.join(__dirname, 'store-guard-mutants.json'), 'utf8'));
const args = process.argv.slice(2);
let out = null;
const only = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--out') out = args[++i];
  else only.push(args[i]);
}
const selected = only.length ? mutants.filter((m) => only.includes(m.id)) : mutants;
for (const id of only) if (!mutants.some((m) => m.id === id)) throw new Error(`no mutant '${id}'`);

const host = /host: (\S+)/.exec(execFileSync('rustc', ['-vV'], { encoding: 'utf8' }))[1];
const targetDir = path.join(root, 'target', 'store-guard-mutants');
const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'reprise-guards-'));
for (const entry of ['Cargo.toml', 'Cargo.lock', 'build.rs', 'src', 'tests', 'migrations', 'package.json', 'index.js', 'index.d.ts', 'lib', 'bin', '__test__']) {
  fs.cpSync(path.join(root, entry), path.join(copy, entry), { recursive: true });
}
fs.mkdirSync(path.join(copy, 'native'));
fs.symlinkSync(path.join(root, 'node_modules'), path.join(copy, 'node_modules'));
const addonName = fs.readdirSync(path.join(root, 'native')).find((f) => f.endsWith('.node'));

/** Builds the addon from the copy (profile `mutants`) and runs node test files on it. */
function nodeTest(files, env = {}) {
  const b = spawnSync('cargo', ['build', '--profile', 'mutants', '--lib', '--target', host], {
    cwd: copy,
    env: { ...process.env, CARGO_TARGET_DIR: targetDir },
    encoding: 'utf8',
  });
  if (b.status !== 0) return { status: 1, built: false, failing: [], stderr: b.stderr };
  fs.copyFileSync(path.join(targetDir, host, 'mutants', 'libreprise.so'), path.join(copy, 'native', addonName));
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=120000', ...files], {
    cwd: copy,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const failed = /^not ok \d+ - (.+)$/gm;
  const names = [];
  for (let m; (m = failed.exec(r.stdout)); ) names.push(m[1]);
  return { status: r.status, built: true, failing: names, stderr: r.stderr };
}
const check = (m) => (m.node ? nodeTest(m.node, m.env) : cargoTest(m.test));
const suiteOf = (m) => (m.node ? `${Object.entries(m.env || {}).map(([k, v]) => `${k}=${v} `).join('')}${m.node.join(' ')}` : m.test);

function cargoTest(suite) {
  const r = spawnSync('cargo', ['test', '--target', host, '--test', suite, '--', '--test-threads=2'], {
    cwd: copy,
    env: { ...process.env, CARGO_TARGET_DIR: targetDir },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const failed = /^test (\S+) \.\.\. FAILED$/gm;
  const names = [];
  for (let m; (m = failed.exec(r.stdout)); ) names.push(m[1]);
  const built = !/error(\[E\d+\])?: /.test(r.stderr) || /test result/.test(r.stdout);
  return { status: r.status, built, failing: names, stderr: r.stderr };
}

const results = [];
const baselines = new Map();
for (const m of selected) {
  if (!baselines.has(suiteOf(m))) {
    const base = check(m);
    baselines.set(suiteOf(m), base.status === 0);
    console.log(`baseline ${suiteOf(m)}: ${base.status === 0 ? 'passes' : `FAILS ${base.failing.join(', ')}`}`);
  }
  // A mutant is one edit, or several (`also`) where one path alone is covered by another.
  const edits = [m, ...(m.also || [])].map((e) => {
    const file = path.join(copy, e.file);
    const original = fs.readFileSync(file, 'utf8');
    return { ...e, path: file, original, occurrences: original.split(e.find).length - 1 };
  });
  const misplaced = edits.find((e) => e.occurrences !== 1);
  let verdict;
  let failing = [];
  if (!baselines.get(suiteOf(m))) verdict = 'BASELINE-FAIL';
  else if (misplaced) verdict = `ERROR (the text occurs ${misplaced.occurrences} times in ${misplaced.file})`;
  else {
    for (const e of edits) fs.writeFileSync(e.path, fs.readFileSync(e.path, 'utf8').replace(e.find, e.replace));
    const r = check(m);
    for (const e of edits.reverse()) fs.writeFileSync(e.path, e.original);
    if (!r.built) verdict = 'ERROR (does not build)';
    else if (r.status === 0) verdict = 'MISSED';
    else {
      verdict = 'CAUGHT';
      failing = r.failing;
    }
  }
  results.push({ id: m.id, function: m.function, behaviour: m.behaviour, verdict, failing });
  console.log(`${verdict.padEnd(8)} ${m.id} (${m.function})${failing.length ? `: ${failing.join(', ')}` : ''}`);
}
fs.rmSync(copy, { recursive: true, force: true });
if (out) fs.writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
const bad = results.filter((r) => r.verdict !== 'CAUGHT');
console.log(`\n${results.length - bad.length} caught, ${bad.length} not: ${bad.map((r) => r.id).join(', ') || 'none'}`);
process.exit(bad.length ? 1 : 0);
