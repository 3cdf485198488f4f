'use strict';
// Run by `npm version` (the "version" script, after `napi version` bumped npm/*/package.json):
// points the root package's optionalDependencies on the platform packages at the new version,
// in package.json and package-lock.json, so the three always agree, and stages npm/ for the
// version commit.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const pkgPath = path.join(root, 'package.json');
const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
const prefix = `${pkg.name}-`;

function sync(deps) {
  for (const name of Object.keys(deps || {})) if (name.startsWith(prefix)) deps[name] = pkg.version;
}

sync(pkg.optionalDependencies);
fs.writeFileSync(pkgPath, `${JSON.stringify(pkg, null, 2)}\n`);

const lockPath = path.join(root, 'package-lock.json');
if (fs.existsSync(lockPath)) {
  const lock = JSON.parse(fs.readFileSync(lockPath, 'utf8'));
  if (lock.packages && lock.packages['']) sync(lock.packages[''].optionalDependencies);
  fs.writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
}

for (const dir of fs.readdirSync(path.join(root, 'npm'))) {
  const platform = JSON.parse(fs.readFileSync(path.join(root, 'npm', dir, 'package.json'), 'utf8'));
  if (platform.version !== pkg.version) {
    console.error(`npm/${dir}/package.json is at ${platform.version}, not ${pkg.version}: run napi version first`);
    process.exit(1);
  }
}
// npm commits package.json and package-lock.json itself; the platform manifests join them.
spawnSync('git', ['add', '--', 'npm'], { cwd: root, stdio: 'ignore' });
console.log(`platform packages and optionalDependencies at ${pkg.version}`);
