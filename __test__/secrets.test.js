'use strict';
// A password in a PostgreSQL URL never shows: not in logs (RUST_LOG=debug), error messages,
// inspected providers or errors, nor in the CLI's output, --json included. The server here
// trusts local connections, so any password connects.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { uniqueSchema, psql } = require('./helpers');

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'bin', 'reprise.js');
const PASSWORD = 'Hush-4815162342-pw';
const base = new URL(process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test');
base.password = PASSWORD;
const URL_WITH_PASSWORD = base.toString();
const unreachable = new URL(URL_WITH_PASSWORD);
unreachable.port = '1';
const noDatabase = new URL(URL_WITH_PASSWORD);
noDatabase.pathname = '/no_such_database_here';

function env() {
  return { ...process.env, RUST_LOG: 'debug' };
}

test('a PostgreSQL password appears nowhere: logs, errors, inspected objects, CLI output', () => {
  const schema = uniqueSchema('secrets');
  const outputs = [];
  try {
    const script = `
      const util = require('node:util');
      const { PostgresProvider, Client, Runtime } = require(${JSON.stringify(ROOT)});
      const [url, unreachable, noDatabase, schema, badPort, queryPassword] = process.argv.slice(1);
      const show = (label, value) => console.log(label, typeof value === 'string' ? value : util.inspect(value, { depth: 5, showHidden: true }));
      (async () => {
        const provider = await PostgresProvider.connectWithSchema(url, schema, { poolSize: 2 });
        show('provider', provider);
        show('provider json', JSON.stringify(provider));
        const runtime = new Runtime(provider, { keepAlive: false });
        runtime.registerActivity('Fail', () => { throw new Error('activity failed on purpose'); });
        runtime.registerOrchestration('Fails', function* (ctx) { return yield ctx.scheduleActivity('Fail'); });
        await runtime.start();
        const client = new Client(provider);
        await client.startOrchestration('one', 'Fails');
        show('result', await client.waitForOrchestration('one', 10000));
        await runtime.shutdown();
        for (const [label, attempt] of [
          ['unreachable', () => PostgresProvider.connect(unreachable, { connectTimeoutMs: 2000 })],
          ['no database', () => PostgresProvider.connect(noDatabase, { connectTimeoutMs: 2000 })],
          ['bad schema', () => PostgresProvider.connectWithSchema(url, 'bad-schema!')],
          ['bad option', () => PostgresProvider.connect(url, { poolSize: 0 })],
          ['misplaced at', () => PostgresProvider.connect(url.replace('postgres://', 'postgres:///'))],
          ['bad port', () => PostgresProvider.connect(badPort)],
          ['query password', () => PostgresProvider.connect(queryPassword, { connectTimeoutMs: 2000 })],
          ['not postgres', () => PostgresProvider.connect(url.replace('postgres://', 'mysql://'))],
        ]) {
          try {
            await attempt();
            console.log(label, 'connected?');
          } catch (e) {
            show(label, e);
            show(label + ' message', e.message);
            show(label + ' stack', e.stack);
          }
        }
      })();`;
    const badPort = URL_WITH_PASSWORD.replace(`:${base.port || 5432}/`, ':notaport/');
    const queryPassword = `postgres://${base.username}@127.0.0.1:1${base.pathname}?password=${PASSWORD}`;
    const args = [URL_WITH_PASSWORD, unreachable.toString(), noDatabase.toString(), schema, badPort, queryPassword];
    const run = spawnSync(process.execPath, ['-e', script, ...args], {
      env: env(),
      encoding: 'utf8',
      timeout: 60000,
    });
    assert.equal(run.status, 0, run.stderr);
    outputs.push(['library stdout', run.stdout], ['library stderr', run.stderr]);
    // The run did what it says: the failures were reported, with the user and host shown.
    assert.match(run.stdout, /activity failed on purpose/);
    assert.match(run.stdout, /unreachable .*ERR_UNAVAILABLE/s);
    assert.match(run.stdout, /no database .*no_such_database_here/s);
    assert.match(run.stdout, /misplaced at .*an '@' outside its user:password@host part/s);
    assert.match(run.stdout, /query password .*password=\*\*\*|query password .*ERR_UNAVAILABLE/s);
    assert.match(run.stderr, /runtime started/);

    const cli = (args) => {
      const r = spawnSync(process.execPath, [CLI, ...args], { env: env(), encoding: 'utf8', timeout: 30000 });
      outputs.push([`reprise ${args.join(' ').replaceAll(PASSWORD, '<password>')}`, r.stdout + r.stderr]);
      return r;
    };
    for (const json of [[], ['--json']]) {
      assert.equal(cli(['--db', URL_WITH_PASSWORD, '--schema', schema, ...json, 'list']).status, 0);
      assert.equal(cli(['--db', URL_WITH_PASSWORD, '--schema', schema, ...json, 'show', 'one']).status, 0);
      assert.equal(cli(['--db', URL_WITH_PASSWORD, '--schema', schema, ...json, 'show', 'nobody']).status, 1);
      assert.equal(cli(['--db', unreachable.toString(), ...json, 'list']).status, 1);
      assert.equal(cli(['--db', noDatabase.toString(), ...json, 'list']).status, 1);
      assert.equal(cli(['--db', URL_WITH_PASSWORD, '--schema', 'bad-schema!', ...json, 'list']).status, 2);
      assert.equal(cli(['--db', URL_WITH_PASSWORD, ...json, 'list', '--no-such-flag']).status, 2);
    }
    const unreachableJson = outputs.find(([label]) => label.includes(':1/') && label.includes('--json'));
    assert.match(unreachableJson[1], /"code":\s*"ERR_UNAVAILABLE"/);
  } finally {
    psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  }
  for (const [label, text] of outputs) {
    assert.ok(!text.includes(PASSWORD), `the password shows in ${label}:\n${text}`);
    assert.ok(!text.includes(encodeURIComponent(PASSWORD)), `the encoded password shows in ${label}`);
  }
});
