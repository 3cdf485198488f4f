'use strict';
// A PostgreSQL cluster of a test's own (initdb + pg_ctl, as the postgres user, on a free
// port, under a temporary folder), so tests that stop and restart the server never disturb
// the suites running beside them on the shared server. Needs the PostgreSQL server binaries
// and root (to act as the postgres user); `unavailable()` says why when they are missing.
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');

function binDir() {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return null;
  const versions = fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions.length ? path.join(root, versions[0], 'bin') : null;
}

/** Why a throwaway cluster cannot be made here, or null. */
function unavailable() {
  if (!binDir()) return 'the PostgreSQL server binaries (initdb, pg_ctl) are not installed';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'making a throwaway cluster needs root (to run initdb as the postgres user)';
  if (spawnSync('id', ['postgres']).status !== 0) return 'there is no postgres user';
  return null;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Creates and starts a cluster; returns {url, port, start(), stop(mode), restart(mode), destroy()}. */
async function throwawayCluster() {
  const bin = binDir();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reprise-pg-'));
  fs.chmodSync(dir, 0o755);
  const data = path.join(dir, 'data');
  execFileSync('chown', ['postgres', dir]);
  const asPostgres = (tool, args) => execFileSync('runuser', ['-u', 'postgres', '--', path.join(bin, tool), ...args], { stdio: 'pipe', cwd: dir });
  asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60`;
  const cluster = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start: () => asPostgres('pg_ctl', ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-w', 'start']),
    /** mode: 'fast' (clean) or 'immediate' (like a crash: no shutdown checkpoint). */
    stop: (mode = 'fast') => asPostgres('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']),
    restart: (mode = 'fast') => asPostgres('pg_ctl', ['-D', data, '-m', mode, '-o', options, '-l', path.join(dir, 'log'), '-w', 'restart']),
    destroy: () => {
      try {
        cluster.stop('immediate');
      } catch {
        // already stopped
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  cluster.start();
  return cluster;
}

module.exports = { throwawayCluster, unavailable };
