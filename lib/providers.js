'use strict';

const native = require('./native');
const { InvalidArgumentError, nativeCall } = require('./errors');
const { checkDuration, checkExact, checkOptionsObject, describe } = require('./json');

/** Embedded storage: one SQLite file (WAL), one runtime per file, any number of clients. */
class SqliteProvider {
  constructor(handle, url) {
    Object.defineProperty(this, '_native', { value: handle, enumerable: false });
    this.url = url;
  }

  /**
   * Opens `sqlite:path` (or a bare path), creating the file and its folder.
   * `options.synchronous`: 'normal' (default; survives a process crash) or 'full' (fsync
   * every commit; survives power loss). `options.unknownEventTtlMs`: how long an event
   * raised for an instance that does not exist yet is kept for it (default 24 h).
   */
  static async open(url, options = {}) {
    if (typeof url !== 'string' || url.trim() === '') {
      throw new InvalidArgumentError(`SqliteProvider.open(url): url must be a non-empty string like 'sqlite:./app.db', got ${describe(url)}`);
    }
    // A lone surrogate would reach the file system as U+FFFD: another file than the one named.
    checkExact(url, 'SqliteProvider.open(url): url');
    checkOptionsObject(options, ['synchronous', 'unknownEventTtlMs'], 'options', 'SqliteProvider.open');
    const synchronous = options.synchronous ?? 'normal';
    if (synchronous !== 'normal' && synchronous !== 'full') {
      throw new InvalidArgumentError(`options.synchronous must be 'normal' or 'full', got ${describe(synchronous)}`);
    }
    const checked = { synchronousFull: synchronous === 'full' };
    if (options.unknownEventTtlMs !== undefined) checked.unknownEventTtlMs = checkDuration(options.unknownEventTtlMs, 'options.unknownEventTtlMs');
    return new SqliteProvider(await nativeCall(native.openSqlite(url, JSON.stringify(checked))), url);
  }

  /** A private in-memory database: gone when the process exits. */
  static async inMemory() {
    return new SqliteProvider(await nativeCall(native.openSqliteInMemory()), 'sqlite::memory:');
  }
}

/** Options accepted by `PostgresProvider.connect(url, options)`: name -> [minimum, maximum]. */
const POSTGRES_OPTIONS = {
  poolSize: [1, 1000],
  pollIntervalMs: [10, 3600000],
  connectTimeoutMs: [1, 3600000],
};

const SCHEMA = /^[A-Za-z0-9_]{1,63}$/;

/** The URL with its password masked: in `user:password@` and in a `password=` parameter. */
function redactUrl(url) {
  return url.replace(/^([a-z]+:\/\/[^:@/?#]*):[^@/?#]*@/i, '$1:***@').replace(/([?&]password=)[^&#]*/gi, '$1***');
}

function checkPostgresUrl(url, what) {
  if (typeof url !== 'string' || url.trim() === '') {
    throw new InvalidArgumentError(`${what}: url must be a non-empty string like 'postgres://user:password@host:5432/database', got ${describe(url)}`);
  }
  if (!/^postgres(ql)?:\/\//i.test(url.trim())) {
    throw new InvalidArgumentError(`${what}: url must start with postgres:// or postgresql://, got ${describe(redactUrl(url))}`);
  }
}

function checkSchema(schema, what) {
  if (typeof schema !== 'string' || !SCHEMA.test(schema)) {
    throw new InvalidArgumentError(`${what}: schema must be 1 to 63 letters, digits or underscores, got ${describe(schema)}`);
  }
  if (/^pg_/i.test(schema)) {
    throw new InvalidArgumentError(`${what}: schema names starting with pg_ are reserved by PostgreSQL, got ${describe(schema)}`);
  }
}

function checkPostgresOptions(options) {
  if (options === undefined || options === null) return {};
  checkOptionsObject(options, [...Object.keys(POSTGRES_OPTIONS), 'unknownEventTtlMs', 'createSchema'], 'options', 'PostgresProvider');
  const out = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (key === 'unknownEventTtlMs') {
      out[key] = checkDuration(value, 'options.unknownEventTtlMs');
      continue;
    }
    if (key === 'createSchema') {
      if (typeof value !== 'boolean') throw new InvalidArgumentError(`options.createSchema must be a boolean, got ${describe(value)}`);
      out[key] = value;
      continue;
    }
    const [min, max] = POSTGRES_OPTIONS[key];
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`options.${key} must be an integer from ${min} to ${max}, got ${describe(value)}`);
    }
    out[key] = value;
  }
  return out;
}

/**
 * PostgreSQL storage: many processes (runtimes and clients) share one database; each
 * schema is a separate store (one per tenant). Wake-ups between processes use
 * LISTEN/NOTIFY, with polling (`pollIntervalMs`) only as the fallback.
 */
class PostgresProvider {
  constructor(handle, url, schema) {
    Object.defineProperty(this, '_native', { value: handle, enumerable: false });
    /** The URL with its password masked. */
    this.url = redactUrl(url);
    this.schema = schema;
  }

  /**
   * Connects to `postgres://user:password@host:port/database` and uses the `public` schema,
   * creating the tables if needed. `options`: `{poolSize = 10, pollIntervalMs = 1000,
   * connectTimeoutMs = 10000, unknownEventTtlMs = 24 h, createSchema = true}`. A bad URL or
   * option rejects with InvalidArgumentError; a server that cannot be reached, with
   * StoreError code `ERR_UNAVAILABLE`; a missing schema with `createSchema: false`, with
   * `ERR_NOT_FOUND`.
   */
  static async connect(url, options) {
    checkPostgresUrl(url, 'PostgresProvider.connect(url)');
    const checked = checkPostgresOptions(options);
    return openPostgres(url, undefined, checked);
  }

  /** Like `connect`, on its own schema (created if missing): stores on separate schemas share nothing. */
  static async connectWithSchema(url, schema, options) {
    checkPostgresUrl(url, 'PostgresProvider.connectWithSchema(url, schema)');
    checkSchema(schema, 'PostgresProvider.connectWithSchema(url, schema)');
    const checked = checkPostgresOptions(options);
    return openPostgres(url, schema, checked);
  }
}

async function openPostgres(url, schema, options) {
  const handle = await nativeCall(native.openPostgres(url, schema, JSON.stringify(options)));
  return new PostgresProvider(handle, url, schema ?? 'public');
}

module.exports = { SqliteProvider, PostgresProvider };
