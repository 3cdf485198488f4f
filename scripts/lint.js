'use strict';
// `npm run lint` (and the first step of `npm test`): `cargo fmt --check`, clippy with every
// warning an error, then ESLint (eslint.config.js). Every step runs, so one report shows all
// that is wrong; the exit status is 1 if any failed.
//
//   node scripts/lint.js [rust|js]
const { execFileSync, spawn } = require('node:child_process');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const JS = ['lib', 'bin', 'index.js', '__test__', 'examples', 'demo', 'scripts', 'bench', 'eslint.config.js'];

function hostTriple() {
  const out = execFileSync('rustc', ['-vV'], { encoding: 'utf8' });
  return /host: (\S+)/.exec(out)[1];
}

/** Runs a command to its end; resolves with whether it exited 0 (output goes to ours). */
function run(cmd, args) {
  console.log(`\n$ ${cmd} ${args.join(' ')}`);
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'inherit', cwd: ROOT });
    child.on('error', (error) => {
      console.error(`\n${cmd}: ${error.message}`);
      resolve(false);
    });
    child.on('exit', (code, signal) => {
      if (code !== 0) console.error(`\n${cmd} failed (exit ${code ?? signal})`);
      resolve(code === 0);
    });
  });
}

async function main() {
  const only = process.argv[2];
  if (only && only !== 'rust' && only !== 'js') {
    console.error('usage: node scripts/lint.js [rust|js]');
    return false;
  }
  let ok = true;
  if (!only || only === 'rust') {
    ok = (await run('cargo', ['fmt', '--check'])) && ok;
    ok = (await run('cargo', ['clippy', '--release', '--target', hostTriple(), '--all-targets', '--', '-D', 'warnings'])) && ok;
  }
  if (!only || only === 'js') {
    const eslint = path.join(path.dirname(require.resolve('eslint/package.json')), 'bin', 'eslint.js');
    ok = (await run(process.execPath, [eslint, ...JS])) && ok;
  }
  return ok;
}

main().then((ok) => process.exit(ok ? 0 : 1));
