// Type tests for index.d.ts: `tsc --noEmit -p __test__` must pass. Every `@ts-expect-error`
// line must stay an error (tsc fails if one compiles), so they pin down what the typings reject.
import {
  ActivityContext,
  ActivityDefinition,
  Client,
  defineActivity,
  DeleteInstanceResult,
  FinishedStatus,
  HistoryEventKind,
  initTracing,
  InvalidArgumentError,
  LifecycleEvent,
  LogFormat,
  LogLevel,
  MetricsSnapshot,
  NotFoundError,
  OrchestrationContext,
  OrchestrationFunction,
  OrchestrationStatus,
  Provider,
  RepriseError,
  RetryPolicy,
  Runtime,
  RuntimeOptions,
  SqliteProvider,
  Task,
  TaskFailedError,
  TimeoutError,
  TracingOptions,
} from 'reprise';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T>(_value: T): void {}
function assertEqual<A, B>(_proof: Equal<A, B>): void {}

interface User {
  id: string;
  name: string;
}

// Activity definitions: input from the parameter annotation, result from what the function resolves to.
const getUser = defineActivity('GetUser', async (ctx, id: string): Promise<User> => {
  expectType<ActivityContext>(ctx);
  expectType<AbortSignal>(ctx.signal);
  expectType<number>(ctx.attempt);
  return { id, name: 'Ada' };
});
const countUsers = defineActivity('CountUsers', async () => 3);
const addOne = defineActivity('AddOne', (_ctx, n: number) => n + 1); // synchronous works too
const greet = defineActivity('Greet', async (_ctx, input: { name: string; loud?: boolean }) => `Hello, ${input.name}!`);
const maybe = defineActivity('Maybe', async (_ctx, note: string | undefined) => note ?? 'none');

assertEqual<typeof getUser, ActivityDefinition<string, User>>(true);
assertEqual<typeof countUsers, ActivityDefinition<void, number>>(true);
assertEqual<typeof addOne, ActivityDefinition<number, number>>(true);
expectType<string>(getUser.name);

// @ts-expect-error: the name must be a string
defineActivity(42, async () => 1);
// @ts-expect-error: the function is required
defineActivity('NoFn');

const workflow = function* (ctx: OrchestrationContext, input: { userId: string }) {
  // yield* infers each result from its definition.
  const user = yield* ctx.activity(getUser, input.userId);
  assertEqual<typeof user, User>(true);
  const count = yield* ctx.activity(countUsers);
  assertEqual<typeof count, number>(true);
  const next = yield* ctx.activity(addOne, count);
  assertEqual<typeof next, number>(true);
  const hello = yield* ctx.activity(greet, { name: user.name });
  assertEqual<typeof hello, string>(true);
  const none = yield* ctx.activity(maybe);
  assertEqual<typeof none, string>(true);
  const retried = yield* ctx.activityWithRetry(getUser, 'u2', { maxAttempts: 3, backoff: 'linear', initialDelayMs: 10 });
  assertEqual<typeof retried, User>(true);

  // @ts-expect-error: GetUser takes a string id, not a number
  yield* ctx.activity(getUser, 42);
  // @ts-expect-error: GetUser's input is required
  yield* ctx.activity(getUser);
  // @ts-expect-error: Greet's input needs `name`
  yield* ctx.activity(greet, { loud: true });
  // @ts-expect-error: the retry variant checks its input too
  yield* ctx.activityWithRetry(getUser, 7, { maxAttempts: 2 });
  // @ts-expect-error: a name is not a definition (ctx.scheduleActivity takes names)
  yield* ctx.activity('GetUser', 'u1');

  // @ts-expect-error: the result is a User, not a number
  const wrong: number = yield* ctx.activity(getUser, 'u3');
  // @ts-expect-error: User has no `email`
  user.email;
  // @ts-expect-error: CountUsers resolves to a number
  count.toUpperCase();

  // scheduleActivity<T> names the type of an activity called by name.
  const named = yield* ctx.scheduleActivity<User>('GetUser', 'u5');
  assertEqual<typeof named, User>(true);

  const timer = yield* ctx.scheduleTimer(10);
  assertEqual<typeof timer, null>(true);
  const now = yield* ctx.utcNow();
  assertEqual<typeof now, number>(true);
  const id = yield* ctx.newGuid();
  assertEqual<typeof id, string>(true);

  const both = yield* ctx.all([ctx.activity(getUser, 'a'), ctx.activity(countUsers)]);
  const [first, second] = both;
  if ('ok' in first) assertEqual<typeof first.ok, User>(true);
  else expectType<string>(first.err);
  if ('ok' in second) assertEqual<typeof second.ok, number>(true);

  const winner = yield* ctx.race(ctx.activity(getUser, 'b'), ctx.scheduleTimer(1000));
  expectType<number>(winner.index);
  assertEqual<typeof winner.value, User | null>(true);
  // A race is a union discriminated by `index`: checking it narrows `value` (the guide's
  // approval pattern, with no `!`).
  const approval = yield* ctx.race(ctx.waitForEvent<{ by: string }>('approved'), ctx.scheduleTimer(24 * 3600 * 1000));
  assertEqual<typeof approval.index, 0 | 1>(true);
  if (approval.index === 1) {
    assertEqual<typeof approval.value, null>(true);
  } else {
    expectType<string>(approval.value.by);
  }
  // @ts-expect-error: before the check, value may be the timer's null
  approval.value.by;
  // @ts-expect-error: a race of two tasks has no index 2
  if (approval.index === 2) return;
  const listed = yield* ctx.race([ctx.scheduleActivity<number>('A'), ctx.waitForEvent<string>('B')]);
  if (listed.index === 0) assertEqual<typeof listed.value, number>(true);
  else assertEqual<typeof listed.value, string>(true);
  const tasks: Task<User>[] = ['x', 'y'].map((u) => ctx.activity(getUser, u));
  const anyOf = yield* ctx.race(tasks);
  assertEqual<typeof anyOf, { index: number; value: User }>(true);

  // @ts-expect-error: unknown retry option
  yield* ctx.activityWithRetry(getUser, 'u6', { maxAttempts: 3, retries: 2 });
  // @ts-expect-error: backoff is one of three names
  yield* ctx.scheduleActivityWithRetry('GetUser', 'u7', { maxAttempts: 3, backoff: 'random' });
  // @ts-expect-error: maxAttempts is required
  yield* ctx.scheduleActivityWithRetry('GetUser', 'u8', { backoff: 'fixed' });
  // @ts-expect-error: sub-orchestration options know only `version`
  yield* ctx.scheduleSubOrchestration('Child', {}, { versoin: '1.0.0' });

  ctx.setCustomStatus({ step: 'done' });
  ctx.traceInfo(`user ${user.name}`);
  return { user, count, wrong };
};

async function main(): Promise<void> {
  const provider = await SqliteProvider.open('sqlite:types.db', { synchronous: 'full' });
  const memory: SqliteProvider = await SqliteProvider.inMemory();
  // @ts-expect-error: synchronous is 'normal' or 'full'
  await SqliteProvider.open('sqlite:types.db', { synchronous: 'off' });
  // @ts-expect-error: providers come from open/inMemory
  new SqliteProvider();

  const options: RuntimeOptions = { workerConcurrency: 4, generatorCacheSize: 0, keepAlive: false };
  const runtime = new Runtime(provider, options);
  // @ts-expect-error: unknown Runtime option
  new Runtime(provider, { workers: 4 });
  // @ts-expect-error: keepAlive is a boolean
  new Runtime(memory, { keepAlive: 'yes' });
  expectType<Runtime>(new Runtime(memory).unref().ref());

  // Log options: the runtime's, and initTracing's.
  new Runtime(memory, { logFormat: 'json', logLevel: 'info', serviceName: 'billing', serviceVersion: '2.4.1' });
  // @ts-expect-error: logFormat is 'json', 'pretty' or 'compact'
  new Runtime(memory, { logFormat: 'xml' });
  // @ts-expect-error: logLevel is a level name
  new Runtime(memory, { logLevel: 'loud' });
  // @ts-expect-error: serviceName is a string
  new Runtime(memory, { serviceName: 1 });
  const tracing: TracingOptions = { logFile: '/tmp/reprise.log', logFormat: 'compact', logLevel: 'debug' };
  expectType<void>(initTracing(tracing));
  initTracing({ logFile: 'app.log' });
  // @ts-expect-error: logFile is required
  initTracing({ logLevel: 'info' });
  // @ts-expect-error: an unknown tracing option
  initTracing({ logFile: 'app.log', level: 'info' });
  assertEqual<LogFormat, 'compact' | 'pretty' | 'json'>(true);
  assertEqual<LogLevel, 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'off'>(true);

  runtime
    .registerActivity(getUser)
    .registerActivity(countUsers)
    .registerActivity('Plain', async (_ctx, input: { n: number }) => input.n * 2)
    .registerOrchestration('Workflow', workflow)
    .registerOrchestrationVersioned('Workflow', '2.0.0', workflow)
    // JavaScript style: a plain `yield` in an inline orchestration is `any`.
    .registerOrchestration('Plain', function* (ctx, input: { n: number }) {
      const doubled = yield ctx.scheduleActivity('Plain', input);
      expectType<number>(doubled);
      expectType<string>(doubled);
      return doubled;
    });
  // @ts-expect-error: a definition takes no second function
  runtime.registerActivity(getUser, async () => 1);
  // @ts-expect-error: orchestrations are generator functions, not async functions
  runtime.registerOrchestration('Async', async (_ctx: OrchestrationContext) => 1);
  // @ts-expect-error: a returned task is a forgotten `yield`
  runtime.registerOrchestration('ForgotYield', function* (ctx: OrchestrationContext) {
    yield ctx.scheduleTimer(1);
    return ctx.scheduleActivity<number>('Plain', { n: 1 });
  });
  // @ts-expect-error: a returned Promise cannot be stored
  runtime.registerOrchestrationVersioned('ReturnsPromise', '1.0.0', function* (ctx: OrchestrationContext) {
    yield ctx.scheduleTimer(1);
    return Promise.resolve(1);
  });
  // Plain data, and a yielded task's value, are fine.
  runtime.registerOrchestration('YieldsIt', function* (ctx: OrchestrationContext) {
    const n: number = yield* ctx.scheduleActivity<number>('Plain', { n: 1 });
    return { n };
  });
  await runtime.start();

  const client = new Client(provider);
  const created: boolean = await client.startOrchestration('wf-1', 'Workflow', { userId: 'u1' }, { version: '2.0.0' });
  // @ts-expect-error: unknown start option
  await client.startOrchestration('wf-2', 'Workflow', {}, { priority: 1 });

  const status: OrchestrationStatus<{ count: number }> = await client.getStatus('wf-1');
  // @ts-expect-error: output is null unless the instance completed
  status.output.count;
  if (status.status === 'Completed') {
    expectType<number>(status.output.count);
    assertEqual<typeof status.error, null>(true);
  } else if (status.status === 'Failed') {
    expectType<string>(status.error);
    expectType<string>(status.errorCode);
  }
  // @ts-expect-error: not a status ('NotFound' | 'Running' | 'Completed' | 'Failed')
  if (status.status === 'Pending') return;
  // @ts-expect-error: statuses are case-sensitive
  if (status.status === 'completed') return;

  const done: FinishedStatus<string> = await client.waitForOrchestration<string>('wf-1', 5000);
  // @ts-expect-error: waitForOrchestration resolves once the instance finished: never Running
  if (done.status === 'Running') return;
  if (done.status === 'Completed') expectType<string>(done.output);
  else expectType<string>(done.error);
  // @ts-expect-error: the output may be null (the instance may have failed)
  done.output.toUpperCase();

  expectType<boolean>(await client.cancelInstance('wf-1', 'no longer needed'));
  await client.raiseEvent('wf-1', 'Approved', { by: 'me' });
  const history = await client.readStoredHistory('wf-1');
  expectType<number>(history[0].eventId);
  // @ts-expect-error: not a history event kind
  if (history[0].kind === 'ActivityStarted') return;

  // Retry and follow.
  const retried: string[] = await client.retryInstance('wf-1');
  const controller = new AbortController();
  for await (const event of client.watch('wf-1', { since: 'now', signal: controller.signal, types: ['activityRetried'] })) {
    const typed: LifecycleEvent = event;
    expectType<number | undefined>(event.attempt);
    void typed;
  }
  // @ts-expect-error: since is 'start' or 'now'
  client.watch('wf-1', { since: 'later' });
  // @ts-expect-error: not an event type
  client.watch('wf-1', { types: ['activityExploded'] });
  for await (const event of runtime.events({ instanceId: 'wf-1', bufferSize: 100 })) {
    if (event.type === 'eventsDropped') expectType<number>(event.count);
    else expectType<string>(event.instanceId);
  }
  void retried;

  const metrics: MetricsSnapshot = runtime.metricsSnapshot();
  expectType<number>(metrics.turnsCommitted);
  await runtime.shutdown(1000);

  // Errors are classes with a stable `code`.
  try {
    await client.waitForOrchestration('wf-3', 10);
  } catch (error) {
    if (error instanceof TimeoutError) assertEqual<typeof error.code, 'ERR_TIMEOUT'>(true);
    if (error instanceof NotFoundError) assertEqual<typeof error.code, 'ERR_NOT_FOUND'>(true);
    if (error instanceof InvalidArgumentError) assertEqual<typeof error.code, 'ERR_INVALID_ARGUMENT'>(true);
    if (error instanceof TaskFailedError) expectType<string | undefined>(error.originalName);
    if (error instanceof RepriseError) expectType<string>(error.code);
  }
  const e = new InvalidArgumentError('x');
  expectType<RepriseError>(e);
  // @ts-expect-error: codes are fixed per class
  const badCode: 'ERR_TIMEOUT' = e.code;

  const policy: RetryPolicy = { maxAttempts: 5, backoff: 'exponential', initialDelayMs: 100, maxDelayMs: 2000, timeoutMs: 500, jitter: true };
  const task: Task<User> = ctxTask(getUser);
  void created; void policy; void task; void badCode;
}

// Plain `yield` outside registerOrchestration: a standalone generator has no contextual
// type, so under `strict` a `yield` whose result is used does not compile (TS7057)...
function* standalonePlain(ctx: OrchestrationContext) {
  yield ctx.scheduleTimer(10); // a result left unused is fine
  // @ts-expect-error: 'yield' expression implicitly results in an 'any' type
  const n = yield ctx.scheduleActivity('Count');
  return n;
}
// ...typed as an OrchestrationFunction it is `any` again, as inline; `yield*` needs neither.
const standaloneTyped: OrchestrationFunction<string, unknown> = function* (ctx, id) {
  const user = yield ctx.scheduleActivity('GetUser', id);
  expectType<number>(user);
  expectType<string>(user);
  return user;
};
function* standaloneStar(ctx: OrchestrationContext) {
  const n = yield* ctx.scheduleActivity<number>('Count');
  assertEqual<typeof n, number>(true);
  return n;
}
void standalonePlain; void standaloneTyped; void standaloneStar;

declare const someCtx: OrchestrationContext;
function ctxTask(def: typeof getUser): Task<User> {
  return someCtx.activity(def, 'x');
}

void main;

// duroxide-node's surface: key-value store, queues, sessions and tags, ActivityContext
// fields, typed variants, result shapes.
async function duroxideSurface(client: Client, runtime: Runtime) {
  runtime.registerActivity('Who', (ctx) => {
    expectType<string | null>(ctx.workerId);
    expectType<string | null>(ctx.sessionId);
    expectType<string | null>(ctx.tag());
    expectType<boolean>(ctx.isCancelled());
    expectType<Client>(ctx.getClient());
    expectType<string | null>(ctx.orchestrationName);
    return 1;
  });
  runtime.registerOrchestration('Kv', function* (ctx) {
    ctx.setValue('k', 1);
    expectType<string | null>(ctx.getValue('k'));
    expectType<Record<string, string>>(ctx.getKvAllValues());
    expectType<number>(ctx.pruneKvValuesUpdatedBefore(0));
    const other = yield* ctx.getValueFromInstance('x', 'k');
    assertEqual<typeof other, string | null>(true);
    const msg = yield* ctx.dequeueEventTyped<{ n: number }>('jobs');
    assertEqual<typeof msg, { n: number }>(true);
    const tagged = yield* ctx.scheduleActivity<number>('Who').withTag('gpu');
    assertEqual<typeof tagged, number>(true);
    yield* ctx.scheduleActivityOnSession<number>('Who', null, 's1');
    return other;
  });
  const removed = await client.deleteInstance('x', true);
  assertEqual<typeof removed, DeleteInstanceResult>(true);
  const count = await client.deleteInstance('x', { force: true });
  assertEqual<typeof count, number>(true);
  const ids = await client.listExecutions('x');
  assertEqual<typeof ids, number[]>(true);
  const details = await client.listExecutions('x', { details: true });
  expectType<number>(details[0].eventCount);
  expectType<string>(await client.waitForValue('x', 'k'));
  expectType<Record<string, string>>(await client.getKvAllValues('x'));
  expectType<number>((await client.getQueueDepths()).timerQueue);
  expectType<number>((await client.getSystemMetrics()).totalEvents);
  const history = await client.readExecutionHistory('x');
  expectType<HistoryEventKind>(history[0].kind);
  new Runtime({} as Provider, { orchestrationConcurrency: 0, workerTagFilter: { defaultAnd: ['gpu'] }, maxSessionsPerRuntime: 2 });
  // @ts-expect-error: not a tag filter
  new Runtime({} as Provider, { workerTagFilter: 'gpu' });
}
void duroxideSurface;
