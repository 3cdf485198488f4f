'use strict';

// Loads the native addon: a local build (native/) in a clone, otherwise the prebuilt
// platform package installed as an optional dependency.
const path = require('node:path');
const fs = require('node:fs');

function platformTriple() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const glibc = process.report && process.report.getReport().header.glibcVersionRuntime;
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function load() {
  const triple = platformTriple();
  const local = path.join(__dirname, '..', 'native', `reprise.${triple}.node`);
  if (fs.existsSync(local)) return require(local);
  const pkg = `reprise-${triple}`;
  try {
    return require(pkg);
  } catch (error) {
    const message =
      `reprise has no native binary for this platform (${triple}). ` +
      `Install the platform package: npm install ${pkg}` +
      ` (or build from source with a Rust toolchain: npm run build). Cause: ${error.message}`;
    const e = new Error(message);
    e.code = 'ERR_NATIVE_BINARY_MISSING';
    throw e;
  }
}

module.exports = load();
module.exports.platformTriple = platformTriple;
