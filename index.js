'use strict';

// reprise: durable execution for Node.js. Public entry: static named exports (CommonJS,
// importable from ESM by name).
const { SqliteProvider, PostgresProvider } = require('./lib/providers');
const { Client } = require('./lib/client');
const { Runtime } = require('./lib/runtime');
const { OrchestrationContext, ActivityContext, defineActivity } = require('./lib/context');
const { Task } = require('./lib/tasks');
const { prometheusText } = require('./lib/metrics');
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

module.exports = {
  SqliteProvider,
  PostgresProvider,
  Client,
  Runtime,
  OrchestrationContext,
  ActivityContext,
  defineActivity,
  Task,
  prometheusText,
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
