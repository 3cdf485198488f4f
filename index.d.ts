// Type definitions for reprise.

/** Instance status as the client sees it. A cancelled instance is `Failed` with `error` starting `canceled:`. */
export type OrchestrationStatusName = 'NotFound' | 'Running' | 'Completed' | 'Failed';

export interface OrchestrationStatus<TOutput = unknown, TCustom = unknown> {
  status: OrchestrationStatusName;
  /** The orchestration's return value, parsed from JSON (`undefined` became `null`). */
  output: TOutput | null;
  error: string | null;
  /**
   * Stable code of the failure: the thrown error's `code` if it had one, else
   * `ERR_ORCHESTRATION_FAILED`; or one of the engine's: `ERR_NONDETERMINISM`,
   * `ERR_NOT_REGISTERED`, `ERR_CANCELED`, `ERR_POISON`, `ERR_INVALID_ARGUMENT`.
   */
  errorCode: string | null;
  customStatus: TCustom | null;
  /** Grows by one with every `setCustomStatus`. */
  customStatusVersion: number;
}

export interface HistoryEvent {
  /** Dense per execution, from 1. */
  eventId: number;
  kind:
    | 'ExecutionStarted' | 'ActivityScheduled' | 'ActivityCompleted' | 'ActivityFailed'
    | 'TimerCreated' | 'TimerFired' | 'EventWaitStarted' | 'EventRaised'
    | 'ChildScheduled' | 'ChildCompleted' | 'ChildFailed' | 'DetachedStarted'
    | 'TaskCanceled' | 'CustomStatusSet' | 'CancelRequested'
    | 'ExecutionCompleted' | 'ExecutionFailed' | 'ContinuedAsNew';
  taskId: number | null;
  /** The turn's timestamp, epoch ms. */
  timestamp: number;
  data: Record<string, unknown>;
}

export interface SqliteOpenOptions {
  /** `'normal'` (default; survives a process crash) or `'full'` (fsync every commit; survives power loss). */
  synchronous?: 'normal' | 'full';
}

/** Embedded storage on one SQLite file. */
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
  /** Connects to `postgres://user:password@host:port/database` on the `public` schema, creating the tables if needed. */
  static connect(url: string, options?: PostgresConnectOptions): Promise<PostgresProvider>;
  /** Like `connect`, on `schema` (1 to 63 letters, digits or underscores; created if missing). */
  static connectWithSchema(url: string, schema: string, options?: PostgresConnectOptions): Promise<PostgresProvider>;
}

export type Provider = SqliteProvider | PostgresProvider;

export interface RetryPolicy {
  maxAttempts: number;
  /** Default `'exponential'`. */
  backoff?: 'fixed' | 'exponential' | 'linear';
  /** Delay before the first retry; default 1000. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Per attempt. */
  timeoutMs?: number;
  /** Randomize each delay between half and all of it. */
  jitter?: boolean;
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

export declare class OrchestrationContext {
  private constructor();
  readonly instanceId: string;
  readonly executionId: number;
  readonly orchestrationName: string;
  readonly orchestrationVersion: string;
  /** True while the code re-runs steps that history already holds. */
  readonly isReplaying: boolean;
  scheduleActivity<T = any>(name: string, input?: unknown): Task<T>;
  scheduleActivityWithRetry<T = any>(name: string, input: unknown, retryPolicy: RetryPolicy): Task<T>;
  /** Yields `null` after `delayMs`. */
  scheduleTimer(delayMs: number): Task<null>;
  waitForEvent<T = any>(eventName: string): Task<T>;
  scheduleSubOrchestration<T = any>(name: string, input?: unknown, options?: { version?: string }): Task<T>;
  scheduleSubOrchestrationWithId<T = any>(name: string, instanceId: string, input?: unknown, options?: { version?: string }): Task<T>;
  /** Fire-and-forget; yields the new instance's id. */
  startOrchestration(name: string, instanceId: string, input?: unknown, options?: { version?: string }): Task<string>;
  all<const Ts extends readonly Task<any>[]>(tasks: Ts): Task<{ [K in keyof Ts]: AllResult<TaskValue<Ts[K]>> }>;
  race<const Ts extends readonly Task<any>[]>(...tasks: Ts): Task<{ index: number; value: TaskValue<Ts[number]> }>;
  race<const Ts extends readonly Task<any>[]>(tasks: Ts): Task<{ index: number; value: TaskValue<Ts[number]> }>;
  /** The turn's timestamp, epoch ms. */
  utcNow(): Task<number>;
  newGuid(): Task<string>;
  continueAsNew(input?: unknown): Task<never>;
  continueAsNewVersioned(input: unknown, version: string): Task<never>;
  setCustomStatus(value: unknown): void;
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
  readonly activityName: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Fires when the orchestration stops waiting (race lost, cancelled), on timeout, when the activity's lease is lost, or at shutdown. */
  readonly signal: AbortSignal;
  traceInfo(message: string): void;
  traceWarn(message: string): void;
  traceError(message: string): void;
  traceDebug(message: string): void;
}

export type ActivityFunction<I = any, O = any> = (ctx: ActivityContext, input: I) => O | Promise<O>;
export type OrchestrationFunction<I = any, O = any> = (ctx: OrchestrationContext, input: I) => Generator<Task<any>, O, any>;

export interface RuntimeOptions {
  /** Turns in flight at once (default 100). */
  orchestrationConcurrency?: number;
  /** Activities in flight at once (default 100). */
  workerConcurrency?: number;
  /** Live generators kept between turns (default 1000); 0 replays the whole history every turn. */
  generatorCacheSize?: number;
  /** Lease on an instance or activity, renewed while work runs (default 30000). */
  lockTimeoutMs?: number;
  /** Fallback poll for work committed by other processes (default 1000). */
  pollIntervalMs?: number;
  /** Deliveries after which a message or activity is poisoned (default 10). */
  maxDeliveries?: number;
  /** How long work for an unregistered name waits for code that knows it (default 10000). */
  notRegisteredGraceMs?: number;
  /** Longest a single turn may take in the driver (default 60000). */
  maxTurnMs?: number;
  /** An activity attempt running longer fails with ERR_TIMEOUT (default 300000). */
  activityTimeoutMs?: number;
  /** Keep Node alive while the runtime runs (for worker processes). Default false. */
  keepAlive?: boolean;
}

export type MetricsSnapshot = Record<string, number>;

export declare class Runtime {
  constructor(provider: Provider, options?: RuntimeOptions);
  registerActivity<I = any, O = any>(name: string, fn: ActivityFunction<I, O>): this;
  registerOrchestration<I = any, O = any>(name: string, fn: OrchestrationFunction<I, O>): this;
  registerOrchestrationVersioned<I = any, O = any>(name: string, version: string, fn: OrchestrationFunction<I, O>): this;
  start(): Promise<void>;
  /** Resolves once in-flight work drained, or at the deadline with the rest aborted and abandoned (default 30000). */
  shutdown(timeoutMs?: number): Promise<void>;
  metricsSnapshot(): MetricsSnapshot;
}

export declare class Client {
  constructor(provider: Provider);
  /** Resolves `true` if this call created the instance; an existing id changes nothing. */
  startOrchestration(instanceId: string, orchestrationName: string, input?: unknown, options?: { version?: string }): Promise<boolean>;
  raiseEvent(instanceId: string, eventName: string, data?: unknown): Promise<void>;
  /** Resolves `true` if a cancel was requested; `false` on a finished or unknown instance. */
  cancelInstance(instanceId: string, reason?: string): Promise<boolean>;
  getStatus<TOutput = unknown>(instanceId: string): Promise<OrchestrationStatus<TOutput>>;
  /** Rejects with a TimeoutError after `timeoutMs` (default 30000). */
  waitForOrchestration<TOutput = unknown>(instanceId: string, timeoutMs?: number): Promise<OrchestrationStatus<TOutput>>;
  readExecutionHistory(instanceId: string, executionId?: number): Promise<HistoryEvent[]>;
}

export declare class RepriseError extends Error {
  readonly code: string;
}
export declare class InvalidArgumentError extends RepriseError { readonly code: 'ERR_INVALID_ARGUMENT'; }
export declare class InvalidStateError extends RepriseError { readonly code: 'ERR_INVALID_STATE'; }
export declare class TimeoutError extends RepriseError { readonly code: 'ERR_TIMEOUT'; }
/** For matching `errorCode === 'ERR_NONDETERMINISM'` failures by class name in your own code. */
export declare class NondeterminismError extends RepriseError { readonly code: 'ERR_NONDETERMINISM'; }
/** For matching `errorCode === 'ERR_NOT_REGISTERED'` failures by class name in your own code. */
export declare class NotRegisteredError extends RepriseError { readonly code: 'ERR_NOT_REGISTERED'; }
export declare class StoreError extends RepriseError {}
/** An activity or sub-orchestration failed; thrown into the orchestration at its `yield`. `code` is the original error's code or `ERR_TASK_FAILED`. */
export declare class TaskFailedError extends RepriseError {
  readonly originalName?: string;
  /** Set when the failed task won a race: its position among the race's tasks. */
  index?: number;
}
