#!/usr/bin/env node
'use strict';
// Hand-made mutation testing of the JavaScript side (lib/): each mutant in
// scripts/js-mutants.json breaks one behaviour on purpose; the node:test files it lists
// must then fail. Nothing in the checkout is modified: the package files are copied once
// into a temporary snapshot, and every run (baseline or mutant) works on its own copy of it.
//
//   node scripts/mutate-js.js [ids...] [--out results.json] [--allow-missed] [--check]
//                             [--list scripts/js-mutants.json] [--timeout 300] [--keep]
//
// Verdicts: CAUGHT (some listed test failed or the run timed out), MISSED (every test
// passed), ERROR (the find string is not exactly once in the file, is not inside the named
// function, or the mutated file does not parse), BASELINE-FAIL (the same test files fail
// without the mutation, so the verdict would mean nothing). --check only validates the list
// against lib/ (no tests run). Exit status: 1 on ERROR or BASELINE-FAIL, 1 on MISSED unless
// --allow-missed, 0 otherwise.
//
// A mutant: {id, area, file, function, find, replace, description, tests: [paths], envs?, hint?}.
// `function` is `name` or `Class.method` (dots nest); `tests` entries are paths from the
// package root, and may use `*` in the file name (`__test__/*retry*.test.js`); `envs`
// (default [{}]) runs the tests once per environment (e.g. {REPRISE_TEST_CACHE_SIZE: '0'} for
// the replay-every-turn mode `npm test` also runs), and the mutant is caught if any run fails;
// `hint` names the test that would catch it, printed when it is MISSED.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
/** What a copy needs for `require('..')` from __test__ to load the copied lib/. */
const COPIED = ['package.json', 'index.js', 'index.d.ts', 'README.md', 'lib', 'bin', '__test__', 'native'];
/** Environment the test helpers read; cleared so every run starts from the defaults. */
const TEST_ENV = ['REPRISE_TEST_CACHE_SIZE', 'REPRISE_TEST_PROVIDER', 'RUST_LOG', 'NODE_TEST_CONTEXT'];

// ------------------------------------------------------------------------------- arguments

function parseArgs(argv) {
  const opts = { ids: [], out: null, allowMissed: false, check: false, keep: false, timeout: 300, list: path.join(__dirname, 'js-mutants.json') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--out') opts.out = path.resolve(value());
    else if (a === '--list') opts.list = path.resolve(value());
    else if (a === '--timeout') opts.timeout = Number(value());
    else if (a === '--allow-missed') opts.allowMissed = true;
    else if (a === '--check') opts.check = true;
    else if (a === '--keep') opts.keep = true;
    else if (a === '--help' || a === '-h') usage();
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else opts.ids.push(a);
  }
  if (!(opts.timeout > 0)) usage('--timeout must be a number of seconds > 0');
  return opts;
}

function usage(error) {
  const text = 'usage: node scripts/mutate-js.js [ids...] [--out FILE] [--allow-missed] [--check] [--list FILE] [--timeout SECONDS] [--keep]';
  if (error) {
    console.error(`mutate-js: ${error}\n${text}`);
    process.exit(2);
  }
  console.log(text);
  process.exit(0);
}

// ------------------------------------------------------------------------------- the list

const FIELDS = ['id', 'file', 'function', 'find', 'replace', 'description', 'tests'];

function loadList(file) {
  const list = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!Array.isArray(list)) throw new Error(`${file}: expected an array of mutants`);
  const seen = new Set();
  for (const [i, m] of list.entries()) {
    for (const f of FIELDS) {
      if (m[f] === undefined) throw new Error(`${file}: mutant #${i} (${m.id}) has no '${f}'`);
    }
    if (typeof m.find !== 'string' || m.find === '' || typeof m.replace !== 'string') throw new Error(`${file}: mutant ${m.id}: find must be a non-empty string, replace a string`);
    if (m.find === m.replace) throw new Error(`${file}: mutant ${m.id}: replace equals find`);
    if (!Array.isArray(m.tests) || m.tests.length === 0) throw new Error(`${file}: mutant ${m.id}: tests must be a non-empty array`);
    if (m.envs !== undefined && (!Array.isArray(m.envs) || m.envs.length === 0)) throw new Error(`${file}: mutant ${m.id}: envs must be a non-empty array`);
    if (seen.has(m.id)) throw new Error(`${file}: duplicate id ${m.id}`);
    seen.add(m.id);
  }
  return list;
}

// ------------------------------------------------------------------------------- locating code

/**
 * Index of the `}` closing the `{` at `open`, skipping strings, template literals (with
 * nested `${}`), comments and regular expression literals.
 */
function closingBrace(src, open) {
  let depth = 0;
  const templates = []; // brace depth at which each open `${` resumes its template
  let i = open;
  let prev = ''; // last significant character, to tell a regex from a division
  const skipString = (q) => {
    for (i++; i < src.length; i++) {
      if (src[i] === '\\') i++;
      else if (src[i] === q) return;
    }
  };
  const skipTemplate = () => {
    // from just after a backtick or a `}` closing `${`; stops after the closing backtick,
    // or just after a `${` (pushed on the stack)
    for (; i < src.length; i++) {
      if (src[i] === '\\') i++;
      else if (src[i] === '`') return;
      else if (src[i] === '$' && src[i + 1] === '{') {
        i++;
        templates.push(depth);
        depth++;
        return;
      }
    }
  };
  for (; i < src.length; i++) {
    const c = src[i];
    if (/\s/.test(c)) continue;
    if (c === '/' && src[i + 1] === '/') {
      i = src.indexOf('\n', i);
      if (i < 0) break;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      i = src.indexOf('*/', i + 2) + 1;
      if (i <= 0) break;
      continue;
    }
    if (c === '"' || c === "'") {
      skipString(c);
      prev = 'x';
      continue;
    }
    if (c === '`') {
      i++;
      skipTemplate();
      prev = 'x';
      continue;
    }
    if (c === '/' && (prev === '' || /[(,=:[!&|?{};+\-*%<>~^]/.test(prev) || /\b(return|typeof|case|in|of)$/.test(src.slice(Math.max(0, i - 7), i).trimEnd()))) {
      let inClass = false;
      for (i++; i < src.length; i++) {
        if (src[i] === '\\') i++;
        else if (src[i] === '[') inClass = true;
        else if (src[i] === ']') inClass = false;
        else if (src[i] === '/' && !inClass) break;
      }
      prev = 'x';
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (templates.length && templates[templates.length - 1] === depth) {
        templates.pop();
        i++;
        skipTemplate();
        prev = 'x';
        continue;
      }
      if (depth === 0) return i;
    }
    prev = c;
  }
  return -1;
}

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Ranges `[header start, closing brace]` of every definition of `name` (class, function, method, `name = (...) =>`) in src[from, to). */
function definitions(src, name, from, to) {
  const n = escapeRe(name);
  const patterns = [
    new RegExp(`\\bclass\\s+${n}\\b[^{]*\\{`, 'g'),
    new RegExp(`\\bfunction\\s*\\*?\\s*${n}\\s*\\([^)]*\\)\\s*\\{`, 'g'),
    new RegExp(`(?:^|\\n)[ \\t]*(?:static\\s+)?(?:async\\s+)?\\*?\\s*(?:\\[)?${n}(?:\\])?\\s*\\([^)]*\\)\\s*\\{`, 'g'),
    new RegExp(`\\b${n}\\s*=\\s*(?:async\\s*)?(?:\\([^)]*\\)|\\w+)\\s*=>\\s*\\{`, 'g'),
  ];
  const out = [];
  for (const re of patterns) {
    re.lastIndex = from;
    for (let m = re.exec(src); m && m.index < to; m = re.exec(src)) {
      const open = m.index + m[0].length - 1;
      const close = closingBrace(src, open);
      if (close > 0 && close <= to) out.push([m.index, close]); // the header counts (default parameters)
    }
  }
  return out;
}

/** Does the text at `index` lie inside `qualified` (`fn`, `Class.method`, `outer.inner`)? */
function insideFunction(src, qualified, index) {
  let ranges = [[0, src.length]];
  for (const part of qualified.split('.')) {
    const next = [];
    for (const [from, to] of ranges) next.push(...definitions(src, part, from, to));
    if (next.length === 0) return `no definition of '${part}' found`;
    ranges = next;
  }
  return ranges.some(([open, close]) => index > open && index < close) ? null : `the find string is not inside ${qualified}`;
}

function occurrences(text, find) {
  const at = [];
  for (let i = text.indexOf(find); i >= 0; i = text.indexOf(find, i + 1)) at.push(i);
  return at;
}

/** The mutated text of `m.file` under `root`, or throws a clear error. */
function mutatedText(root, m) {
  const file = path.join(root, m.file);
  if (!fs.existsSync(file)) throw new Error(`${m.file} does not exist`);
  const src = fs.readFileSync(file, 'utf8');
  const at = occurrences(src, m.find);
  if (at.length !== 1) {
    throw new Error(`find string occurs ${at.length} times in ${m.file} (must be exactly once): ${JSON.stringify(m.find)}`);
  }
  const where = insideFunction(src, m.function, at[0]);
  if (where) throw new Error(`${m.file}: ${where} (the code moved? update 'function' or 'find')`);
  return src.slice(0, at[0]) + m.replace + src.slice(at[0] + m.find.length);
}

// ------------------------------------------------------------------------------- copies

function nativeBinaries() {
  const dir = path.join(ROOT, 'native');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.node')) : [];
}

/** Waits (a build in progress finishes within ~10 minutes) until native/*.node exists and stopped changing. */
async function waitForNative() {
  for (let tries = 0; ; tries++) {
    const found = nativeBinaries();
    if (found.length > 0) {
      const sizes = () => found.map((f) => fs.statSync(path.join(ROOT, 'native', f)).size + ':' + fs.statSync(path.join(ROOT, 'native', f)).mtimeMs).join();
      const before = sizes();
      await new Promise((r) => setTimeout(r, 2000));
      if (sizes() === before) return;
      continue;
    }
    if (tries >= 15) throw new Error('native/*.node is missing (waited 15 minutes for a build)');
    console.error('mutate-js: native/*.node is missing (a build is probably running); retrying in 60 s');
    await new Promise((r) => setTimeout(r, 60000));
  }
}

/** Copies `from` to `to`; `.node` files are hard-linked when `link` (they are never mutated). */
function copyTree(from, to, link) {
  const stat = fs.statSync(from);
  if (stat.isDirectory()) {
    fs.mkdirSync(to, { recursive: true });
    for (const entry of fs.readdirSync(from)) copyTree(path.join(from, entry), path.join(to, entry), link);
    return;
  }
  if (link && from.endsWith('.node')) {
    try {
      fs.linkSync(from, to);
      return;
    } catch {
      // another file system: copy it
    }
  }
  fs.copyFileSync(from, to);
}

/** A snapshot of the working tree's package files, taken once so every run sees the same code. */
function snapshot(tmp) {
  const base = path.join(tmp, 'base');
  fs.mkdirSync(base, { recursive: true });
  for (const entry of COPIED) {
    const from = path.join(ROOT, entry);
    if (!fs.existsSync(from)) continue;
    if (entry === 'native') {
      fs.mkdirSync(path.join(base, 'native'));
      for (const f of fs.readdirSync(from)) copyTree(path.join(from, f), path.join(base, 'native', f), false);
    } else {
      copyTree(from, path.join(base, entry), false);
    }
  }
  return base;
}

let copies = 0;
function freshCopy(tmp, base, label) {
  const dir = path.join(tmp, `${String(++copies).padStart(3, '0')}-${label.replace(/[^\w.-]/g, '_')}`);
  copyTree(base, dir, true);
  return dir;
}

function removeCopy(dir, opts) {
  if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
}

// ------------------------------------------------------------------------------- running tests

/** The test files of a mutant, relative to the package root (`*` expands in the file name). */
function resolveTests(base, tests) {
  const out = [];
  for (const t of tests) {
    if (!t.includes('*')) {
      if (!fs.existsSync(path.join(base, t))) throw new Error(`test file ${t} does not exist`);
      out.push(t);
      continue;
    }
    const dir = path.dirname(t);
    const re = new RegExp(`^${path.basename(t).split('*').map(escapeRe).join('.*')}$`);
    const full = path.join(base, dir);
    const matches = fs.existsSync(full) ? fs.readdirSync(full).filter((f) => re.test(f)).sort() : [];
    out.push(...matches.map((f) => path.join(dir, f)));
  }
  if (out.length === 0) throw new Error(`no test file matches ${tests.join(', ')}`);
  return [...new Set(out)].sort();
}

function runEnv(extra) {
  const env = { ...process.env };
  for (const k of TEST_ENV) delete env[k];
  return { ...env, ...extra };
}

/** Runs the files with `node --test` in `dir`: {passed, timedOut, seconds, failures, tail}. */
let running = null; // the test run in progress, killed (its process group) on interrupt
function runTests(dir, files, extraEnv, timeoutSec) {
  return new Promise((resolve) => {
    const start = Date.now();
    const child = spawn(process.execPath, ['--test', '--test-timeout=120000', '--test-reporter=tap', ...files], {
      cwd: dir,
      env: runEnv(extraEnv),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so a timeout kills the test processes it spawned too
    });
    running = child;
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutSec * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running = null;
      const failures = [];
      for (const line of out.split('\n')) {
        const m = /^(\s*)not ok \d+ - (.*?)(?:\s+#.*)?$/.exec(line);
        if (m) failures.push(`${m[1].length >= 4 ? '  ' : ''}${m[2]}`);
      }
      const count = (what) => {
        const m = new RegExp(`^# ${what} (\\d+)$`, 'm').exec(out);
        return m ? Number(m[1]) : 0;
      };
      const tests = { pass: count('pass'), fail: count('fail') };
      // A run that ran no test at all proves nothing: it counts as a failure.
      const passed = !timedOut && code === 0 && tests.pass > 0;
      const tail = out.split('\n').slice(-40).join('\n');
      resolve({ passed, timedOut, code, signal, tests, seconds: (Date.now() - start) / 1000, failures: failures.slice(0, 12), tail });
    });
  });
}

// ------------------------------------------------------------------------------- main

function envLabel(env) {
  const keys = Object.keys(env);
  return keys.length ? keys.map((k) => `${k}=${env[k]}`).join(' ') : 'default';
}

function printTable(results) {
  const rows = results.map((r) => [r.id, r.verdict, r.seconds === undefined ? '' : r.seconds.toFixed(1), r.note || '']);
  const head = ['mutant', 'verdict', 'sec', 'note'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i === 3 ? c : String(c).padEnd(w[i]))).join('  ');
  console.log(`\n${line(head)}\n${line(w.map((n, i) => '-'.repeat(i === 3 ? 4 : n)))}`);
  for (const r of rows) console.log(line(r));
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const all = loadList(opts.list);
  const unknown = opts.ids.filter((id) => !all.some((m) => m.id === id));
  if (unknown.length) usage(`unknown mutant id(s): ${unknown.join(', ')}`);
  const mutants = opts.ids.length ? all.filter((m) => opts.ids.includes(m.id)) : all;

  if (opts.check) {
    let bad = 0;
    for (const m of mutants) {
      try {
        mutatedText(ROOT, m);
        resolveTests(ROOT, m.tests);
        console.log(`ok     ${m.id}`);
      } catch (error) {
        bad++;
        console.log(`ERROR  ${m.id}: ${error.message}`);
      }
    }
    console.log(`\n${mutants.length - bad} of ${mutants.length} mutants apply to the current lib/`);
    process.exit(bad ? 1 : 0);
  }

  await waitForNative();
  const started = Date.now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'reprise-mutate-js-'));
  const cleanup = () => {
    if (!opts.keep) fs.rmSync(tmp, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      if (running) {
        try {
          process.kill(-running.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      cleanup();
      process.exit(130);
    });
  }
  const base = snapshot(tmp);
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  const dirty = spawnSync('git', ['status', '--porcelain', '--', ...COPIED], { cwd: ROOT, encoding: 'utf8' }).stdout.trim() !== '';
  console.log(`mutate-js: ${mutants.length} mutant(s) on ${head}${dirty ? ' (with uncommitted changes)' : ''}; copies under ${tmp}`);

  const baselines = new Map(); // files + env -> run result
  async function baseline(files, env) {
    const key = JSON.stringify([files, env]);
    if (!baselines.has(key)) {
      const dir = freshCopy(tmp, base, 'baseline');
      process.stdout.write(`  baseline  ${files.join(' ')} [${envLabel(env)}] ... `);
      const r = await runTests(dir, files, env, opts.timeout);
      console.log(`${r.passed ? 'pass' : r.timedOut ? 'TIMEOUT' : 'FAIL'} (${r.tests.pass} passed, ${r.tests.fail} failed, ${r.seconds.toFixed(1)} s)`);
      if (!r.passed) console.log(r.failures.length ? r.failures.map((f) => `      ${f}`).join('\n') : r.tail);
      removeCopy(dir, opts);
      baselines.set(key, { files, env: envLabel(env), passed: r.passed, timedOut: r.timedOut, tests: r.tests, seconds: r.seconds, failures: r.failures });
    }
    return baselines.get(key);
  }

  const results = [];
  for (const m of mutants) {
    const result = { id: m.id, area: m.area, file: m.file, function: m.function, description: m.description };
    results.push(result);
    console.log(`\n[${results.length}/${mutants.length}] ${m.id}: ${m.description}`);
    let files;
    let text;
    try {
      files = resolveTests(base, m.tests);
      text = mutatedText(base, m);
    } catch (error) {
      Object.assign(result, { verdict: 'ERROR', note: error.message });
      console.log(`  ERROR: ${error.message}`);
      continue;
    }
    result.tests = files;
    result.runs = [];
    let seconds = 0;
    for (const env of m.envs || [{}]) {
      const b = await baseline(files, env);
      if (!b.passed) {
        Object.assign(result, { verdict: 'BASELINE-FAIL', note: `without the mutation ${files.join(' ')} [${envLabel(env)}] ${b.timedOut ? `times out after ${opts.timeout} s` : `fails: ${b.failures.join('; ') || 'see the log above'}`}` });
        break;
      }
      const dir = freshCopy(tmp, base, m.id);
      const target = path.join(dir, m.file);
      fs.writeFileSync(target, text);
      const check = spawnSync(process.execPath, ['--check', target], { encoding: 'utf8' });
      if (check.status !== 0) {
        removeCopy(dir, opts);
        Object.assign(result, { verdict: 'ERROR', note: `the mutated ${m.file} does not parse: ${check.stderr.trim().split('\n').slice(0, 4).join(' ')}` });
        break;
      }
      process.stdout.write(`  mutant    ${files.join(' ')} [${envLabel(env)}] ... `);
      const r = await runTests(dir, files, env, opts.timeout);
      removeCopy(dir, opts);
      seconds += r.seconds;
      console.log(`${r.passed ? 'all tests pass' : r.timedOut ? 'timed out' : 'tests fail'} (${r.tests.pass} passed, ${r.tests.fail} failed, ${r.seconds.toFixed(1)} s)`);
      if (r.failures.length) console.log(r.failures.map((f) => `      ${f}`).join('\n'));
      result.runs.push({ env: envLabel(env), passed: r.passed, timedOut: r.timedOut, tests: r.tests, seconds: r.seconds, failures: r.failures });
      if (!r.passed) {
        const first = r.failures.find((f) => !f.startsWith(' ')) || r.failures[0];
        Object.assign(result, { verdict: 'CAUGHT', note: r.timedOut ? `timed out after ${opts.timeout} s [${envLabel(env)}]` : `[${envLabel(env)}] ${first || `exit ${r.code}`}` });
        break; // one catching run is enough
      }
    }
    result.seconds = seconds;
    if (!result.verdict) {
      const passing = `${files.map((f) => path.basename(f)).join(', ')} pass under ${(m.envs || [{}]).map(envLabel).join(' and ')}`;
      Object.assign(result, { verdict: 'MISSED', note: m.hint ? `wanted: ${m.hint} (${passing})` : passing });
    }
  }
  cleanup();

  const totalSeconds = (Date.now() - started) / 1000;
  printTable(results);
  const count = (v) => results.filter((r) => r.verdict === v).length;
  const summary = { caught: count('CAUGHT'), missed: count('MISSED'), error: count('ERROR'), baselineFail: count('BASELINE-FAIL'), total: results.length };
  console.log(
    `\n${summary.caught} caught, ${summary.missed} missed, ${summary.error} error, ${summary.baselineFail} baseline-fail of ${summary.total}` +
      ` in ${totalSeconds.toFixed(0)} s (${baselines.size} baseline runs)`,
  );
  if (opts.out) {
    const report = { commit: head, dirty, date: new Date().toISOString(), seconds: totalSeconds, summary, baselines: [...baselines.values()], results };
    fs.writeFileSync(opts.out, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`results written to ${opts.out}`);
  }
  const failed = summary.error > 0 || summary.baselineFail > 0 || (summary.missed > 0 && !opts.allowMissed);
  process.exit(failed ? 1 : 0);
}

main().catch((error) => {
  console.error(`mutate-js: ${error && error.stack ? error.stack : error}`);
  process.exit(2);
});
