'use strict';

// reprise: durable execution for Node.js. Public entry; static named exports.
const { SqliteProvider } = require('./lib/providers');
const { Client } = require('./lib/client');
const { Runtime } = require('./lib/runtime');
const { OrchestrationContext, ActivityContext } = require('./lib/context');
const { Task } = require('./lib/tasks');
const errors = require('./lib/errors');

module.exports = {
  SqliteProvider,
  Client,
  Runtime,
  OrchestrationContext,
  ActivityContext,
  Task,
  RepriseError: errors.RepriseError,
  InvalidArgumentError: errors.InvalidArgumentError,
  InvalidStateError: errors.InvalidStateError,
  TimeoutError: errors.TimeoutError,
  NondeterminismError: errors.NondeterminismError,
  NotFoundError: errors.NotFoundError,
  NotRegisteredError: errors.NotRegisteredError,
  StoreError: errors.StoreError,
  TaskFailedError: errors.TaskFailedError,
};
