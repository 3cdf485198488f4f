'use strict';

// History in duroxide-node's terms. The store keeps reprise's event kinds (docs/protocol.md
// §6); `client.readExecutionHistory` maps them here to duroxide's names and data shapes, so
// the stored format and the engine stay as they are.

/** Prefix of the event names that carry event-queue messages (`enqueueEvent`/`dequeueEvent`). */
const QUEUE_PREFIX = 'queue:';

const queueName = (name) => (typeof name === 'string' && name.startsWith(QUEUE_PREFIX) ? name.slice(QUEUE_PREFIX.length) : null);

/** Stored kind -> (data, context) => [duroxide kind, duroxide data]. */
const KINDS = {
  ExecutionStarted: (d) => ['OrchestrationStarted', { name: d.name, version: d.version, input: d.input, ...(d.parent ? { parentInstance: d.parent.instanceId } : {}) }],
  ExecutionCompleted: (d) => ['OrchestrationCompleted', { output: d.output }],
  ExecutionFailed: (d) => ['OrchestrationFailed', { error: d.error }],
  ContinuedAsNew: (d) => ['OrchestrationContinuedAsNew', { input: d.input, version: d.version }],
  CancelRequested: (d) => ['OrchestrationCancelRequested', { reason: d.reason }],
  ExecutionRetried: (d) => ['OrchestrationRetried', { error: d.error, removed: d.removed }],
  ActivityScheduled: (d) => ['ActivityScheduled', { name: d.name, input: d.input, ...(d.sessionId ? { sessionId: d.sessionId } : {}), ...(d.tag ? { tag: d.tag } : {}) }],
  ActivityCompleted: (d) => ['ActivityCompleted', { result: d.result }],
  ActivityFailed: (d) => ['ActivityFailed', { error: d.error }],
  TimerCreated: (d) => ['TimerCreated', { fireAtMs: d.fireAt }],
  TimerFired: (d, c) => ['TimerFired', { fireAtMs: c.fireAt.get(d.task) ?? null }],
  EventWaitStarted: (d) => (queueName(d.name) !== null ? ['QueueSubscribed', { name: queueName(d.name) }] : ['ExternalSubscribed', { name: d.name }]),
  EventRaised: (d) => (queueName(d.name) !== null
    ? ['QueueEventDelivered', { name: queueName(d.name), data: d.data }]
    : ['ExternalEvent', { name: d.name, data: d.data }]),
  ChildScheduled: (d) => ['SubOrchestrationScheduled', { name: d.name, instance: d.instanceId, input: d.input, version: d.version }],
  ChildCompleted: (d) => ['SubOrchestrationCompleted', { result: d.output }],
  ChildFailed: (d) => ['SubOrchestrationFailed', { error: d.error }],
  DetachedStarted: (d) => ['OrchestrationChained', { name: d.name, instance: d.instanceId, input: d.input, version: d.version }],
  TaskCanceled: () => ['TaskCanceled', undefined],
  CustomStatusSet: (d) => ['CustomStatusUpdated', { status: d.value }],
  KvSet: (d) => ['KeyValueSet', { key: d.key, value: d.value }],
  KvCleared: (d) => ['KeyValueCleared', { key: d.key }],
  KvClearedAll: () => ['KeyValuesCleared', undefined],
};

/** Events whose task was opened by an earlier event (`sourceEventId` points at it). */
const COMPLETIONS = new Set(['ActivityCompleted', 'ActivityFailed', 'TimerFired', 'ChildCompleted', 'ChildFailed', 'TaskCanceled']);

/** Rows as the native layer reads them (`{eventId, kind, taskId, timestamp, data}`) in duroxide's terms. */
function historyInDuroxideTerms(rows) {
  const opened = new Map(); // task -> event id of the event that scheduled it
  const context = { fireAt: new Map() };
  return rows.map((row) => {
    const d = row.data || {};
    if (row.kind === 'TimerCreated') context.fireAt.set(d.task, d.fireAt);
    const map = KINDS[row.kind];
    const [kind, data] = map ? map(d, context) : [row.kind, d];
    const event = { eventId: row.eventId, kind };
    if (row.taskId !== null && row.taskId !== undefined) {
      if (COMPLETIONS.has(row.kind)) {
        if (opened.has(row.taskId)) event.sourceEventId = opened.get(row.taskId);
      } else if (!opened.has(row.taskId)) {
        opened.set(row.taskId, row.eventId);
      }
    }
    event.timestampMs = row.timestamp;
    if (data !== undefined) event.data = data;
    // reprise's own fields.
    event.taskId = row.taskId;
    event.timestamp = row.timestamp;
    event.storedKind = row.kind;
    event.storedData = row.data;
    return event;
  });
}

module.exports = { historyInDuroxideTerms, QUEUE_PREFIX };
