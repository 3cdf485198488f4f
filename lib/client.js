'use strict';

const native = require('./native');
const { InvalidArgumentError, NotFoundError, TaskFailedError, nativeCall } = require('./errors');
const { ABORTED, checkEventOptions, unlessAborted } = require('./events');
const { checkExact, checkInstanceId, checkName, checkOptionsObject, checkVersion, describe, toJson, MAX_EPOCH_MS } = require('./json');
const { historyInDuroxideTerms, QUEUE_PREFIX } = require('./history');
const { BUILTIN_PREFIX } = require('./context');

function checkTimeout(timeoutMs) {
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
    throw new InvalidArgumentError(`timeoutMs must be a number >= 0, got ${describe(timeoutMs)}`);
  }
}

/** Largest value of the native layer's 32-bit counts (limits, execution ids). */
const MAX_U32 = 2 ** 32 - 1;
/** Most starts one `startOrchestrations` call takes. */
const MAX_BATCH = 100000;

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

/** The engine's `{mode, tags?}` as a `workerTagFilter` (a runtime that recorded none: 'defaultOnly'). */
function tagFilterOf(tags) {
  if (!tags || !tags.mode) return 'defaultOnly';
  if (tags.mode === 'tags') return { tags: tags.tags };
  if (tags.mode === 'defaultAnd') return { defaultAnd: tags.tags };
  return tags.mode;
}

/** An instance's info with duroxide-node's names for the same facts beside reprise's. */
function withDuroxideNames(info) {
  return {
    ...info,
    orchestrationName: info.name,
    orchestrationVersion: info.version,
    currentExecutionId: info.executionId,
    parentInstanceId: info.parentId,
  };
}

/** Filter values: the generator face's statuses (`Running` takes `Pending` too, `Failed` takes `Canceled`), and the two stored-only ones. */
const STATUSES = ['Running', 'Completed', 'Failed', 'Pending', 'Canceled'];
/** Every stored status (`storedStatus` filters on exactly one). */
const STORED_STATUSES = ['Pending', 'Running', 'Completed', 'Failed', 'Canceled'];

/** Epoch ms from a number or a Date; `undefined` when absent. */
function toTime(value, field) {
  if (value === undefined || value === null) return undefined;
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new InvalidArgumentError(`${field} must be a Date or epoch milliseconds, got ${describe(value)}`);
  }
  if (Math.abs(ms) > MAX_EPOCH_MS) {
    throw new InvalidArgumentError(`${field} must be within ±${MAX_EPOCH_MS} epoch milliseconds (what a Date can hold), got ${describe(value)}`);
  }
  return Math.floor(ms);
}

function checkStatus(value, field, allowed) {
  if (value === undefined || value === null) return undefined;
  if (!allowed.includes(value)) {
    throw new InvalidArgumentError(`${field} must be one of ${allowed.join(', ')}, got ${describe(value)}`);
  }
  return value;
}

function checkCount(value, field, min, max) {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${field} must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
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
    const { version } = checkOptionsObject(options, ['version']);
    if (version !== undefined && version !== null) checkVersion(version, 'options.version');
    const json = toJson(input, 'input');
    return nativeCall(this._native.startOrchestration(instanceId, orchestrationName, json, version ?? null));
  }

  /** duroxide-node's form: `startOrchestration(id, name, input, { version })`. */
  async startOrchestrationVersioned(instanceId, orchestrationName, input, version) {
    checkVersion(version, 'version');
    return this.startOrchestration(instanceId, orchestrationName, input, { version });
  }

  /**
   * Starts many instances in one store transaction: `starts` is an array of
   * `{ id, name, input?, version? }`. Ids that already exist (or come twice in the batch)
   * are left alone, as with `startOrchestration`. Resolves to `{ created, existing }`, the
   * ids in the order given. Nothing is stored if any entry is invalid.
   */
  async startOrchestrations(starts) {
    if (!Array.isArray(starts)) {
      throw new InvalidArgumentError(`startOrchestrations(starts): starts must be an array of { id, name, input?, version? }, got ${describe(starts)}`);
    }
    if (starts.length > MAX_BATCH) {
      throw new InvalidArgumentError(`startOrchestrations(starts): at most ${MAX_BATCH} starts per call, got ${starts.length}`);
    }
    const parts = starts.map((start, i) => {
      const what = `starts[${i}]`;
      if (start === null || typeof start !== 'object' || Array.isArray(start)) {
        throw new InvalidArgumentError(`${what} must be an object { id, name, input?, version? }, got ${describe(start)}`);
      }
      const { id, name, input, version } = checkOptionsObject(start, ['id', 'name', 'input', 'version'], what, 'startOrchestrations');
      checkInstanceId(id, `${what}.id`);
      checkName(name, `${what}.name`);
      if (version !== undefined && version !== null) checkVersion(version, `${what}.version`);
      const json = toJson(input, `${what}.input`);
      return `{"instanceId":${JSON.stringify(id)},"name":${JSON.stringify(name)},"input":${json}${version == null ? '' : `,"version":${JSON.stringify(version)}`}}`;
    });
    if (parts.length === 0) return { created: [], existing: [] };
    const flags = await nativeCall(this._native.startOrchestrations(`[${parts.join(',')}]`));
    const created = [];
    const existing = [];
    starts.forEach((start, i) => (flags[i] ? created : existing).push(start.id));
    return { created, existing };
  }

  /** Sends an event; if nobody waits for it yet, it is kept until someone does. */
  async raiseEvent(instanceId, eventName, data) {
    checkInstanceId(instanceId);
    checkName(eventName, 'eventName');
    return nativeCall(this._native.raiseEvent(instanceId, eventName, toJson(data, 'event data')));
  }

  /**
   * Appends `data` to the instance's FIFO queue `queueName`, for `ctx.dequeueEvent`. Kept
   * from the moment it is sent (also before the instance exists or runs its first turn) and
   * across continue-as-new; each message goes to exactly one dequeue.
   */
  async enqueueEvent(instanceId, queueName, data) {
    checkInstanceId(instanceId);
    checkName(queueName, 'queueName');
    return nativeCall(this._native.raiseEvent(instanceId, QUEUE_PREFIX + queueName, toJson(data, 'queue message')));
  }

  /** duroxide-node's typed form: values already cross as JSON. */
  async raiseEventTyped(instanceId, eventName, data) {
    return this.raiseEvent(instanceId, eventName, data);
  }

  async enqueueEventTyped(instanceId, queueName, data) {
    return this.enqueueEvent(instanceId, queueName, data);
  }

  /** The instance's key-value value for `key` (`string | null`), as of its last committed turn. */
  async getValue(instanceId, key) {
    checkInstanceId(instanceId);
    checkName(key, 'key');
    const entries = JSON.parse(await nativeCall(this._native.getValues(instanceId, key)));
    return entries.length === 0 ? null : entries[0].value;
  }

  /** Resolves with `key`'s value once the instance has set one; TimeoutError after `timeoutMs`. */
  async waitForValue(instanceId, key, timeoutMs = 30000) {
    checkInstanceId(instanceId);
    checkName(key, 'key');
    checkTimeout(timeoutMs);
    return nativeCall(this._native.waitForValue(instanceId, key, timeoutMs));
  }

  /** Every key-value value of the instance: `{key: value}` (`{}` for an unknown id). */
  async getKvAllValues(instanceId) {
    checkInstanceId(instanceId);
    const entries = JSON.parse(await nativeCall(this._native.getValues(instanceId, null)));
    return Object.fromEntries(entries.map((e) => [e.key, e.value]));
  }

  /**
   * Sizes of an instance, or null: `{historyEventCount, historySizeBytes}` of its current
   * execution, `queuePendingCount` (its queued messages and activities), and
   * `{kvUserKeyCount, kvTotalValueBytes}` of its key-value store.
   */
  async getOrchestrationStats(instanceId) {
    checkInstanceId(instanceId);
    return JSON.parse(await nativeCall(this._native.getOrchestrationStats(instanceId)));
  }

  /** Cancels a running instance (and its sub-orchestrations); a no-op on a finished one. */
  async cancelInstance(instanceId, reason = 'canceled by client') {
    checkInstanceId(instanceId);
    if (typeof reason !== 'string') throw new InvalidArgumentError(`reason must be a string, got ${describe(reason)}`);
    checkExact(reason, 'reason');
    return nativeCall(this._native.cancelInstance(instanceId, reason));
  }

  /**
   * Removes an instance with its sub-orchestrations, their histories, key-value stores and
   * everything queued for them. A running instance is refused (InvalidStateError) unless
   * forced. duroxide-node's form, `deleteInstance(id, force = false)`, resolves to
   * `{instancesDeleted, executionsDeleted, eventsDeleted, queueMessagesDeleted}`; reprise's
   * form, `deleteInstance(id, {force})`, to how many instances were removed (0 for an
   * unknown id).
   */
  async deleteInstance(instanceId, options) {
    checkInstanceId(instanceId);
    const counts = options === undefined || typeof options === 'boolean';
    if (!counts) {
      checkOptionsObject(options, ['force']);
      if (options.force !== undefined && typeof options.force !== 'boolean') {
        throw new InvalidArgumentError(`options.force must be a boolean, got ${describe(options.force)}`);
      }
    }
    const force = counts ? options === true : options.force === true;
    const removed = JSON.parse(await nativeCall(this._native.deleteInstance(instanceId, force)));
    return counts ? removed : removed.instancesDeleted;
  }

  /**
   * duroxide-node's bulk deletion: the finished instances among `instanceIds`, or those
   * completed before `completedBefore` (epoch ms), at most `limit`; resolves to
   * `{instancesDeleted, executionsDeleted, eventsDeleted, queueMessagesDeleted}`.
   */
  async deleteInstanceBulk(filter = {}) {
    checkOptionsObject(filter, ['instanceIds', 'completedBefore', 'limit'], 'filter');
    const options = {};
    if (filter.instanceIds !== undefined && filter.instanceIds !== null) options.ids = filter.instanceIds;
    if (filter.completedBefore !== undefined && filter.completedBefore !== null) options.completedBefore = filter.completedBefore;
    if (options.ids === undefined && options.completedBefore === undefined) options.completedBefore = MAX_EPOCH_MS;
    if (filter.limit !== undefined && filter.limit !== null) options.limit = filter.limit;
    return JSON.parse(await nativeCall(this._native.deleteInstances(JSON.stringify(this._deleteFilter(options)))));
  }

  /**
   * A page of instances in creation order (`createdAt`, then `instanceId`); pass the
   * page's `nextCursor` back as `cursor` for the next one (`null`: no more rows). Rows
   * created after a page was read never change it. `createdAfter`/`createdBefore` are
   * exclusive bounds (Date or epoch ms).
   */
  async listInstances(options = {}) {
    checkOptionsObject(options, ['status', 'storedStatus', 'name', 'createdAfter', 'createdBefore', 'parentId', 'limit', 'cursor']);
    const { name, parentId, cursor, limit = 100 } = options;
    const filter = { limit: checkCount(limit, 'options.limit', 1, 10000) };
    const status = checkStatus(options.status, 'options.status', STATUSES);
    if (status !== undefined) filter.status = status;
    const storedStatus = checkStatus(options.storedStatus, 'options.storedStatus', STORED_STATUSES);
    if (storedStatus !== undefined) filter.storedStatus = storedStatus;
    if (name !== undefined && name !== null) {
      checkName(name, 'options.name');
      filter.name = name;
    }
    const after = toTime(options.createdAfter, 'options.createdAfter');
    if (after !== undefined) filter.createdAfter = after;
    const before = toTime(options.createdBefore, 'options.createdBefore');
    if (before !== undefined) filter.createdBefore = before;
    if (parentId !== undefined && parentId !== null) {
      checkInstanceId(parentId, 'options.parentId');
      filter.parentId = parentId;
    }
    if (cursor !== undefined && cursor !== null) {
      if (typeof cursor !== 'string' || cursor.length === 0) {
        throw new InvalidArgumentError(`options.cursor must be a cursor string from listInstances, got ${describe(cursor)}`);
      }
      filter.cursor = cursor;
    }
    const page = JSON.parse(await nativeCall(this._native.listInstances(JSON.stringify(filter))));
    const instances = page.instances.map(withDuroxideNames);
    await this._markWaiting(instances);
    return { ...page, instances };
  }

  /** The ids of every instance, oldest first (duroxide-node's `listAllInstances`). */
  async listAllInstances() {
    return this._allIds({});
  }

  /** The ids of the instances with `status` (as `listInstances` takes it), oldest first. */
  async listInstancesByStatus(status) {
    return this._allIds({ status });
  }

  async _allIds(filter) {
    const ids = [];
    let cursor = null;
    do {
      const page = await this.listInstances({ ...filter, limit: 1000, cursor });
      for (const info of page.instances) ids.push(info.instanceId);
      cursor = page.nextCursor;
    } while (cursor);
    return ids;
  }

  /** Everything stored about an instance (input, output, parent, times...), or `null`. */
  async getInstanceInfo(instanceId) {
    checkInstanceId(instanceId);
    const info = JSON.parse(await nativeCall(this._native.getInstanceInfo(instanceId)));
    if (info === null) return null;
    const out = withDuroxideNames(info);
    await this._markWaiting([out]);
    return out;
  }

  /**
   * Sets `waitingForRuntime` on each instance info: `true` when it is not finished and no
   * live runtime on the store runs its orchestration (its name, and its version once fixed),
   * so it waits for one (see the claim rule in docs/protocol.md).
   */
  async _markWaiting(infos) {
    const open = infos.filter((i) => i.status === 'Running');
    for (const info of infos) info.waitingForRuntime = false;
    if (open.length === 0) return;
    const live = (await this.listRuntimes()).filter((r) => r.alive);
    for (const info of open) {
      info.waitingForRuntime = !live.some((r) =>
        r.orchestrations.some((o) => o.name === info.name && (info.version == null || o.versions.includes(info.version))),
      );
    }
  }

  /**
   * The execution ids of an instance (continue-as-new starts a new one), oldest first (`[]`
   * for an unknown id). With `{details: true}`: `{executionId, firstEventAt, lastEventAt,
   * eventCount}` for each.
   */
  async listExecutions(instanceId, options = {}) {
    checkInstanceId(instanceId);
    checkOptionsObject(options, ['details']);
    const executions = JSON.parse(await nativeCall(this._native.listExecutions(instanceId)));
    return options.details === true ? executions : executions.map((e) => e.executionId);
  }

  /**
   * One execution: `{executionId, status, output, startedAt, completedAt?, eventCount}`
   * (status `Running`, `Completed`, `Failed` or `ContinuedAsNew`), or null.
   */
  async getExecutionInfo(instanceId, executionId) {
    checkInstanceId(instanceId);
    checkCount(executionId, 'executionId', 1, MAX_U32);
    const executions = await this.listExecutions(instanceId, { details: true });
    const execution = executions.find((e) => e.executionId === executionId);
    if (!execution) return null;
    const history = await this.readStoredHistory(instanceId, executionId);
    const last = history[history.length - 1];
    const ends = { ExecutionCompleted: 'Completed', ExecutionFailed: 'Failed', ContinuedAsNew: 'ContinuedAsNew' };
    const status = (last && ends[last.kind]) || 'Running';
    const info = {
      executionId,
      status,
      output: status === 'Completed' ? last.data.output : status === 'Failed' ? last.data.error.message : null,
      startedAt: execution.firstEventAt,
      eventCount: execution.eventCount,
    };
    if (status !== 'Running') info.completedAt = execution.lastEventAt;
    return info;
  }

  /** The instance's info with its sub-orchestrations, recursively, as `children`; or `null`. */
  async getInstanceTree(instanceId) {
    const info = await this.getInstanceInfo(instanceId);
    if (info === null) return null;
    const build = async (node) => {
      const children = [];
      let cursor = null;
      do {
        const page = await this.listInstances({ parentId: node.instanceId, limit: 1000, cursor });
        children.push(...page.instances);
        cursor = page.nextCursor;
      } while (cursor !== null);
      return { ...node, children: await Promise.all(children.map(build)) };
    };
    const tree = await build(info);
    // duroxide-node's summary beside the tree.
    const allIds = [];
    const walk = (node) => {
      allIds.push(node.instanceId);
      node.children.forEach(walk);
    };
    walk(tree);
    return { ...tree, rootId: tree.instanceId, allIds, size: allIds.length };
  }

  /** Instance counts: `{total, running, completed, failed}`. */
  async getSystemMetrics() {
    return JSON.parse(await nativeCall(this._native.getSystemMetrics()));
  }

  /**
   * The registry of runtimes on this store, oldest first: `{runtimeId, workerNodeId, host,
   * pid, startedAt, heartbeatAt, heartbeatAgeMs, alive, orchestrations: [{name, versions}],
   * activities}`. A runtime whose heartbeat is stale (`alive: false`) is dead; the next
   * heartbeat of a live runtime removes it and releases its leases.
   */
  async listRuntimes() {
    const runtimes = JSON.parse(await nativeCall(this._native.listRuntimes()));
    return runtimes.map(({ tags, ...r }) => ({
      ...r,
      // The built-in activities are on every runtime: not listed.
      activities: r.activities.filter((name) => !name.startsWith(BUILTIN_PREFIX)),
      workerTagFilter: tagFilterOf(tags),
    }));
  }

  /**
   * Queued rows now: `{orchestrator: {visible, delayed}, worker: {visible, running, delayed}}`
   * (delayed: timers, retries; running: activities under a lease).
   */
  async getQueueDepths() {
    const q = JSON.parse(await nativeCall(this._native.getQueueDepths()));
    // duroxide-node's names: messages ready, activities queued (not running), timers waiting.
    return { ...q, orchestratorQueue: q.orchestrator.visible, workerQueue: q.worker.visible + q.worker.delayed, timerQueue: q.orchestrator.delayed };
  }

  /**
   * Removes finished instances (never running ones), each like `deleteInstance`: with
   * their sub-orchestrations and everything queued. Select them by `ids`, or by
   * `completedBefore` (Date or epoch ms), `status` (Completed or Failed) and `limit`
   * (oldest finish first). Resolves to how many instances were removed.
   */
  async deleteInstances(options) {
    const removed = JSON.parse(await nativeCall(this._native.deleteInstances(JSON.stringify(this._deleteFilter(options)))));
    return removed.instancesDeleted;
  }

  _deleteFilter(options) {
    if (options === undefined) throw new InvalidArgumentError('options must be an object, got undefined');
    checkOptionsObject(options, ['ids', 'completedBefore', 'status', 'limit']);
    const filter = {};
    if (options.ids !== undefined) {
      if (!Array.isArray(options.ids)) throw new InvalidArgumentError(`options.ids must be an array of instance ids, got ${describe(options.ids)}`);
      options.ids.forEach((id, i) => checkInstanceId(id, `options.ids[${i}]`));
      filter.ids = options.ids;
    }
    const before = toTime(options.completedBefore, 'options.completedBefore');
    if (before !== undefined) filter.completedBefore = before;
    if (filter.ids === undefined && before === undefined) {
      throw new InvalidArgumentError('options must give ids or completedBefore');
    }
    const status = checkStatus(options.status, 'options.status', ['Completed', 'Failed', 'Canceled']);
    if (status !== undefined) filter.status = status;
    if (options.limit !== undefined && options.limit !== null) filter.limit = checkCount(options.limit, 'options.limit', 1, MAX_U32);
    return filter;
  }

  /**
   * Removes the history of old executions of a continue-as-new instance: all but the
   * `keepLast` most recent (default 1; the current execution counts and always stays), and
   * with `completedBefore` only those whose last event is older. Resolves to how many
   * executions were removed.
   */
  async pruneExecutions(instanceId, options = {}) {
    checkInstanceId(instanceId);
    checkOptionsObject(options, ['keepLast', 'completedBefore']);
    const keepLast = options.keepLast === undefined || options.keepLast === null
      ? null
      : checkCount(options.keepLast, 'options.keepLast', 1, MAX_U32);
    const before = toTime(options.completedBefore, 'options.completedBefore');
    return nativeCall(this._native.pruneExecutions(instanceId, keepLast, before ?? null));
  }

  /**
   * duroxide-node's bulk pruning: `pruneExecutions(id, options)` for every instance `filter`
   * selects (`{instanceIds?, completedBefore?, limit?}`, any status; no filter: all);
   * resolves to `{instancesProcessed, executionsDeleted, eventsDeleted}`.
   */
  async pruneExecutionsBulk(filter = {}, options = {}) {
    checkOptionsObject(filter, ['instanceIds', 'completedBefore', 'limit'], 'filter');
    let ids;
    if (filter.instanceIds !== undefined && filter.instanceIds !== null) {
      if (!Array.isArray(filter.instanceIds)) throw new InvalidArgumentError(`filter.instanceIds must be an array of instance ids, got ${describe(filter.instanceIds)}`);
      filter.instanceIds.forEach((id, i) => checkInstanceId(id, `filter.instanceIds[${i}]`));
      ids = filter.instanceIds;
    } else {
      ids = await this._allIds({ createdBefore: toTime(filter.completedBefore, 'filter.completedBefore') });
    }
    if (filter.limit !== undefined && filter.limit !== null) ids = ids.slice(0, checkCount(filter.limit, 'filter.limit', 1, MAX_U32));
    const result = { instancesProcessed: 0, executionsDeleted: 0, eventsDeleted: 0 };
    for (const id of ids) {
      const before = await this.listExecutions(id, { details: true });
      if (before.length === 0) continue;
      const executions = await this.pruneExecutions(id, options);
      const after = new Set((await this.listExecutions(id)));
      result.instancesProcessed++;
      result.executionsDeleted += executions;
      result.eventsDeleted += before.filter((e) => !after.has(e.executionId)).reduce((n, e) => n + e.eventCount, 0);
    }
    return result;
  }

  /** A request about job runs (emitted events, concurrency keys, a run's steps and logs). */
  async _jobQuery(request) {
    return JSON.parse(await nativeCall(this._native.jobQuery(JSON.stringify(request))));
  }

  async getStatus(instanceId) {
    checkInstanceId(instanceId);
    return parseStatus(await nativeCall(this._native.getStatus(instanceId)));
  }

  /** Resolves when the instance is Completed or Failed; rejects with TimeoutError after `timeoutMs`. */
  async waitForOrchestration(instanceId, timeoutMs = 30000) {
    checkInstanceId(instanceId);
    checkTimeout(timeoutMs);
    return parseStatus(await nativeCall(this._native.waitForOrchestration(instanceId, timeoutMs)));
  }

  /**
   * duroxide-node's `waitForOrchestrationTyped`: the output itself once the instance
   * completed. A failed instance rejects with a TaskFailedError carrying its error (`.code`
   * is the instance's `errorCode`, `.status` the whole status); a timeout with TimeoutError.
   */
  async waitForOrchestrationTyped(instanceId, timeoutMs = 30000) {
    const status = await this.waitForOrchestration(instanceId, timeoutMs);
    if (status.status !== 'Failed') return status.output;
    const error = new TaskFailedError(status.error ?? `instance '${instanceId}' failed`, status.errorCode ?? 'ERR_ORCHESTRATION_FAILED');
    error.instanceId = instanceId;
    error.status = status;
    throw error;
  }

  /**
   * Resolves with the status once the instance's custom status version is greater than
   * `lastVersion` (or the instance has finished): progress reporting without polling.
   * Rejects with TimeoutError after `timeoutMs`.
   */
  async waitForStatusChange(instanceId, lastVersion = 0, ...rest) {
    // duroxide-node's form has a poll interval third: (id, lastSeen, pollMs, timeoutMs).
    // Waits here are woken by commits, so the poll interval is checked and not needed.
    let timeoutMs = 30000;
    if (rest.length >= 2) {
      const pollMs = rest[0];
      if (pollMs !== undefined && (typeof pollMs !== 'number' || !(pollMs >= 0))) {
        throw new InvalidArgumentError(`pollMs must be a number >= 0, got ${describe(pollMs)}`);
      }
      if (rest[1] !== undefined) timeoutMs = rest[1];
    } else if (rest.length === 1 && rest[0] !== undefined) {
      timeoutMs = rest[0];
    }
    checkInstanceId(instanceId);
    if (!Number.isInteger(lastVersion) || lastVersion < 0) {
      throw new InvalidArgumentError(`lastVersion must be an integer >= 0, got ${describe(lastVersion)}`);
    }
    checkTimeout(timeoutMs);
    return parseStatus(await nativeCall(this._native.waitForStatusChange(instanceId, lastVersion, timeoutMs)));
  }

  /**
   * Re-runs a Failed instance from its last good point: the failure and what led to it
   * leave the history (an `ExecutionRetried` event records it), the failed activities run
   * again with a fresh retry budget, and activities that had succeeded are not run again.
   * Failed sub-orchestrations it still waited for are retried too. Resolves to the ids
   * retried (this instance first). NotFoundError for an unknown id, InvalidStateError
   * for an instance that is not Failed.
   */
  async retryInstance(instanceId) {
    checkInstanceId(instanceId);
    return JSON.parse(await nativeCall(this._native.retryInstance(instanceId)));
  }

  /**
   * Follows an instance as an async iterator of lifecycle events (see LifecycleEvent):
   * everything in its history from its first execution (`since: 'start'`, the default) or
   * only what happens from now on (`since: 'now'`), then live. Ends after the instance's
   * completion or failure, when `signal` aborts, or when the loop breaks. Woken by commits
   * in this process; other processes' commits are seen within the provider's poll
   * interval. `activityStarted`/`activityRetried` are read from the activity queue, so an
   * attempt that starts and ends between two reads may go unreported (runtime.events()
   * sees every one in the runtime's own process). NotFoundError if the instance does not
   * exist when the watch begins.
   */
  async *watch(instanceId, options = {}) {
    checkInstanceId(instanceId);
    const { signal, types } = checkEventOptions(options, ['signal', 'since', 'types']);
    const since = options.since === undefined ? 'start' : options.since;
    if (since !== 'start' && since !== 'now') {
      throw new InvalidArgumentError(`options.since must be 'start' or 'now', got ${describe(since)}`);
    }
    let cursor = JSON.stringify({ executionId: 0, eventId: 0, skipExisting: since === 'now' });
    let first = true;
    while (!(signal && signal.aborted)) {
      const text = await unlessAborted(nativeCall(this._native.watchNext(instanceId, cursor, 1000)), signal);
      if (text === ABORTED) return;
      const step = JSON.parse(text);
      if (step.missing) {
        if (first) throw new NotFoundError(`no instance '${instanceId}' to watch`);
        return;
      }
      first = false;
      cursor = JSON.stringify(step.cursor);
      for (const event of step.events) {
        if (types && !types.has(event.type)) continue;
        yield event;
        if (signal && signal.aborted) return;
      }
      if (step.done) return;
    }
  }

  /**
   * Events of one execution (the current one by default), in duroxide-node's terms:
   * `{eventId, kind, sourceEventId?, timestampMs, data?}` with its kind names (see
   * docs/protocol.md), plus reprise's `taskId`, `timestamp` and `storedKind`.
   */
  async readExecutionHistory(instanceId, executionId) {
    return historyInDuroxideTerms(await this.readStoredHistory(instanceId, executionId));
  }

  /**
   * Events of one execution (the current one by default) as reprise stores them (its kind
   * names and data, docs/protocol.md §6): `{eventId, kind, taskId, timestamp, data}`.
   */
  async readStoredHistory(instanceId, executionId) {
    checkInstanceId(instanceId);
    if (executionId !== undefined && executionId !== null) checkCount(executionId, 'executionId', 1, MAX_U32);
    return JSON.parse(await nativeCall(this._native.readExecutionHistory(instanceId, executionId ?? null)));
  }
}

module.exports = { Client };
