// Type tests for the jobs API in index.d.ts: `tsc --noEmit -p __test__` must pass, and every
// `@ts-expect-error` line must stay an error.
import { createReprise, defineJob, RunFailedError, Schema, StepContext, TimeoutError } from 'reprise';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(_ok: T): void {}

// A schema is anything with parse(value): zod's shape, without zod.
const orgInput: Schema<{ orgId: string }> = {
  parse(value: unknown) {
    if (typeof value !== 'object' || value === null || typeof (value as { orgId?: unknown }).orgId !== 'string') throw new Error('orgId must be a string');
    return value as { orgId: string };
  },
};
const countOutput: Schema<{ syncedCount: number }> = { parse: (v: unknown) => v as { syncedCount: number } };

// Input and output inferred from the schemas.
const syncUsers = defineJob({
  name: 'sync-users',
  input: orgInput,
  output: countOutput,
  run: async (step, input) => {
    expectType<Equal<typeof input, { orgId: string }>>(true);
    const users = await step.run('fetch', async () => [{ id: `${input.orgId}-1` }]);
    expectType<Equal<typeof users, { id: string }[]>>(true);
    step.progress(1, 2, 'fetched');
    step.log.info('fetched', { count: users.length });
    await step.sleep('pause', 10);
    await step.sleepUntil('later', new Date());
    const approval = await step.awaitEvent<{ by: string }>('approved', { timeoutMs: 1000 });
    expectType<Equal<typeof approval, { by: string }>>(true);
    await step.emitEvent('synced', { orgId: input.orgId });
    await step.heartbeat(5000);
    const aborted: boolean = step.signal.aborted;
    void aborted;
    return { syncedCount: users.length };
  },
});

// Input and output inferred from `run` alone.
const research = defineJob({
  name: 'research',
  run: async (step: StepContext, params: { query: string }) => {
    const sources = await step.run('find-sources', () => ['a', 'b']);
    return { summary: params.query, sources };
  },
});

const child = defineJob({ name: 'child', run: async (_step, n: number) => n * 2 });
const parent = defineJob({
  name: 'parent',
  run: async (step) => {
    const handle = await step.spawn('double', child, 21);
    const doubled = await step.join('double', handle);
    expectType<Equal<typeof doubled, number>>(true);
    return doubled;
  },
});

async function main(): Promise<void> {
  const app = await createReprise({ storage: 'sqlite:app.db', pollIntervalMs: 100 });
  const jobs = app.register({ syncUsers, research, child, parent });
  await app.start();

  const run = await jobs.syncUsers.trigger({ orgId: 'org_1' }, { idempotencyKey: 'k', concurrencyKey: 'org_1' });
  expectType<Equal<typeof run.status, 'pending' | 'running' | 'completed' | 'failed' | 'cancelled'>>(true);
  // @ts-expect-error: the input type comes from the schema
  await jobs.syncUsers.trigger({ org: 1 });
  // @ts-expect-error: unknown trigger option
  await jobs.syncUsers.trigger({ orgId: 'x' }, { idempotency: 'k' });

  const { id, output } = await jobs.syncUsers.triggerAndWait({ orgId: 'org_2' }, { timeout: 5000 });
  expectType<Equal<typeof output, { syncedCount: number }>>(true);
  void id;
  const done = await jobs.research.triggerAndWait({ query: 'consensus' });
  expectType<Equal<typeof done.output, { summary: string; sources: string[] }>>(true);

  const batch = await jobs.research.batchTrigger([{ query: 'a' }, { input: { query: 'b' }, options: { idempotencyKey: 'b' } }]);
  const firstOutput = batch[0].output;
  expectType<Equal<typeof firstOutput, { summary: string; sources: string[] } | undefined>>(true);

  const again = await jobs.syncUsers.getRun(run.id);
  if (again?.status === 'completed') {
    const count: number | undefined = again.output?.syncedCount;
    void count;
  }
  const failed = await app.getRuns({ jobName: 'sync-users', status: 'failed', limit: 10, offset: 0 });
  for (const r of failed) await app.retry(r.id);
  await app.cancel(run.id);
  await app.deleteRun(run.id);
  const progress = (await app.getRun(run.id))?.progress;
  void progress?.current;
  const logs = await app.getLogs(run.id);
  void logs[0]?.level;
  const woken: number = await app.emitEvent('approved', { by: 'admin' });
  void woken;
  const off = app.on('run:complete', (e) => void e.output);
  off();
  // @ts-expect-error: not an event type
  app.on('run:finished', () => {});
  const reader = app.subscribe(run.id).getReader();
  const next = await reader.read();
  if (!next.done) void next.value.type;
  const handle = app.getJob('sync-users');
  void handle;

  try {
    await jobs.parent.triggerAndWait(undefined);
  } catch (error) {
    if (error instanceof RunFailedError) void error.runId;
    if (error instanceof TimeoutError) void error.code;
  }
  await app.stop(5000);

  const clientOnly = await createReprise({ storage: 'postgres://localhost/app', schema: 'jobs', worker: false });
  void clientOnly.runtime;
}
void main;
