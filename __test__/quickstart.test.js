'use strict';
// The README's quick start, run verbatim (only resolved to this checkout) twice on one file.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { tempDir } = require('./helpers');

test('the README quick start runs twice in a row on the same file and exits 0 both times', () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const code = /```javascript\n([\s\S]*?)```/.exec(section)[1];
  assert.match(code, /require\('reprise'\)/);
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(path.join(__dirname, '..'), path.join(dir, 'node_modules', 'reprise'), 'dir');
  fs.writeFileSync(path.join(dir, 'app.js'), code);
  for (let run = 1; run <= 2; run++) {
    const r = spawnSync(process.execPath, ['app.js'], { cwd: dir, encoding: 'utf8', timeout: 30000 });
    assert.equal(r.status, 0, `run ${run} failed: ${r.stderr}`);
    assert.equal(r.stdout, 'Hello, World!\n', `run ${run}`);
  }
  assert.ok(fs.existsSync(path.join(dir, 'myapp.db')));
});
