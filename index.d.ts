// Type definitions for reprise.

/** Instance status as the client sees it. A cancelled instance is `Failed` with `error` starting `canceled:`. */
export type OrchestrationStatusName = 'NotFound' | 'Running' | 'Completed' | 'Failed';

interface StatusCommon<TCustom> {
  /** The last value given to `ctx.setCustomStatus`, parsed from JSON; `null` if none. */
  customStatus: TCustom | null;
  /** Grows by one with every `setCustomStatus`; 0 if none. */
  customStatusVersion: number;
}

/** No instance has this id. */
export interface NotFoundStatus<TCustom = unknown> extends StatusCommon<TCustom> {
  status: 'NotFound';
  output: null;
  error: null;
  errorCode: null;
}

/** Started and not finished yet. */
export interface RunningStatus<TCustom = unknown> extends StatusCommon<TCustom> {
  status: 'Running';
  output: null;
  error: null;
  errorCode: null;
}

export interface CompletedStatus<TOutput = unknown, TCustom = unknown> extends StatusCommon<TCustom> {
  status: 'Completed';
  /** The orchestration's return value, parsed from JSON (`undefined` became `null`). */
  output: TOutput;
  error: null;
  errorCode: null;
}

export interface FailedStatus<TCustom = unknown> extends StatusCommon<TCustom> {
  status: 'Failed';
  output: null;
  /** The failure's message; a cancelled instance's starts with `canceled:`. */
  error: string;
  /**
   * Stable code of the failure: the thrown error's `code` if it had one, else
   * `ERR_ORCHESTRATION_FAILED`; or one of the engine's: `ERR_NONDETERMINISM`,
   * `ERR_NOT_REGISTERED`, `ERR_CANCELED`, `ERR_POISON`, `ERR_INVALID_ARGUMENT`.
   */
  errorCode: string;
}

/** What `getStatus` and `waitForOrchestration` resolve to; narrow it on `status`. */
export type OrchestrationStatus<TOutput = unknown, TCustom = unknown> =
  | NotFoundStatus<TCustom>
  | RunningStatus<TCustom>
  | CompletedStatus<TOutput, TCustom>
  | FailedStatus<TCustom>;

/** What `waitForOrchestration` resolves to: the instance has finished. */
export type FinishedStatus<TOutput = unknown, TCustom = unknown> = CompletedStatus<TOutput, TCustom> | FailedStatus<TCustom>;

/** A history event as reprise stores it (`client.readStoredHistory`; docs/protocol.md §6). */
export interface StoredHistoryEvent {
  /** Dense per execution, from 1. */
  eventId: number;
  kind:
    | 'ExecutionStarted' | 'ActivityScheduled' | 'ActivityCompleted' | 'ActivityFailed'
    | 'TimerCreated' | 'TimerFired' | 'EventWaitStarted' | 'EventRaised'
    | 'ChildScheduled' | 'ChildCompleted' | 'ChildFailed' | 'DetachedStarted'
    | 'TaskCanceled' | 'CustomStatusSet' | 'KvSet' | 'KvCleared' | 'KvClearedAll' | 'CancelRequested'
    | 'ExecutionCompleted' | 'ExecutionFailed' | 'ContinuedAsNew' | 'ExecutionRetried';
  taskId: number | null;
  /** The turn's timestamp, epoch ms. */
  timestamp: number;
  data: Record<string, unknown>;
}

/** duroxide-node's history event kinds (what `readExecutionHistory` reports). */
export type HistoryEventKind =
  | 'OrchestrationStarted' | 'OrchestrationCompleted' | 'OrchestrationFailed' | 'OrchestrationContinuedAsNew'
  | 'OrchestrationCancelRequested' | 'OrchestrationRetried' | 'OrchestrationChained'
  | 'ActivityScheduled' | 'ActivityCompleted' | 'ActivityFailed'
  | 'TimerCreated' | 'TimerFired' | 'ExternalSubscribed' | 'ExternalEvent' | 'QueueSubscribed' | 'QueueEventDelivered'
  | 'SubOrchestrationScheduled' | 'SubOrchestrationCompleted' | 'SubOrchestrationFailed'
  | 'TaskCanceled' | 'CustomStatusUpdated' | 'KeyValueSet' | 'KeyValueCleared' | 'KeyValuesCleared';

/** A history event in duroxide-node's terms (`client.readExecutionHistory`), with reprise's fields beside. */
export interface HistoryEvent {
  eventId: number;
  kind: HistoryEventKind;
  /** For a completion, failure, firing or cancellation: the event that scheduled its task. */
  sourceEventId?: number;
  /** The turn's timestamp, epoch ms. */
  timestampMs: number;
  /** The event's fields in duroxide's shapes (absent for TaskCanceled and KeyValuesCleared). */
  data?: Record<string, unknown>;
  /** reprise's fields: the task number, the timestamp again, the stored kind and data. */
  taskId: number | null;
  timestamp: number;
  storedKind: StoredHistoryEvent['kind'];
  storedData: Record<string, unknown>;
}

export interface SqliteOpenOptions {
  /** `'normal'` (default; survives a process crash) or `'full'` (fsync every commit; survives power loss). */
  synchronous?: 'normal' | 'full';
  /**
   * How long an event raised for an instance that does not exist yet is kept for it, in ms
   * (default 24 h; at most 100 years). Such events are not counted in queue depths.
   */
  unknownEventTtlMs?: number;
}

/** Embedded storage on one SQLite file. */
/** duroxide-node's limits: worker tags per runtime, bytes of a tag name, per-instance key-value keys, bytes of a value. */
export declare const MAX_WORKER_TAGS: 5;
export declare const MAX_TAG_NAME_BYTES: 256;
export declare const MAX_KV_KEYS: 150;
export declare const MAX_KV_VALUE_BYTES: 65536;

export declare class SqliteProvider {
  private constructor();
  readonly url: string;
  /** Opens `sqlite:path` or a bare path, creating the file and its folder. */
  static open(url: string, options?: SqliteOpenOptions): Promise<SqliteProvider>;
  /** A private in-memory database. */
  static inMemory(): Promise<SqliteProvider>;
}

export interface PostgresConnectOptions {
  /** Most pooled connections (default 10); one more is kept for LISTEN. */
  poolSize?: number;
  /** Fallback re-read for changes whose notification was missed, in ms (default 1000). */
  pollIntervalMs?: number;
  /** Bound on connecting and on waiting for a pooled connection, in ms (default 10000). */
  connectTimeoutMs?: number;
  /** How long an event raised for an instance that does not exist yet is kept for it, in ms (default 24 h). */
  unknownEventTtlMs?: number;
  /** Create the schema if it does not exist (default true); `false`: a missing schema is an error. */
  createSchema?: boolean;
}

/**
 * PostgreSQL storage: any number of processes (runtimes and clients) share one database.
 * Each schema is a separate store (one per tenant); processes wake each other with
 * LISTEN/NOTIFY, polling only as a fallback.
 */
export declare class PostgresProvider {
  private constructor();
  /** The URL with its password masked. */
  readonly url: string;
  readonly schema: string;
  /**
   * Connects to `postgres://user:password@host:port/database` on the `public` schema, creating the tables if needed.
   * A bad URL or option rejects with InvalidArgumentError; a server that cannot be reached within
   * `connectTimeoutMs`, with a StoreError whose code is `ERR_UNAVAILABLE`.
   */
  static connect(url: string, options?: PostgresConnectOptions): Promise<PostgresProvider>;
  /** Like `connect`, on `schema` (1 to 63 letters, digits or underscores; created if missing). */
  static connectWithSchema(url: string, schema: string, options?: PostgresConnectOptions): Promise<PostgresProvider>;
}

export type Provider = SqliteProvider | PostgresProvider;

/** How an activity is retried: `scheduleActivityWithRetry`, `activityWithRetry`. Unknown keys are rejected. */
export interface RetryPolicy {
  /** Attempts in all, the first included (integer >= 1). */
  maxAttempts: number;
  /**
   * How the delay grows, from `initialDelayMs` (d): `'fixed'` d, d, d; `'linear'` d, 2d, 3d;
   * `'exponential'` d, 2d, 4d. Default `'exponential'`.
   */
  backoff?: 'fixed' | 'exponential' | 'linear';
  /** Delay before the first retry, in ms; default 1000. */
  initialDelayMs?: number;
  /** Upper bound on any one delay, in ms. */
  maxDelayMs?: number;
  /** Per attempt, in ms: an attempt running longer fails with `ERR_TIMEOUT` (and its `ctx.signal` fires). */
  timeoutMs?: number;
  /**
   * All attempts together, in ms from when the activity was scheduled: a retry that would
   * start later is not made (the last error is final), and a running attempt is timed out
   * when the budget runs out.
   */
  totalTimeoutMs?: number;
  /** Randomize each delay between half and all of it. */
  jitter?: boolean;
}

/** Options of starting an orchestration (client, sub-orchestration, fire-and-forget). */
export interface StartOptions {
  /** Run this registered version instead of the latest. */
  version?: string;
}

/** A durable step. Yield it (`yield task`) or delegate to it (`yield* task`) to get its result. */
export declare class Task<T = unknown> {
  private constructor();
  readonly kind: string;
  readonly taskId: number | undefined;
  [Symbol.iterator](): Generator<Task<T>, T, any>;
}

export type AllResult<T> = { ok: T } | { err: string };
type TaskValue<T> = T extends Task<infer V> ? V : never;
/**
 * What a race gives: one `{index, value}` member per task, so checking `index` narrows
 * `value` to that task's result (`if (r.index === 0) r.value ...`). For an array of
 * tasks of one type, `index` is a `number`.
 */
export type RaceResult<Ts extends readonly Task<any>[]> = {
  [K in keyof Ts]: { index: K extends `${infer N extends number}` ? N : number; value: TaskValue<Ts[K]> };
}[number];

export declare class OrchestrationContext {
  private constructor();
  readonly instanceId: string;
  readonly executionId: number;
  readonly orchestrationName: string;
  readonly orchestrationVersion: string;
  /** True while the code re-runs steps that history already holds. */
  readonly isReplaying: boolean;
  /** Runs the activity registered as `name`; its result is `T` (say which with `scheduleActivity<T>`), its failure is thrown at the `yield`. */
  scheduleActivity<T = any>(name: string, input?: unknown, options?: ActivityOptions): ActivityTask<T>;
  scheduleActivityWithRetry<T = any>(name: string, input: unknown, retryPolicy: RetryPolicy, options?: ActivityOptions): ActivityTask<T>;
  /** Runs the activity on session `sessionId`: every activity of a session runs on one worker at a time. */
  scheduleActivityOnSession<T = any>(name: string, input: unknown, sessionId: string): ActivityTask<T>;
  scheduleActivityWithRetryOnSession<T = any>(name: string, input: unknown, retryPolicy: RetryPolicy, sessionId: string): ActivityTask<T>;
  /** The next message of the instance's FIFO queue `queueName` (sent with `client.enqueueEvent`). */
  dequeueEvent<T = any>(queueName: string): Task<T>;
  /** Another instance's key-value value (`null` when unset), read durably (recorded in history). */
  getValueFromInstance(instanceId: string, key: string): Task<string | null>;
  /** duroxide-node's typed variants: the same tasks; a result that is a string of JSON is parsed once more. */
  scheduleActivityTyped<T = any>(name: string, input?: unknown, options?: ActivityOptions): ActivityTask<T>;
  scheduleActivityOnSessionTyped<T = any>(name: string, input: unknown, sessionId: string): ActivityTask<T>;
  scheduleActivityWithRetryTyped<T = any>(name: string, input: unknown, retryPolicy: RetryPolicy): ActivityTask<T>;
  scheduleActivityWithRetryOnSessionTyped<T = any>(name: string, input: unknown, retryPolicy: RetryPolicy, sessionId: string): ActivityTask<T>;
  scheduleSubOrchestrationTyped<T = any>(name: string, input?: unknown, options?: StartOptions): Task<T>;
  scheduleSubOrchestrationWithIdTyped<T = any>(name: string, instanceId: string, input?: unknown, options?: StartOptions): Task<T>;
  scheduleSubOrchestrationVersionedTyped<T = any>(name: string, version: string, input?: unknown): Task<T>;
  scheduleSubOrchestrationVersionedWithIdTyped<T = any>(name: string, version: string, instanceId: string, input?: unknown): Task<T>;
  waitForEventTyped<T = any>(eventName: string): Task<T>;
  dequeueEventTyped<T = any>(queueName: string): Task<T>;
  allTyped<const Ts extends readonly Task<any>[]>(tasks: Ts): Task<{ [K in keyof Ts]: AllResult<TaskValue<Ts[K]>> }>;
  raceTyped<const Ts extends readonly Task<any>[]>(...tasks: Ts): Task<RaceResult<Ts>>;
  raceTyped<const Ts extends readonly Task<any>[]>(tasks: Ts): Task<RaceResult<Ts>>;
  startOrchestrationTyped(name: string, instanceId: string, input?: unknown, options?: StartOptions): Task<string>;
  startOrchestrationVersionedTyped(name: string, version: string, instanceId: string, input?: unknown): Task<string>;
  continueAsNewTyped(input?: unknown): Task<never>;
  continueAsNewVersionedTyped(input: unknown, version: string): Task<never>;
  /** Per-instance key-value store (string values; others pass through `String()`), written with the turn. */
  setValue(key: string, value: unknown): void;
  getValue(key: string): string | null;
  clearValue(key: string): void;
  clearAllValues(): void;
  getKvAllValues(): Record<string, string>;
  getKvAllKeys(): string[];
  getKvLength(): number;
  /** Removes the keys last set before `cutoffMs` (epoch ms); returns how many. */
  pruneKvValuesUpdatedBefore(cutoffMs: number): number;
  /**
   * Runs an activity from `defineActivity`: the input is checked against the definition's and
   * `yield*` gives its result type: `const user = yield* ctx.activity(getUser, id)`.
   */
  activity<D extends ActivityDefinition>(definition: D, ...input: ActivityInputArgs<ActivityInput<D>>): Task<ActivityOutput<D>>;
  activityWithRetry<D extends ActivityDefinition>(definition: D, input: ActivityInput<D>, retryPolicy: RetryPolicy): Task<ActivityOutput<D>>;
  /** Yields `null` after `delayMs`. */
  scheduleTimer(delayMs: number): Task<null>;
  waitForEvent<T = any>(eventName: string): Task<T>;
  /** Runs a child orchestration (id `parent:execution:task`) and yields its output; its failure is thrown at the `yield`. */
  scheduleSubOrchestration<T = any>(name: string, input?: unknown, options?: StartOptions): Task<T>;
  scheduleSubOrchestrationWithId<T = any>(name: string, instanceId: string, input?: unknown, options?: StartOptions): Task<T>;
  /** Fire-and-forget; yields the new instance's id. */
  startOrchestration(name: string, instanceId: string, input?: unknown, options?: StartOptions): Task<string>;
  /** duroxide-node's versioned forms of the three above. */
  scheduleSubOrchestrationVersioned<T = any>(name: string, version: string, input?: unknown): Task<T>;
  scheduleSubOrchestrationVersionedWithId<T = any>(name: string, version: string, instanceId: string, input?: unknown): Task<T>;
  startOrchestrationVersioned(name: string, version: string, instanceId: string, input?: unknown): Task<string>;
  all<const Ts extends readonly Task<any>[]>(tasks: Ts): Task<{ [K in keyof Ts]: AllResult<TaskValue<Ts[K]>> }>;
  /** The first task to settle wins: `yield*` gives a `RaceResult`, narrowed by checking `index`. */
  race<const Ts extends readonly Task<any>[]>(...tasks: Ts): Task<RaceResult<Ts>>;
  race<const Ts extends readonly Task<any>[]>(tasks: Ts): Task<RaceResult<Ts>>;
  /** The turn's timestamp, epoch ms. */
  utcNow(): Task<number>;
  newGuid(): Task<string>;
  continueAsNew(input?: unknown): Task<never>;
  continueAsNewVersioned(input: unknown, version: string): Task<never>;
  setCustomStatus(value: unknown): void;
  /** Clears the custom status (the client sees `null`). */
  resetCustomStatus(): void;
  getCustomStatus<T = unknown>(): T | null;
  traceInfo(message: string): void;
  traceWarn(message: string): void;
  traceError(message: string): void;
  traceDebug(message: string): void;
}

export declare class ActivityContext {
  private constructor();
  readonly instanceId: string;
  readonly executionId: number;
  /** The orchestration that scheduled it. */
  readonly orchestrationName: string | null;
  readonly orchestrationVersion: string | null;
  readonly activityName: string;
  /** The runtime running it (its id in the registry of runtimes). */
  readonly workerId: string | null;
  /** The session it runs on, or null. */
  readonly sessionId: string | null;
  /** The tag that routed it, or null. */
  tag(): string | null;
  /** True once the activity is cancelled (when `signal` fires). */
  isCancelled(): boolean;
  /** A Client on the runtime's store. */
  getClient(): Client;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Fires when the orchestration stops waiting (race lost, cancelled), on timeout, when the activity's lease is lost, or at shutdown. */
  readonly signal: AbortSignal;
  traceInfo(message: string): void;
  traceWarn(message: string): void;
  traceError(message: string): void;
  traceDebug(message: string): void;
}

/** `scheduleActivity` options: the session the activity runs on. */
export interface ActivityOptions {
  sessionId?: string;
}

/** An activity task: `withTag` routes it to workers whose `workerTagFilter` accepts the tag. */
export interface ActivityTask<T> extends Task<T> {
  /** Sets the tag (before the first yield) and returns the same task. */
  withTag(tag: string): ActivityTask<T>;
  readonly tag?: string;
}

/** Which activities a runtime takes by tag: untagged only (default), any, none, only these tags, or untagged plus these. */
export type WorkerTagFilter = 'defaultOnly' | 'any' | 'none' | { tags: string[] } | { defaultAnd: string[] };

export type ActivityFunction<I = any, O = any> = (ctx: ActivityContext, input: I) => O | PromiseLike<O>;

/** An activity's name and function together, from `defineActivity`. */
export interface ActivityDefinition<I = any, O = any> {
  readonly name: string;
  readonly fn: ActivityFunction<I, O>;
}

/** The input type of an activity definition. */
export type ActivityInput<D> = D extends ActivityDefinition<infer I, any> ? I : never;
/** The result type of an activity definition (what its function resolves to). */
export type ActivityOutput<D> = D extends ActivityDefinition<any, infer O> ? O : never;
/** The input argument of `ctx.activity`: optional when the activity takes none (or accepts `undefined`). */
export type ActivityInputArgs<I> = undefined extends I ? [input?: I] : [input: I];

/**
 * Names an activity function once. Register the result with `runtime.registerActivity(def)`
 * and call it from orchestrations with `yield* ctx.activity(def, input)`, which TypeScript
 * types from the function:
 *
 * ```ts
 * const getUser = defineActivity('GetUser', async (ctx, id: string) => ({ id, name: 'Ada' }));
 * const user = yield* ctx.activity(getUser, 'u1'); // { id: string; name: string }
 * ```
 */
export declare function defineActivity<I = void, O = unknown>(
  name: string,
  fn: (ctx: ActivityContext, input: I) => O | PromiseLike<O>,
): ActivityDefinition<I, O>;
export type OrchestrationFunction<I = any, O = any> = (ctx: OrchestrationContext, input: I) => Generator<Task<any>, O, any>;

/**
 * What an orchestration must not return: a task (a forgotten `yield`), a Promise, a function
 * or a symbol. At run time the instance fails with `ERR_INVALID_ARGUMENT`; in TypeScript,
 * registering such an orchestration asks for an impossible extra argument naming the mistake.
 */
export type NotOrchestrationOutput = Task<any> | PromiseLike<any> | ((...args: any[]) => any) | symbol;
type OutputCheck<O> = 0 extends 1 & O
  ? []
  : [O] extends [NotOrchestrationOutput]
    ? [mistake: 'an orchestration must return plain data, not a task or a Promise: yield the task (did you forget `yield`?)']
    : [];

export interface RuntimeOptions {
  /** Turns in flight at once (default 100); 0 makes an activity-only worker. */
  orchestrationConcurrency?: number;
  /** Sessions this runtime may own at once (default 10). */
  maxSessionsPerRuntime?: number;
  /** A session idle this long is released (default 300000). */
  sessionIdleTimeoutMs?: number;
  /** Which tagged activities this runtime takes (default 'defaultOnly'). */
  workerTagFilter?: WorkerTagFilter;
  /** Activities in flight at once (default 100). */
  workerConcurrency?: number;
  /** Live generators kept between turns (default 1000); 0 replays the whole history every turn. */
  generatorCacheSize?: number;
  /** Lease on an instance or activity, renewed while work runs (default 30000). */
  lockTimeoutMs?: number;
  /** Fallback poll for work committed by other processes (default 1000). */
  pollIntervalMs?: number;
  /** duroxide-node's name for `lockTimeoutMs` (pass one of the two). */
  workerLockTimeoutMs?: number;
  /** duroxide-node's name for `pollIntervalMs` (pass one of the two). */
  dispatcherPollIntervalMs?: number;
  /** Deliveries after which a message or activity is poisoned (default 10). */
  maxDeliveries?: number;
  /** How long work for a name no runtime on the store ever had waits, from its creation, before it fails with `ERR_NOT_REGISTERED` (default 10000). */
  notRegisteredGraceMs?: number;
  /** How long work for a name that runtimes had waits after the last of them stopped before it fails with `ERR_NOT_REGISTERED` (default 600000). */
  unservedGraceMs?: number;
  /** Longest a single turn may take in the driver (default 60000). */
  maxTurnMs?: number;
  /** An activity attempt running longer fails with ERR_TIMEOUT (default 300000). */
  activityTimeoutMs?: number;
  /** How often the snapshot's queue_* gauges are read from the store (default 5000). */
  metricsIntervalMs?: number;
  /**
   * The stable name a deployment gives this process (a pod name, say). Only one live
   * runtime per store may have it: starting a second is refused with ERR_LOCKED. A process
   * restarted with it takes the previous process's work back at once.
   */
  workerNodeId?: string;
  /** How often the runtime refreshes its row in the registry of runtimes (default 1000). */
  heartbeatIntervalMs?: number;
  /**
   * A runtime whose heartbeat is older than this is dead: any live runtime releases its
   * leases at once (default 3000; at least twice `heartbeatIntervalMs`).
   */
  heartbeatTimeoutMs?: number;
  /**
   * Keep Node alive while the runtime runs, like a listening server (default true). `false`
   * is the same as `runtime.unref()`: a script then exits once its own work is done.
   */
  keepAlive?: boolean;
  /**
   * Format of log lines (default `'compact'`). Applies when this runtime is the first thing
   * to configure the process's tracing (no `initTracing`, no runtime started before).
   */
  logFormat?: LogFormat;
  /** Level when `RUST_LOG` is unset (default `'warn'`), under the same condition as `logFormat`. */
  logLevel?: LogLevel;
  /** `service.name` on every line this runtime logs. */
  serviceName?: string;
  /** `service.version` on every line this runtime logs. */
  serviceVersion?: string;
}

/** How log lines are written: one line (span fields last), several lines, or one JSON object per line. */
export type LogFormat = 'compact' | 'pretty' | 'json';

/** A tracing level (`RUST_LOG`, when set, overrides it). Any case is accepted. */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'off';

export interface TracingOptions {
  /** Every log line goes to this file, appended; the file and its folder are created when missing. */
  logFile: string;
  /** Default `'warn'`; `RUST_LOG` overrides it. */
  logLevel?: LogLevel;
  /** Default `'compact'`. */
  logFormat?: LogFormat;
}

/**
 * Sends the process's tracing to a file. Call once, before the first runtime starts: a
 * second call, or one after a runtime started, throws InvalidStateError; a file that cannot
 * be opened throws InvalidArgumentError naming it.
 */
export declare function initTracing(options: TracingOptions): void;

/** What `client.watch()` and `runtime.events()` report. */
export type LifecycleEventType =
  | 'instanceStarted'
  | 'instanceCompleted'
  | 'instanceFailed'
  | 'instanceContinuedAsNew'
  | 'instanceRetried'
  | 'cancelRequested'
  | 'activityScheduled'
  | 'activityStarted'
  | 'activityCompleted'
  | 'activityFailed'
  | 'activityRetried'
  | 'timerCreated'
  | 'timerFired'
  | 'eventWaitStarted'
  | 'eventReceived'
  | 'subOrchestrationScheduled'
  | 'subOrchestrationCompleted'
  | 'subOrchestrationFailed'
  | 'detachedOrchestrationStarted'
  | 'taskCanceled'
  | 'customStatusChanged'
  | 'valueSet'
  | 'valueCleared'
  | 'valuesCleared';

/** One thing that happened to an instance; fields beyond the first five depend on `type`. */
export interface LifecycleEvent {
  type: LifecycleEventType;
  instanceId: string;
  executionId: number;
  /** The history event it comes from; absent for activityStarted/activityRetried. */
  eventId?: number;
  /** Epoch ms. */
  timestamp: number;
  task?: number;
  /** Orchestration, activity, sub-orchestration or event name. */
  name?: string;
  version?: string;
  childInstanceId?: string;
  /** activityStarted: this attempt; activityRetried: the attempt that comes next. */
  attempt?: number;
  input?: unknown;
  result?: unknown;
  output?: unknown;
  /** eventReceived: the event's data. */
  data?: unknown;
  /** customStatusChanged: the new custom status. */
  value?: unknown;
  error?: { message: string; code?: string; name?: string };
  reason?: string;
  fireAt?: number;
  retryAt?: number;
  /** instanceRetried: how many events the retry took out of history. */
  removed?: number;
}

/** `runtime.events()`: a reader fell behind by more than `bufferSize`; `count` were lost. */
export interface EventsDroppedEvent {
  type: 'eventsDropped';
  count: number;
  timestamp: number;
}

export interface WatchOptions {
  signal?: AbortSignal;
  /** `'start'` (default): the whole history first; `'now'`: only what happens next. */
  since?: 'start' | 'now';
  types?: LifecycleEventType[];
}

export interface RuntimeEventsOptions {
  signal?: AbortSignal;
  instanceId?: string;
  types?: LifecycleEventType[];
  /** Events kept for a slow reader (default 10000). */
  bufferSize?: number;
}

/** Counters (since start) and gauges (now) of a runtime. */
export interface MetricsSnapshot {
  activations: number;
  activitiesAbandoned: number;
  activitiesCompleted: number;
  activitiesFailed: number;
  activitiesStarted: number;
  activityBatches: number;
  activityRetries: number;
  cachedGenerators: number;
  claimedItems: number;
  claims: number;
  driverCalls: number;
  fullReplays: number;
  inflightTurns: number;
  jobsSent: number;
  /** Leases of running turns and activities renewed by the lease keeper. */
  leaseRenewals: number;
  /** Leases found lost: at a renewal, or a late turn commit or activity result refused. */
  leaseLosses: number;
  nondeterminismErrors: number;
  orchestrationsCompleted: number;
  orchestrationsFailed: number;
  poisoned: number;
  runningActivities: number;
  storeErrors: number;
  turnsAbandoned: number;
  turnsCommitted: number;
  activityClaims: number;
  activityClaimedItems: number;
  /** Activities claimed by the very commit that scheduled them, when this runtime had free worker slots. */
  activitiesClaimedOnCommit: number;
  /** Instances claimed by the store call that recorded the activity results waking them (SQLite). */
  turnsClaimedOnCompletion: number;
  /** History events read by claims: with the generator cache a turn reads only the events after its cached position. */
  historyEventsRead: number;
  /** Dead runtimes (stale heartbeat) this runtime removed from the registry, releasing their leases. */
  runtimesReaped: number;
  /** Times the store became unreachable (logged once each, until it is back). */
  storeOutages: number;
  /** duroxide-node's counters: executions started, continued as new, sub-orchestrations scheduled. */
  orchStarts: number;
  orchContinueAsNew: number;
  suborchestrationCalls: number;
  /** Failed executions by cause: the code's, the runtime's (protocol), the setup's (not registered, nondeterminism), poison. */
  orchApplicationErrors: number;
  orchInfrastructureErrors: number;
  orchConfigurationErrors: number;
  orchPoison: number;
  /** Activities failed for good by cause; infra: a result not recorded (lease lost). */
  activityAppErrors: number;
  activityInfraErrors: number;
  activityConfigErrors: number;
  activityPoison: number;
  /** duroxide-node's names for counts above (not repeated in the Prometheus text). */
  orchCompletions: number;
  orchFailures: number;
  activitySuccess: number;
  orchDispatcherItemsFetched: number;
  workerDispatcherItemsFetched: number;
  providerErrors: number;
  /** Queue depths across all processes, read every `metricsIntervalMs` (absent until the first reading). */
  queueOrchestratorVisible?: number;
  queueOrchestratorDelayed?: number;
  queueWorkerVisible?: number;
  queueWorkerRunning?: number;
  queueWorkerDelayed?: number;
  queueDepthAgeMs?: number;
  /** Visible work whose name no live runtime has: it waits (see "Routing" in the guide). Read every `metricsIntervalMs`. */
  orchestrationsWithoutRuntime: number;
  activitiesWithoutRuntime: number;
  /** The mean write batch: SQLite's writer transactions and the operations they carried; PostgreSQL's group-commit statements and the turns they carried. */
  storeTransactions?: number;
  storeOperations?: number;
  [name: string]: number | undefined;
}

export declare class Runtime {
  constructor(provider: Provider, options?: RuntimeOptions);
  registerActivity<I = any, O = any>(name: string, fn: ActivityFunction<I, O>): this;
  /** Registers an activity from `defineActivity` under its name. */
  registerActivity(definition: ActivityDefinition): this;
  registerOrchestration<I = any, O = any>(name: string, fn: OrchestrationFunction<I, O>, ...mistake: OutputCheck<O>): this;
  registerOrchestrationVersioned<I = any, O = any>(
    name: string,
    version: string,
    fn: OrchestrationFunction<I, O>,
    ...mistake: OutputCheck<O>
  ): this;
  /** duroxide-node's typed registrations: the same as the untyped ones (values cross as JSON). */
  registerActivityTyped<I = any, O = any>(name: string, fn: ActivityFunction<I, O>): this;
  registerOrchestrationTyped<I = any, O = any>(name: string, fn: OrchestrationFunction<I, O>, ...mistake: OutputCheck<O>): this;
  registerOrchestrationVersionedTyped<I = any, O = any>(
    name: string,
    version: string,
    fn: OrchestrationFunction<I, O>,
    ...mistake: OutputCheck<O>
  ): this;
  /**
   * Starts dispatching. The runtime then keeps the process alive until `shutdown()`; on
   * SIGINT/SIGTERM with no listener of the application's, every started runtime shuts down
   * (10 s deadline) and the process exits with 128 + the signal number.
   */
  start(): Promise<void>;
  /** Lets the process exit while this runtime runs (like `keepAlive: false`). */
  unref(): this;
  /** Undoes `unref()`: the runtime keeps the process alive while it runs (the default). */
  ref(): this;
  /** Resolves once in-flight work drained, or at the deadline with the rest aborted and abandoned (default 30000). */
  shutdown(timeoutMs?: number): Promise<void>;
  metricsSnapshot(): MetricsSnapshot;
  /**
   * Lifecycle events of this runtime's work, from this call on: every history event its
   * turns commit and every activity attempt it starts or schedules for retry. Ends when
   * `signal` aborts, the loop breaks or the runtime shuts down; keeps the process alive
   * meanwhile.
   */
  events(options?: RuntimeEventsOptions): AsyncIterableIterator<LifecycleEvent | EventsDroppedEvent>;
  /** `metricsSnapshot()` as Prometheus text exposition. */
  metricsPrometheus(options?: PrometheusOptions): string;
}

export interface PrometheusOptions {
  /** Prepended to every metric name (default `reprise_`); counters also get `_total`. */
  prefix?: string;
  /** Constant labels added to every sample, e.g. `{process: 'worker-1'}`. */
  labels?: Record<string, string | number>;
}

/** Renders a metrics snapshot as Prometheus text (format 0.0.4). */
export declare function prometheusText(snapshot: MetricsSnapshot, options?: PrometheusOptions): string;

/** Everything stored about an instance (`getInstanceInfo`, `listInstances`). */
/** The status stored on an instance. */
export type StoredStatus = 'Pending' | 'Running' | 'Completed' | 'Failed' | 'Canceled';

export interface InstanceInfo<TInput = unknown, TOutput = unknown, TCustom = unknown> {
  instanceId: string;
  name: string;
  version: string | null;
  /** As the generator API shows it: `Pending` reads as `Running`, `Canceled` as `Failed`. */
  status: 'Running' | 'Completed' | 'Failed';
  /** As stored: `Pending` (never claimed yet), `Running`, `Completed`, `Failed`, `Canceled`. */
  storedStatus: StoredStatus;
  executionId: number;
  input: TInput | null;
  output: TOutput | null;
  error: string | null;
  errorCode: string | null;
  customStatus: TCustom | null;
  customStatusVersion: number;
  /** Epoch milliseconds (store clock). */
  createdAt: number;
  updatedAt: number;
  /** The parent of a sub-orchestration. */
  parentId: string | null;
  /** duroxide-node's names for `name`, `version`, `executionId` and `parentId`. */
  orchestrationName: string;
  orchestrationVersion: string | null;
  currentExecutionId: number;
  parentInstanceId: string | null;
  /**
   * `true` when the instance is not finished and no live runtime on the store runs its
   * orchestration (name, and version once fixed): it waits for one, and fails with
   * `ERR_NOT_REGISTERED` only once no runtime has had it for `notRegisteredGraceMs`.
   */
  waitingForRuntime: boolean;
}

export interface InstanceTreeNode extends InstanceInfo {
  children: InstanceTreeNode[];
}

/** The tree, and duroxide-node's summary of it: the root id, every id (root first), how many. */
export interface InstanceTree extends InstanceTreeNode {
  rootId: string;
  allIds: string[];
  size: number;
}

export interface ListInstancesOptions {
  /** `Running` also lists `Pending` instances, `Failed` also `Canceled` ones. */
  status?: 'Running' | 'Completed' | 'Failed' | 'Pending' | 'Canceled';
  /** Exactly this stored status. */
  storedStatus?: StoredStatus;
  name?: string;
  /** Exclusive bound: a Date or epoch milliseconds. */
  createdAfter?: Date | number;
  /** Exclusive bound: a Date or epoch milliseconds. */
  createdBefore?: Date | number;
  parentId?: string;
  /** 1 to 10000 (default 100). */
  limit?: number;
  /** The previous page's `nextCursor`. */
  cursor?: string | null;
}

export interface InstancePage {
  instances: InstanceInfo[];
  /** `null` when no rows followed this page. */
  nextCursor: string | null;
}

export interface ExecutionInfo {
  executionId: number;
  /** Epoch ms of the execution's first and last history events (`null` while it has none). */
  firstEventAt: number | null;
  lastEventAt: number | null;
  eventCount: number;
}

export interface SystemMetrics {
  total: number;
  running: number;
  completed: number;
  failed: number;
  /** duroxide-node's names; `totalExecutions` counts executions started, `totalEvents` history events stored. */
  totalInstances: number;
  totalExecutions: number;
  runningInstances: number;
  completedInstances: number;
  failedInstances: number;
  totalEvents: number;
}

/** What a deletion removed (duroxide-node's shape). */
export interface DeleteInstanceResult {
  instancesDeleted: number;
  executionsDeleted: number;
  eventsDeleted: number;
  queueMessagesDeleted: number;
}

/** One execution (`getExecutionInfo`). */
export interface ExecutionDetails {
  executionId: number;
  status: 'Running' | 'Completed' | 'Failed' | 'ContinuedAsNew';
  /** The output when Completed, the error message when Failed, else null. */
  output: unknown;
  startedAt: number | null;
  completedAt?: number | null;
  eventCount: number;
}

/** Sizes of one instance (`getOrchestrationStats`). */
export interface OrchestrationStats {
  historyEventCount: number;
  historySizeBytes: number;
  queuePendingCount: number;
  kvUserKeyCount: number;
  kvTotalValueBytes: number;
}

/** duroxide-node's bulk filters. */
export interface InstanceBulkFilter {
  instanceIds?: string[];
  /** Epoch ms (or a Date). */
  completedBefore?: Date | number;
  limit?: number;
}

/** One entry of `client.startOrchestrations`. */
export interface BatchStart {
  id: string;
  name: string;
  input?: unknown;
  version?: string;
}

/** A row of the registry of runtimes (`client.listRuntimes()`). */
export interface RuntimeInfo {
  runtimeId: string;
  workerNodeId: string | null;
  host: string;
  pid: number;
  /** Epoch ms, the store's clock. */
  startedAt: number;
  heartbeatAt: number;
  heartbeatAgeMs: number;
  /** Its heartbeat is fresh; a dead runtime's leases are released by the next live heartbeat. */
  alive: boolean;
  orchestrations: { name: string; versions: string[] }[];
  activities: string[];
  /** Which tagged activities it takes. */
  workerTagFilter: WorkerTagFilter;
}

export interface QueueDepths {
  orchestrator: { visible: number; delayed: number };
  worker: { visible: number; running: number; delayed: number };
  /** duroxide-node's names: orchestrator messages ready, activities queued (not running), timers waiting. */
  orchestratorQueue: number;
  workerQueue: number;
  timerQueue: number;
}

export type DeleteInstancesOptions =
  | { ids: string[]; completedBefore?: Date | number; status?: 'Completed' | 'Failed' | 'Canceled'; limit?: number }
  | { ids?: string[]; completedBefore: Date | number; status?: 'Completed' | 'Failed' | 'Canceled'; limit?: number };

export interface PruneExecutionsOptions {
  /** Executions kept, the current one included (default 1). */
  keepLast?: number;
  /** Only executions whose last event is older than this (Date or epoch ms). */
  completedBefore?: Date | number;
}

export declare class Client {
  constructor(provider: Provider);
  /** Resolves `true` if this call created the instance; an existing id changes nothing. */
  startOrchestration(instanceId: string, orchestrationName: string, input?: unknown, options?: StartOptions): Promise<boolean>;
  /** duroxide-node's form of `startOrchestration(id, name, input, { version })`. */
  startOrchestrationVersioned(instanceId: string, orchestrationName: string, input: unknown, version: string): Promise<boolean>;
  /** The output once the instance completed; a failed instance rejects with a TaskFailedError (its `code` is the instance's `errorCode`). */
  waitForOrchestrationTyped<T = any>(instanceId: string, timeoutMs?: number): Promise<T>;
  /**
   * Starts many instances in one store transaction (at most 100,000 per call). Ids that
   * already exist, or come twice in the batch, are left alone and listed in `existing`.
   */
  startOrchestrations(starts: BatchStart[]): Promise<{ created: string[]; existing: string[] }>;
  raiseEvent(instanceId: string, eventName: string, data?: unknown): Promise<void>;
  /** Appends a message to the instance's FIFO queue `queueName` (for `ctx.dequeueEvent`); kept even before the instance exists. */
  enqueueEvent(instanceId: string, queueName: string, data?: unknown): Promise<void>;
  raiseEventTyped(instanceId: string, eventName: string, data?: unknown): Promise<void>;
  enqueueEventTyped(instanceId: string, queueName: string, data?: unknown): Promise<void>;
  /** The instance's key-value value (`null` when unset), as of its last committed turn. */
  getValue(instanceId: string, key: string): Promise<string | null>;
  /** Resolves once the instance has a value for `key` (woken by commits); TimeoutError after `timeoutMs` (default 30000). */
  waitForValue(instanceId: string, key: string, timeoutMs?: number): Promise<string>;
  getKvAllValues(instanceId: string): Promise<Record<string, string>>;
  /** Sizes of an instance, or null. */
  getOrchestrationStats(instanceId: string): Promise<OrchestrationStats | null>;
  /** One execution, or null. */
  getExecutionInfo(instanceId: string, executionId: number): Promise<ExecutionDetails | null>;
  /** Resolves `true` if a cancel was requested; `false` on a finished or unknown instance. */
  cancelInstance(instanceId: string, reason?: string): Promise<boolean>;
  /**
   * Re-runs a Failed instance from its last good point: activities that had succeeded are
   * not run again, failed ones run again with a fresh retry budget, and failed
   * sub-orchestrations it waited for are retried too. Resolves to the ids retried (this
   * instance first). NotFoundError for an unknown id; InvalidStateError if not Failed.
   */
  retryInstance(instanceId: string): Promise<string[]>;
  /**
   * Follows an instance: its history as lifecycle events (from its first execution, or
   * from now with `since: 'now'`), then live, until it completes or fails, `signal` aborts
   * or the loop breaks. NotFoundError if the instance does not exist.
   */
  watch(instanceId: string, options?: WatchOptions): AsyncGenerator<LifecycleEvent, void, undefined>;
  /**
   * Resolves once the instance's `customStatusVersion` is greater than `lastVersion` (or it
   * has finished): progress without polling. Rejects with a TimeoutError after `timeoutMs`
   * (default 30000).
   */
  waitForStatusChange<TOutput = unknown, TCustom = unknown>(instanceId: string, lastVersion?: number, timeoutMs?: number): Promise<OrchestrationStatus<TOutput, TCustom>>;
  /** duroxide-node's form: a poll interval third (checked; commits wake the wait), then the timeout. */
  waitForStatusChange<TOutput = unknown, TCustom = unknown>(instanceId: string, lastVersion: number, pollMs: number | undefined, timeoutMs?: number): Promise<OrchestrationStatus<TOutput, TCustom>>;
  /**
   * Removes an instance with its sub-orchestrations, their histories, key-value stores and
   * everything queued for them. A running instance is refused with an `InvalidStateError`
   * unless forced. duroxide-node's form (`force` a boolean, or left out) resolves to what
   * was removed; reprise's form (`{force}`) to how many instances (0 for an unknown id).
   */
  deleteInstance(instanceId: string, force?: boolean): Promise<DeleteInstanceResult>;
  deleteInstance(instanceId: string, options: { force?: boolean }): Promise<number>;
  /** duroxide-node's bulk deletion of finished instances; resolves to what was removed. */
  deleteInstanceBulk(filter?: InstanceBulkFilter): Promise<DeleteInstanceResult>;
  /** `pruneExecutions` over the instances `filter` selects. */
  pruneExecutionsBulk(filter?: InstanceBulkFilter, options?: PruneExecutionsOptions): Promise<{ instancesProcessed: number; executionsDeleted: number; eventsDeleted: number }>;
  /** History as reprise stores it (its kinds and data). */
  readStoredHistory(instanceId: string, executionId?: number): Promise<StoredHistoryEvent[]>;
  getStatus<TOutput = unknown>(instanceId: string): Promise<OrchestrationStatus<TOutput>>;
  /** Rejects with a TimeoutError after `timeoutMs` (default 30000). */
  waitForOrchestration<TOutput = unknown>(instanceId: string, timeoutMs?: number): Promise<FinishedStatus<TOutput>>;
  readExecutionHistory(instanceId: string, executionId?: number): Promise<HistoryEvent[]>;
  /** A page in creation order; rows created later never change a page already read. */
  listInstances(options?: ListInstancesOptions): Promise<InstancePage>;
  /** Every instance id, oldest first. */
  listAllInstances(): Promise<string[]>;
  /** The ids of the instances with `status` (as `listInstances` takes it), oldest first. */
  listInstancesByStatus(status: 'Running' | 'Completed' | 'Failed' | 'Pending' | 'Canceled'): Promise<string[]>;
  getInstanceInfo<TInput = unknown, TOutput = unknown, TCustom = unknown>(instanceId: string): Promise<InstanceInfo<TInput, TOutput, TCustom> | null>;
  /** The execution ids, oldest first; with `{details: true}`, what each holds. */
  listExecutions(instanceId: string, options?: { details?: false }): Promise<number[]>;
  listExecutions(instanceId: string, options: { details: true }): Promise<ExecutionInfo[]>;
  /** The instance with its sub-orchestrations (recursively) as `children`; `null` if unknown. */
  getInstanceTree(instanceId: string): Promise<InstanceTree | null>;
  getSystemMetrics(): Promise<SystemMetrics>;
  getQueueDepths(): Promise<QueueDepths>;
  /** The registry of runtimes on this store, oldest first. */
  listRuntimes(): Promise<RuntimeInfo[]>;
  /** Removes finished instances (never running ones) with their sub-orchestrations; resolves to how many were removed. */
  deleteInstances(options: DeleteInstancesOptions): Promise<number>;
  /** Removes old executions' history (never the current one); resolves to how many executions were removed. */
  pruneExecutions(instanceId: string, options?: PruneExecutionsOptions): Promise<number>;
}

/** Base class of every error reprise throws; `code` is stable and documented. */
export declare class RepriseError extends Error {
  constructor(message: string, code?: string, options?: ErrorOptions);
  readonly code: string;
}
/** A bad argument or option; the message names the field. */
export declare class InvalidArgumentError extends RepriseError {
  constructor(message: string, options?: ErrorOptions);
  readonly code: 'ERR_INVALID_ARGUMENT';
}
/** A call at the wrong time, e.g. registering after `start()` or starting twice. */
export declare class InvalidStateError extends RepriseError {
  constructor(message: string);
  readonly code: 'ERR_INVALID_STATE';
}
/** `waitForOrchestration` ran out of time (the instance goes on running). */
/** No instance with that id. */
export declare class NotFoundError extends RepriseError {
  constructor(message: string);
  readonly code: 'ERR_NOT_FOUND';
}
export declare class TimeoutError extends RepriseError {
  constructor(message: string);
  readonly code: 'ERR_TIMEOUT';
}
/** For matching `errorCode === 'ERR_NONDETERMINISM'` failures by class name in your own code. */
export declare class NondeterminismError extends RepriseError {
  constructor(message: string);
  readonly code: 'ERR_NONDETERMINISM';
}
/** For matching `errorCode === 'ERR_NOT_REGISTERED'` failures by class name in your own code. */
export declare class NotRegisteredError extends RepriseError {
  constructor(message: string);
  readonly code: 'ERR_NOT_REGISTERED';
}
/** The storage backend failed or refused; `code` says how (`ERR_STORE` by default). */
export declare class StoreError extends RepriseError {
  constructor(message: string, code?: string);
  /** The same call can succeed later unchanged: the store was unreachable (`ERR_UNAVAILABLE`). */
  readonly retryable: boolean;
}
/** An activity or sub-orchestration failed; thrown into the orchestration at its `yield`. `code` is the original error's code or `ERR_TASK_FAILED`. */
export declare class TaskFailedError extends RepriseError {
  constructor(message: string, code?: string, originalName?: string);
  /** The `name` of the error the activity or child threw (e.g. `'TypeError'`). */
  readonly originalName?: string;
  /** Set when the failed task won a race: its position among the race's tasks. */
  index?: number;
}

// ---------------------------------------------------------------------------------------
// Jobs: async functions with checkpointed steps (guide: "Jobs and steps").
// ---------------------------------------------------------------------------------------

/** Anything with `parse(value)` that returns the checked value or throws (zod schemas work). */
export interface Schema<T> {
  parse(value: unknown): T;
}

export type RunStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface RunProgress {
  current: number;
  total?: number;
  message?: string;
}

/** A job run (an instance of the job's name). Times are ISO 8601 strings. */
export interface Run<TOutput = unknown, TInput = unknown> {
  id: string;
  jobName: string;
  status: RunStatus;
  payload: TInput;
  output?: TOutput;
  error?: string;
  progress?: RunProgress;
  createdAt: string;
  updatedAt: string;
  startedAt?: string;
  completedAt?: string;
  concurrencyKey?: string;
  /** The run that spawned this one. */
  parentId?: string;
}

export interface TriggerOptions {
  /** A second trigger with the same key (for this job) returns the existing run. */
  idempotencyKey?: string;
  /** At most one run per key is `running` at a time; the others stay `pending` in order. */
  concurrencyKey?: string;
  /** The run's id (default: derived from `idempotencyKey`, else a random UUID). */
  runId?: string;
  /** Cancels the run this long after its first start. */
  cancelAfterMs?: number;
  /** Cancels the run if it has not started this long after the trigger. */
  cancelIfPendingMs?: number;
}

export type BatchTriggerInput<TInput> = TInput | { input: TInput; options?: TriggerOptions };

export interface RunFilter {
  jobName?: string;
  status?: RunStatus;
  /** Default 100. */
  limit?: number;
  offset?: number;
}

/** A handle returned by `step.spawn`, for `step.join`. */
export interface SpawnHandle<TOutput = unknown> {
  runId: string;
  jobName: string;
  /** Type-level only: the child's output type. */
  readonly __output?: TOutput;
}

export interface StepLog {
  info(message: string, data?: unknown): void;
  warn(message: string, data?: unknown): void;
  error(message: string, data?: unknown): void;
}

/** What a job's `run(step, input)` receives. */
export interface StepContext {
  readonly runId: string;
  readonly jobName: string;
  /** Aborts when the run is cancelled, the attempt's lease is lost, or the runtime stops. */
  readonly signal: AbortSignal;
  /** Runs `fn` once for the run; its JSON result is stored and returned from then on. Repeated names get `#2`, `#3`. */
  run<T>(name: string, fn: () => T | Promise<T>, options?: { retry?: RetryPolicy }): Promise<T>;
  progress(current: number, total?: number, message?: string): void;
  readonly log: StepLog;
  sleep(name: string, ms: number): Promise<void>;
  sleepUntil(name: string, date: Date | number): Promise<void>;
  /** The payload of the next (or last kept) `emitEvent(name)`; a TimeoutError after `timeoutMs`. */
  awaitEvent<T = unknown>(name: string, options?: { timeoutMs?: number }): Promise<T>;
  emitEvent(name: string, payload?: unknown): Promise<void>;
  spawn<TOut>(name: string, job: JobHandle<string, any, TOut> | JobDefinition<string, any, TOut> | string, input: unknown, options?: TriggerOptions): Promise<SpawnHandle<TOut>>;
  join<TOut>(name: string, handle: SpawnHandle<TOut>): Promise<TOut>;
  /** The attempt is alive and needs `ms` more (default 30 s): its timeout moves. */
  heartbeat(ms?: number): Promise<void>;
}

export interface JobDefinition<TName extends string = string, TInput = unknown, TOutput = unknown> {
  readonly name: TName;
  readonly input?: Schema<TInput>;
  readonly output?: Schema<TOutput>;
  readonly retry?: RetryPolicy;
  readonly timeoutMs?: number;
  readonly run: (step: StepContext, input: TInput) => Promise<TOutput>;
}

/** Defines a job; `input`/`output` types come from the schemas or from `run`. */
export declare function defineJob<TName extends string, TInput = unknown, TOutput = unknown>(definition: {
  name: TName;
  input?: Schema<TInput>;
  output?: Schema<TOutput>;
  /** The default retry policy of the job's steps (none: a failing step fails at once). */
  retry?: RetryPolicy;
  /** Per-attempt timeout (default: the runtime's activityTimeoutMs); `step.heartbeat` extends it. */
  timeoutMs?: number;
  run: (step: StepContext, input: TInput) => Promise<TOutput>;
}): JobDefinition<TName, TInput, TOutput>;

export interface JobHandle<TName extends string = string, TInput = unknown, TOutput = unknown> {
  readonly name: TName;
  readonly definition: JobDefinition<TName, TInput, TOutput>;
  trigger(input: TInput, options?: TriggerOptions): Promise<Run<TOutput, TInput>>;
  /** Resolves with the output; rejects with RunFailedError when the run fails or is cancelled, TimeoutError after `timeout`. */
  triggerAndWait(input: TInput, options?: TriggerOptions & { timeout?: number }): Promise<{ id: string; output: TOutput }>;
  /** One store transaction for every run. */
  batchTrigger(inputs: BatchTriggerInput<TInput>[]): Promise<Run<TOutput, TInput>[]>;
  getRun(id: string): Promise<Run<TOutput, TInput> | null>;
  getRuns(filter?: Omit<RunFilter, 'jobName'>): Promise<Run<TOutput, TInput>[]>;
}

export type RunEventType =
  | 'run:trigger' | 'run:start' | 'run:complete' | 'run:fail' | 'run:cancel' | 'run:retry' | 'run:progress'
  | 'step:start' | 'step:complete' | 'step:fail' | 'log:write';

export interface RunEvent {
  type: RunEventType;
  runId: string;
  jobName: string;
  /** ISO 8601. */
  timestamp: string;
  input?: unknown;
  output?: unknown;
  error?: string;
  progress?: RunProgress;
  stepName?: string;
  attempt?: number;
  willRetry?: boolean;
  level?: 'info' | 'warn' | 'error';
  message?: string;
  data?: unknown;
}

export interface RunLogLine {
  seq: number;
  level: 'info' | 'warn' | 'error';
  message: string;
  data: unknown;
  stepName: string | null;
  createdAt: string;
}

export interface RunStep {
  name: string;
  state: 'done' | 'failed' | 'retrying' | 'sleeping' | 'waiting';
  attempts: number;
  output?: unknown;
  error?: { message: string; name?: string; code?: string };
  until?: string;
  event?: string;
  updatedAt: string;
}

export interface CreateRepriseOptions extends RuntimeOptions {
  /** `'sqlite:app.db'`, `'postgres://…'`, `':memory:'` (default), or a provider. */
  storage?: string | Provider;
  /** PostgreSQL schema (default: the provider's default). */
  schema?: string;
  /** `false`: a client-only app (it triggers and reads runs; other processes run them). */
  worker?: boolean;
  poolSize?: number;
  connectTimeoutMs?: number;
  synchronous?: 'normal' | 'full';
  unknownEventTtlMs?: number;
}

export declare class App {
  readonly provider: Provider;
  readonly client: Client;
  /** null for a client-only app. */
  readonly runtime: Runtime | null;
  register<T extends Record<string, JobDefinition<string, any, any>>>(jobs: T): {
    [K in keyof T]: T[K] extends JobDefinition<infer N, infer I, infer O> ? JobHandle<N, I, O> : never;
  };
  getJob(name: string): JobHandle<string, unknown, unknown> | undefined;
  start(): Promise<void>;
  /** Waits up to `timeoutMs` (10 s) for running attempts, then stops. */
  stop(timeoutMs?: number): Promise<void>;
  getRun(id: string): Promise<Run | null>;
  getRuns(filter?: RunFilter): Promise<Run[]>;
  waitForRun(id: string, options?: { timeoutMs?: number }): Promise<Run>;
  retry(id: string): Promise<void>;
  cancel(id: string, reason?: string): Promise<boolean>;
  deleteRun(id: string): Promise<void>;
  getLogs(runId: string, options?: { afterSeq?: number; limit?: number }): Promise<RunLogLine[]>;
  getSteps(runId: string): Promise<RunStep[]>;
  /** Wakes every run awaiting `name`; resolves to how many. The payload is kept until `clearEvent`. */
  emitEvent(name: string, payload?: unknown): Promise<number>;
  clearEvent(name: string): Promise<boolean>;
  on(type: RunEventType, fn: (event: RunEvent) => void): () => void;
  subscribe(runId: string, options?: { intervalMs?: number }): ReadableStream<RunEvent>;
}

export declare function createReprise(options?: CreateRepriseOptions): Promise<App>;

/** From `triggerAndWait`: the run failed or was cancelled. */
export declare class RunFailedError extends RepriseError {
  readonly code: 'ERR_RUN_FAILED';
  readonly runId: string;
  readonly status: RunStatus;
  readonly error: string | undefined;
}
