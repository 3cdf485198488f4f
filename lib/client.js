'use strict';

const native = require('./native');
const { InvalidArgumentError, nativeCall } = require('./errors');
const { checkInstanceId, checkName, describe, toJson } = require('./json');

function parseStatus(text) {
  const s = JSON.parse(text);
  return {
    status: s.status,
    output: s.output === undefined ? null : s.output,
    error: s.error,
    errorCode: s.errorCode,
    customStatus: s.customStatus === undefined ? null : s.customStatus,
    customStatusVersion: s.customStatusVersion,
  };
}

/** Starts, signals, queries and waits for orchestration instances. */
class Client {
  constructor(provider) {
    if (!provider || !provider._native) {
      throw new InvalidArgumentError('new Client(provider): provider must come from SqliteProvider.open(), SqliteProvider.inMemory() or PostgresProvider.connect()');
    }
    this._native = new native.NativeClient(provider._native);
  }

  /**
   * Starts an instance. Starting an id that already exists changes nothing and does not fail;
   * resolves `true` when this call created it.
   */
  async startOrchestration(instanceId, orchestrationName, input, options = {}) {
    checkInstanceId(instanceId);
    checkName(orchestrationName, 'orchestrationName');
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError(`options must be an object, got ${describe(options)}`);
    const { version } = options;
    if (version !== undefined && (typeof version !== 'string' || version.length === 0)) {
      throw new InvalidArgumentError(`options.version must be a non-empty string, got ${describe(version)}`);
    }
    const json = toJson(input, 'input');
    return nativeCall(this._native.startOrchestration(instanceId, orchestrationName, json, version ?? null));
  }

  /** Sends an event; if nobody waits for it yet, it is kept until someone does. */
  async raiseEvent(instanceId, eventName, data) {
    checkInstanceId(instanceId);
    checkName(eventName, 'eventName');
    return nativeCall(this._native.raiseEvent(instanceId, eventName, toJson(data, 'event data')));
  }

  /** Cancels a running instance (and its sub-orchestrations); a no-op on a finished one. */
  async cancelInstance(instanceId, reason = 'canceled by client') {
    checkInstanceId(instanceId);
    return nativeCall(this._native.cancelInstance(instanceId, String(reason)));
  }

  /**
   * Removes an instance with its sub-orchestrations, their histories and everything queued
   * for them; resolves to how many instances were removed (0 for an unknown id). A running
   * instance is refused (InvalidStateError) unless `{force: true}`.
   */
  async deleteInstance(instanceId, options = {}) {
    checkInstanceId(instanceId);
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError(`options must be an object, got ${describe(options)}`);
    if (options.force !== undefined && typeof options.force !== 'boolean') {
      throw new InvalidArgumentError(`options.force must be a boolean, got ${describe(options.force)}`);
    }
    return nativeCall(this._native.deleteInstance(instanceId, options.force === true));
  }

  async getStatus(instanceId) {
    checkInstanceId(instanceId);
    return parseStatus(await nativeCall(this._native.getStatus(instanceId)));
  }

  /** Resolves when the instance is Completed or Failed; rejects with TimeoutError after `timeoutMs`. */
  async waitForOrchestration(instanceId, timeoutMs = 30000) {
    checkInstanceId(instanceId);
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
      throw new InvalidArgumentError(`timeoutMs must be a number >= 0, got ${describe(timeoutMs)}`);
    }
    return parseStatus(await nativeCall(this._native.waitForOrchestration(instanceId, timeoutMs)));
  }

  /** Events of one execution (the current one by default): `{eventId, kind, taskId, timestamp, data}`. */
  async readExecutionHistory(instanceId, executionId) {
    checkInstanceId(instanceId);
    if (executionId !== undefined && executionId !== null && !(Number.isInteger(executionId) && executionId >= 1)) {
      throw new InvalidArgumentError(`executionId must be an integer >= 1, got ${describe(executionId)}`);
    }
    return JSON.parse(await nativeCall(this._native.readExecutionHistory(instanceId, executionId ?? null)));
  }
}

module.exports = { Client };
