'use strict';

const native = require('./native');
const { InvalidArgumentError, nativeCall } = require('./errors');
const { describe } = require('./json');

/** Embedded storage: one SQLite file (WAL), one runtime per file, any number of clients. */
class SqliteProvider {
  constructor(handle, url) {
    Object.defineProperty(this, '_native', { value: handle, enumerable: false });
    this.url = url;
  }

  /**
   * Opens `sqlite:path` (or a bare path), creating the file and its folder.
   * `options.synchronous`: 'normal' (default; survives a process crash) or 'full' (fsync
   * every commit; survives power loss).
   */
  static async open(url, options = {}) {
    if (typeof url !== 'string' || url.trim() === '') {
      throw new InvalidArgumentError(`SqliteProvider.open(url): url must be a non-empty string like 'sqlite:./app.db', got ${describe(url)}`);
    }
    const synchronous = options.synchronous ?? 'normal';
    if (synchronous !== 'normal' && synchronous !== 'full') {
      throw new InvalidArgumentError(`options.synchronous must be 'normal' or 'full', got ${describe(synchronous)}`);
    }
    return new SqliteProvider(await nativeCall(native.openSqlite(url, synchronous === 'full')), url);
  }

  /** A private in-memory database: gone when the process exits. */
  static async inMemory() {
    return new SqliteProvider(await nativeCall(native.openSqliteInMemory()), 'sqlite::memory:');
  }
}

module.exports = { SqliteProvider };
