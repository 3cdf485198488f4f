'use strict';

const { InvalidArgumentError } = require('./errors');

/** Largest payload (JSON text) accepted: inputs, outputs, events, custom status. */
const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

/**
 * Serializes a value for the store. `undefined` becomes `null`; values JSON cannot carry
 * (BigInt, circular objects) and oversized payloads throw an InvalidArgumentError naming `what`.
 */
function toJson(value, what) {
  let text;
  try {
    text = JSON.stringify(value === undefined ? null : value);
  } catch (error) {
    const reason = /BigInt/i.test(error.message)
      ? 'it contains a BigInt (convert it to a string or number first)'
      : /circular/i.test(error.message)
        ? 'it contains a circular reference'
        : error.message;
    throw new InvalidArgumentError(`${what} cannot be stored as JSON: ${reason}`, { cause: error });
  }
  if (text === undefined) text = 'null'; // functions and symbols
  if (text.length > MAX_PAYLOAD_BYTES / 4 && Buffer.byteLength(text) > MAX_PAYLOAD_BYTES) {
    throw new InvalidArgumentError(
      `${what} is ${Buffer.byteLength(text)} bytes as JSON; the limit is ${MAX_PAYLOAD_BYTES} bytes`,
    );
  }
  return text;
}

/** Longest instance id accepted. */
const MAX_INSTANCE_ID = 256;

function checkInstanceId(id, what = 'instanceId') {
  if (typeof id !== 'string' || id.length === 0) {
    throw new InvalidArgumentError(`${what} must be a non-empty string, got ${describe(id)}`);
  }
  if (id.length > MAX_INSTANCE_ID) {
    throw new InvalidArgumentError(`${what} is ${id.length} characters long; the limit is ${MAX_INSTANCE_ID}`);
  }
}

function checkName(name, what) {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError(`${what} must be a non-empty string, got ${describe(name)}`);
  }
}

function describe(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (typeof value === 'function') return 'a function';
  if (value && typeof value.then === 'function') return 'a Promise';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

module.exports = { toJson, checkInstanceId, checkName, describe, MAX_PAYLOAD_BYTES, MAX_INSTANCE_ID };
