'use strict';

// Tracing setup: `initTracing` and the checks of the runtime's log options. The subscriber
// is process-wide: configured once, by `initTracing` or else by the first runtime to start.
const native = require('./native');
const { InvalidArgumentError, fromNative } = require('./errors');
const { checkName, checkOptionsObject, describe } = require('./json');

const LOG_FORMATS = ['json', 'pretty', 'compact'];
const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'trace', 'off'];

function checkLogFormat(value, what) {
  if (!LOG_FORMATS.includes(value)) {
    throw new InvalidArgumentError(`${what} must be 'json', 'pretty' or 'compact', got ${describe(value)}`);
  }
  return value;
}

/** A level name in any case; returned in lower case. */
function checkLogLevel(value, what) {
  if (typeof value !== 'string' || !LOG_LEVELS.includes(value.toLowerCase())) {
    throw new InvalidArgumentError(`${what} must be 'error', 'warn', 'info', 'debug', 'trace' or 'off', got ${describe(value)}`);
  }
  return value.toLowerCase();
}

/**
 * Sends every log line of this process to `logFile` (appended; the file and its folder are
 * created when missing), as `logFormat` ('compact' by default) at `logLevel` ('warn' by
 * default; `RUST_LOG` overrides it). Call once, before the first runtime starts: a second
 * call, or a call after a runtime started, throws InvalidStateError.
 */
function initTracing(options) {
  if (options === undefined || options === null) {
    throw new InvalidArgumentError(`initTracing(options): options must be an object with a logFile, got ${describe(options)}`);
  }
  checkOptionsObject(options, ['logFile', 'logFormat', 'logLevel'], 'options', 'tracing');
  checkName(options.logFile, 'initTracing: options.logFile');
  const checked = { logFile: options.logFile };
  if (options.logFormat !== undefined) checked.logFormat = checkLogFormat(options.logFormat, 'initTracing: options.logFormat');
  if (options.logLevel !== undefined) checked.logLevel = checkLogLevel(options.logLevel, 'initTracing: options.logLevel');
  try {
    native.initTracing(JSON.stringify(checked));
  } catch (error) {
    throw fromNative(error);
  }
}

module.exports = { initTracing, checkLogFormat, checkLogLevel };
