'use strict';

// reprise: durable execution for Node.js. Public entry: static named exports (CommonJS,
// importable from ESM by name).
const { SqliteProvider, PostgresProvider } = require('./lib/providers');
const { Client } = require('./lib/client');
const { Runtime, MAX_WORKER_TAGS } = require('./lib/runtime');
const { OrchestrationContext, ActivityContext, defineActivity, MAX_KV_KEYS, MAX_KV_VALUE_BYTES } = require('./lib/context');
const { Task, MAX_TAG_NAME_BYTES } = require('./lib/tasks');
const { prometheusText } = require('./lib/metrics');
const { createReprise, defineJob, RunFailedError } = require('./lib/jobs/app');
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

// duroxide-node's limits (worker tags per runtime, bytes of a tag's name, key-value keys per
// instance, bytes of a value) come from the modules that enforce them.

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
  createReprise,
  defineJob,
  RunFailedError,
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
