'use strict';

// reprise: durable execution for Node.js. Public entry: static named exports (CommonJS,
// importable from ESM by name).
const { SqliteProvider, PostgresProvider } = require('./lib/providers');
const { Client } = require('./lib/client');
const { Runtime } = require('./lib/runtime');
const { OrchestrationContext, ActivityContext, defineActivity } = require('./lib/context');
const { Task } = require('./lib/tasks');
const { prometheusText } = require('./lib/metrics');
const { initTracing } = require('./lib/logging');
const {
  RepriseError,
  InvalidArgumentError,
  InvalidStateError,
  NotFoundError,
  TimeoutError,
  NondeterminismError,
  NotRegisteredError,
  StoreError,
  TaskFailedError,
} = require('./lib/errors');

// duroxide-node's limits, for code written against it: worker tags per runtime and the bytes
// of a tag's name, per-instance key-value keys and the bytes of a value.
const MAX_WORKER_TAGS = 5;
const MAX_TAG_NAME_BYTES = 256;
const MAX_KV_KEYS = 150;
const MAX_KV_VALUE_BYTES = 65536;

module.exports = {
  MAX_WORKER_TAGS,
  MAX_TAG_NAME_BYTES,
  MAX_KV_KEYS,
  MAX_KV_VALUE_BYTES,
  SqliteProvider,
  PostgresProvider,
  Client,
  Runtime,
  OrchestrationContext,
  ActivityContext,
  defineActivity,
  Task,
  prometheusText,
  initTracing,
  RepriseError,
  InvalidArgumentError,
  InvalidStateError,
  NotFoundError,
  TimeoutError,
  NondeterminismError,
  NotRegisteredError,
  StoreError,
  TaskFailedError,
};
