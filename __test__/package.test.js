'use strict';
// Installs reprise the way a user does: `npm pack` the root package and the linux-x64-gnu
// platform package (holding the freshly built native/ binary), install both tarballs offline
// into a folder outside the repository, and run the quick start from CommonJS, ESM and
// TypeScript with no Rust toolchain on PATH. Without the platform package, require('reprise')
// must say which package to install.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const PLATFORM = 'linux-x64-gnu';
const PLATFORM_PACKAGE = `reprise-${PLATFORM}`;
const BINARY = `reprise.${PLATFORM}.node`;

function isLinuxX64Gnu() {
  if (process.platform !== 'linux' || process.arch !== 'x64') return false;
  return Boolean(process.report.getReport().header.glibcVersionRuntime);
}

/** npm's own entry script, so npm runs under this node with whatever PATH we choose. */
function npmCli() {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const candidate = path.join(dir, 'npm');
    if (!dir || !fs.existsSync(candidate)) continue;
    const real = fs.realpathSync(candidate);
    const cli = real.endsWith('.js') ? real : path.join(path.dirname(real), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
    if (fs.existsSync(cli)) return cli;
  }
  const nextToNode = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  if (fs.existsSync(nextToNode)) return nextToNode;
  throw new Error('npm not found on PATH');
}

/** This process's environment with PATH cleared of every folder holding cargo or rustc, and no npm_* variables. */
function noRustEnv(tmp) {
  const bin = path.join(tmp, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  const hasRust = (dir) => ['cargo', 'rustc', 'cargo.exe', 'rustc.exe'].some((exe) => fs.existsSync(path.join(dir, exe)));
  const dirs = (process.env.PATH || '').split(path.delimiter).filter((dir) => dir && !hasRust(dir));
  const env = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key)) env[key] = value;
  env.PATH = [bin, ...dirs].join(path.delimiter);
  // A user config of our own and an empty cache: nothing comes from this machine's npm setup.
  env.npm_config_userconfig = path.join(tmp, 'npmrc');
  fs.writeFileSync(env.npm_config_userconfig, '');
  env.npm_config_cache = path.join(tmp, 'npm-cache');
  env.npm_config_update_notifier = 'false';
  return env;
}

function run(cmd, args, options) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60000, ...options });
  if (r.error) throw r.error;
  return r;
}

function ok(r, what) {
  assert.equal(r.status, 0, `${what} failed (exit ${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

function pack(cli, dir, dest, env) {
  const r = ok(run(process.execPath, [cli, 'pack', '--ignore-scripts', '--json', '--pack-destination', dest], { cwd: dir, env }), `npm pack in ${dir}`);
  const [info] = JSON.parse(r.stdout);
  return { file: path.join(dest, info.filename), files: info.files.map((f) => f.path) };
}

function codeBlock(heading, lang) {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(heading);
  assert.notEqual(at, -1, `README has no '${heading}' section`);
  return new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(readme.slice(at))[1];
}

test('packed tarballs install offline and run the quick start from CJS, ESM and TypeScript without Rust', { timeout: 120000 }, (t) => {
  if (!isLinuxX64Gnu()) {
    t.skip(`only ${PLATFORM} has a locally built binary to pack (this is ${process.platform}-${process.arch})`);
    return;
  }
  const built = path.join(ROOT, 'native', BINARY);
  assert.ok(fs.existsSync(built), `${built} is missing: run npm run build`);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'reprise-package-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const env = noRustEnv(tmp);
  const cli = npmCli();
  assert.notEqual(run('/bin/sh', ['-c', 'command -v cargo || command -v rustc'], { env }).status, 0, 'cargo or rustc is still on PATH');

  // 1. Pack: the root package as it is, the platform package from a copy of npm/linux-x64-gnu
  //    with the binary added (nothing is written into the repository).
  const tarballs = path.join(tmp, 'tarballs');
  fs.mkdirSync(tarballs);
  const root = pack(cli, ROOT, tarballs, env);
  assert.deepEqual(root.files.filter((f) => f.endsWith('.node')), [], 'the root package must not hold a .node file');
  for (const f of ['package.json', 'index.js', 'index.d.ts', 'lib/native.js', 'lib/context.js']) assert.ok(root.files.includes(f), `root tarball lacks ${f}`);
  const platformDir = path.join(tmp, PLATFORM_PACKAGE);
  fs.cpSync(path.join(ROOT, 'npm', PLATFORM), platformDir, { recursive: true });
  fs.copyFileSync(built, path.join(platformDir, BINARY));
  const platform = pack(cli, platformDir, tarballs, env);
  assert.deepEqual(platform.files.sort(), ['README.md', 'package.json', BINARY]);

  // 2. Install both offline, from an unreachable registry and an empty cache: anything not in
  //    the two tarballs would fail to resolve. The root's optional dependency on the platform
  //    package must be met by the local tarball; the other platforms' are skipped.
  const app = path.join(tmp, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  ok(
    run(process.execPath, [cli, 'install', '--offline', '--no-audit', '--no-fund', '--registry', 'http://127.0.0.1:9/', root.file, platform.file], { cwd: app, env }),
    'npm install',
  );
  const modules = path.join(app, 'node_modules');
  assert.deepEqual(fs.readdirSync(modules).filter((n) => !n.startsWith('.')).sort(), ['reprise', PLATFORM_PACKAGE]);
  assert.ok(!fs.existsSync(path.join(modules, 'reprise', 'native')), 'the installed root package has no native/ folder');
  const lock = JSON.parse(fs.readFileSync(path.join(app, 'package-lock.json'), 'utf8'));
  const version = require(path.join(ROOT, 'package.json')).version;
  assert.equal(lock.packages['node_modules/reprise'].optionalDependencies[PLATFORM_PACKAGE], version);
  const entry = lock.packages[`node_modules/${PLATFORM_PACKAGE}`];
  assert.equal(entry.version, version);
  assert.match(entry.resolved, /^file:.*\.tgz$/);
  for (const [where, pkg] of Object.entries(lock.packages)) {
    if (where && pkg.resolved) assert.match(pkg.resolved, /^file:/, `${where} came from ${pkg.resolved}`);
  }

  // 3. CommonJS: the README quick start verbatim.
  fs.writeFileSync(path.join(app, 'quickstart.cjs'), codeBlock('## Quick start', 'javascript'));
  const cjs = ok(run(process.execPath, ['quickstart.cjs'], { cwd: app, env }), 'CJS quick start');
  assert.equal(cjs.stdout, 'Hello, World!\n');
  const where = ok(run(process.execPath, ['-p', `require.resolve('${PLATFORM_PACKAGE}')`], { cwd: app, env }), 'resolve');
  assert.equal(where.stdout.trim(), fs.realpathSync(path.join(modules, PLATFORM_PACKAGE, BINARY)));

  // 4. ESM: named imports.
  fs.writeFileSync(
    path.join(app, 'quickstart.mjs'),
    `import { Runtime, SqliteProvider, Client } from 'reprise';

const provider = await SqliteProvider.open('sqlite:esm.db');
const client = new Client(provider);
const runtime = new Runtime(provider);
runtime.registerActivity('Greet', async (ctx, name) => \`Hello, \${name}!\`);
runtime.registerOrchestration('GreetWorkflow', function* (ctx, input) {
  return yield ctx.scheduleActivity('Greet', input.name);
});
await runtime.start();
await client.startOrchestration('greet-esm', 'GreetWorkflow', { name: 'ESM' });
const result = await client.waitForOrchestration('greet-esm');
console.log(result.output);
await runtime.shutdown();
`,
  );
  const esm = ok(run(process.execPath, ['quickstart.mjs'], { cwd: app, env }), 'ESM quick start');
  assert.equal(esm.stdout, 'Hello, ESM!\n');

  // 5. TypeScript: the README's TypeScript quick start type-checks against the installed
  //    package (strict) and runs once compiled.
  fs.writeFileSync(path.join(app, 'quickstart.ts'), codeBlock('## Quick start in TypeScript', 'typescript'));
  fs.writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: 'ES2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        outDir: 'dist',
        types: ['node'],
        typeRoots: [path.join(ROOT, 'node_modules', '@types')],
      },
      files: ['quickstart.ts'],
    }),
  );
  ok(run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', '.'], { cwd: app, env }), 'tsc on the TypeScript quick start');
  const ts = ok(run(process.execPath, [path.join('dist', 'quickstart.js')], { cwd: app, env }), 'TypeScript quick start');
  assert.equal(ts.stdout, 'Hello, Ada Lovelace!\n');

  // 6. Without the platform package, loading says which package to install.
  fs.rmSync(path.join(modules, PLATFORM_PACKAGE), { recursive: true });
  const missing = run(process.execPath, ['-e', "require('reprise')"], { cwd: app, env });
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /npm install reprise-linux-x64-gnu/);
  assert.match(missing.stderr, /ERR_NATIVE_BINARY_MISSING|no native binary for this platform \(linux-x64-gnu\)/);
});

test('every napi target has a platform package at the root version, and the root depends on each optionally', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const platforms = {
    'x86_64-unknown-linux-gnu': ['linux-x64-gnu', 'linux', 'x64', 'glibc'],
    'x86_64-unknown-linux-musl': ['linux-x64-musl', 'linux', 'x64', 'musl'],
    'aarch64-unknown-linux-gnu': ['linux-arm64-gnu', 'linux', 'arm64', 'glibc'],
    'x86_64-apple-darwin': ['darwin-x64', 'darwin', 'x64', null],
    'aarch64-apple-darwin': ['darwin-arm64', 'darwin', 'arm64', null],
    'x86_64-pc-windows-msvc': ['win32-x64-msvc', 'win32', 'x64', null],
  };
  assert.deepEqual([...pkg.napi.targets].sort(), Object.keys(platforms).sort());
  assert.deepEqual(fs.readdirSync(path.join(ROOT, 'npm')).sort(), Object.values(platforms).map(([p]) => p).sort());
  const optional = {};
  for (const [, [platform, os_, cpu, libc]] of Object.entries(platforms)) {
    const sub = JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', platform, 'package.json'), 'utf8'));
    const binary = `reprise.${platform}.node`;
    assert.equal(sub.name, `reprise-${platform}`);
    assert.equal(sub.version, pkg.version, `${sub.name} version`);
    assert.equal(sub.main, binary);
    assert.deepEqual(sub.files, [binary]);
    assert.deepEqual(sub.os, [os_]);
    assert.deepEqual(sub.cpu, [cpu]);
    assert.deepEqual(sub.libc, libc ? [libc] : undefined);
    assert.deepEqual(sub.engines, pkg.engines);
    optional[sub.name] = pkg.version;
  }
  assert.deepEqual(pkg.optionalDependencies, optional);
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  assert.deepEqual(lock.packages[''].optionalDependencies, optional, 'package-lock.json is in step with package.json');
  // The root package never ships a binary; a clone builds one through `prepare`, never at install.
  assert.ok(pkg.files.includes('!**/*.node'));
  assert.ok(!pkg.files.some((f) => !f.startsWith('!') && (f.startsWith('native') || f.endsWith('.node'))));
  assert.equal(pkg.scripts.prepare, 'npm run build');
  for (const hook of ['preinstall', 'install', 'postinstall']) assert.equal(pkg.scripts[hook], undefined, hook);
});
