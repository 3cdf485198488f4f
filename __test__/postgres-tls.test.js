'use strict';
// PostgreSQL over TLS: the URL's sslmode and sslrootcert, as libpq reads them. Whether a
// connection is encrypted is read from the server (pg_stat_ssl of the store's backends,
// found by their application_name `reprise:<schema>`). Needs a server on DATABASE_URL with
// ssl on and a certificate for `localhost` signed by (or being) SSL_ROOT_CERT, default the
// Debian snakeoil certificate; skipped with the reason otherwise.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const { PostgresProvider, Client, Runtime, InvalidArgumentError } = require('..');
const { databaseUrl, uniqueSchema, psql } = require('./helpers');

const ROOT_CERT = process.env.SSL_ROOT_CERT || '/etc/ssl/certs/ssl-cert-snakeoil.pem';

/** Why these tests cannot run here, or false. */
function unavailable() {
  const r = spawnSync('psql', [databaseUrl, '-At', '-c', 'SHOW ssl'], { encoding: 'utf8', timeout: 10000 });
  if (r.error) return `psql is needed for these tests: ${r.error.message}`;
  if (r.status !== 0) return `PostgreSQL is not reachable at ${databaseUrl}: ${r.stderr.trim()}`;
  if (r.stdout.trim() !== 'on') return `the server at ${databaseUrl} has ssl off`;
  if (!fs.existsSync(ROOT_CERT)) return `no root certificate at ${ROOT_CERT} (set SSL_ROOT_CERT)`;
  return false;
}
const skip = unavailable();

/** DATABASE_URL with another host and these query parameters. */
function urlWith(params, host) {
  const url = new URL(databaseUrl);
  if (host) url.hostname = host;
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  return url.toString();
}

/** `ssl` of every backend of the schema's store (one row each), as booleans. */
function backendsEncrypted(schema) {
  const rows = psql(
    `SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'reprise:${schema}'`,
  );
  return rows.split('\n').filter(Boolean).map((v) => v === 't');
}

/** Connects with `params`, makes the pool open a connection, returns what the server saw. */
async function connectAndProbe(t, params, host) {
  const schema = uniqueSchema('tls');
  t.after(() => psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
  const provider = await PostgresProvider.connectWithSchema(urlWith(params, host), schema, { poolSize: 2 });
  await new Client(provider).getStatus('nobody');
  return backendsEncrypted(schema);
}

/** Rejects within `ms` with InvalidArgumentError whose message matches every pattern. */
async function refusedQuickly(url, patterns, ms = 3000) {
  const schema = uniqueSchema('tls_refused');
  const started = Date.now();
  // A long connect timeout: a quick refusal is not the timeout running out.
  await assert.rejects(PostgresProvider.connectWithSchema(url, schema, { connectTimeoutMs: 60000 }), (e) => {
    assert.ok(e instanceof InvalidArgumentError, `${e.name}: ${e.message}`);
    assert.equal(e.code, 'ERR_INVALID_ARGUMENT');
    for (const pattern of patterns) assert.match(e.message, pattern);
    return true;
  });
  const elapsed = Date.now() - started;
  assert.ok(elapsed < ms, `refused after ${elapsed} ms`);
}

test('sslmode=require: a runtime and a client work, and every connection of the store is encrypted', { skip }, async (t) => {
  const schema = uniqueSchema('tls_require');
  t.after(() => psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
  const provider = await PostgresProvider.connectWithSchema(urlWith({ sslmode: 'require' }), schema, { poolSize: 3 });
  const runtime = new Runtime(provider);
  runtime.registerActivity('Double', async (ctx, n) => n * 2);
  runtime.registerOrchestration('OverTls', function* (ctx, n) {
    return yield ctx.scheduleActivity('Double', n);
  });
  await runtime.start();
  try {
    const client = new Client(provider);
    await client.startOrchestration('tls-1', 'OverTls', 21);
    assert.equal((await client.waitForOrchestration('tls-1', 10000)).output, 42);
    const encrypted = backendsEncrypted(schema);
    assert.ok(encrypted.length >= 2, `the pool and the listener are connected: ${encrypted}`);
    assert.ok(encrypted.every(Boolean), `every backend uses TLS: ${encrypted}`);
  } finally {
    await runtime.shutdown(5000);
  }
});

test('sslmode=verify-ca with sslrootcert: the certificate is checked against the root, not the host name, and the connection is encrypted', { skip }, async (t) => {
  for (const host of ['localhost', '127.0.0.1']) {
    const encrypted = await connectAndProbe(t, { sslmode: 'verify-ca', sslrootcert: ROOT_CERT }, host);
    assert.ok(encrypted.length > 0 && encrypted.every(Boolean), `${host}: ${encrypted}`);
  }
});

test('sslmode=verify-full with sslrootcert against the host the certificate names: encrypted', { skip }, async (t) => {
  const encrypted = await connectAndProbe(t, { sslmode: 'verify-full', sslrootcert: ROOT_CERT }, 'localhost');
  assert.ok(encrypted.length > 0 && encrypted.every(Boolean), `${encrypted}`);
});

test('sslmode=verify-full without a root that signed the certificate fails at once as a TLS/certificate error naming the mode', { skip }, async () => {
  await refusedQuickly(urlWith({ sslmode: 'verify-full' }, 'localhost'), [
    /TLS\/certificate failure/,
    /sslmode=verify-full/,
    /UnknownIssuer/,
    /sslrootcert=<file>/,
  ]);
});

test('sslmode=verify-full against a host the certificate does not name fails at once, saying so', { skip }, async () => {
  await refusedQuickly(urlWith({ sslmode: 'verify-full', sslrootcert: ROOT_CERT }, '127.0.0.1'), [
    /TLS\/certificate failure/,
    /sslmode=verify-full/,
    /not valid for name "127\.0\.0\.1"/,
  ]);
});

test('sslmode=disable: the connections are not encrypted', { skip }, async (t) => {
  const encrypted = await connectAndProbe(t, { sslmode: 'disable' });
  assert.ok(encrypted.length > 0, 'connected');
  assert.ok(encrypted.every((e) => !e), `${encrypted}`);
});

test("no sslmode is libpq's prefer: TLS when the server offers it", { skip }, async (t) => {
  const url = new URL(databaseUrl);
  if (url.searchParams.has('sslmode') || process.env.PGSSLMODE) return t.skip('DATABASE_URL or PGSSLMODE sets a mode');
  const encrypted = await connectAndProbe(t, {});
  assert.ok(encrypted.length > 0 && encrypted.every(Boolean), `${encrypted}`);
});

test('an unknown sslmode and a missing sslrootcert file are configuration errors naming them', { skip }, async () => {
  const schema = uniqueSchema('tls_config');
  await assert.rejects(
    PostgresProvider.connectWithSchema(urlWith({ sslmode: 'verify' }), schema),
    (e) => e instanceof InvalidArgumentError && /sslmode 'verify' in the PostgreSQL URL is not a TLS mode: use disable, allow, prefer, require, verify-ca or verify-full/.test(e.message),
  );
  const missing = '/nonexistent/reprise-root.pem';
  await assert.rejects(
    PostgresProvider.connectWithSchema(urlWith({ sslmode: 'verify-ca', sslrootcert: missing }), schema),
    (e) => e instanceof InvalidArgumentError && e.message.includes(`sslrootcert file '${missing}'`) && /No such file/.test(e.message),
  );
});
