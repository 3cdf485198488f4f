'use strict';
// Durably's quick start in reprise: a `sync-users` job in two checkpointed steps (fetch the
// users, save them), with an input and an output schema, progress and structured logs,
// triggered fire-and-forget, awaited with a timeout, deduplicated by an idempotency key and
// serialized by a concurrency key. Run: node examples/sync-users.js
const { createReprise, defineJob } = require('..'); // require('reprise') in your project

// Stand-ins for the organisation's API and our database.
const api = {
  async fetchUsers(orgId) {
    return [1, 2, 3].map((n) => ({ id: `${orgId}-user-${n}`, name: `User ${n}` }));
  },
};
const db = {
  users: new Map(),
  async upsertUsers(users) {
    for (const user of users) this.users.set(user.id, user);
  },
};

// Schemas are anything with parse(value): zod's z.object({ orgId: z.string() }) works as is.
const orgInput = {
  parse(value) {
    if (!value || typeof value.orgId !== 'string') throw new Error('orgId must be a string');
    return { orgId: value.orgId };
  },
};
const syncedOutput = {
  parse(value) {
    if (!Number.isInteger(value && value.syncedCount)) throw new Error('syncedCount must be an integer');
    return value;
  },
};

const syncUsersJob = defineJob({
  name: 'sync-users',
  input: orgInput,
  output: syncedOutput,
  run: async (step, payload) => {
    // Step 1: fetch users (the result is stored; after a crash it is not fetched again)
    const users = await step.run('fetch-users', () => api.fetchUsers(payload.orgId));
    step.progress(1, 2, `fetched ${users.length} users`);
    step.log.info('fetched users', { orgId: payload.orgId, count: users.length });

    // Step 2: save them
    await step.run('save-to-db', () => db.upsertUsers(users));
    step.progress(2, 2, 'saved');

    return { syncedCount: users.length };
  },
});

async function main() {
  // 'sqlite:local.db' for a file, 'postgres://…' for PostgreSQL; ':memory:' here.
  const app = await createReprise({ storage: ':memory:', pollIntervalMs: 1000 }); // Durably's pollingInterval
  const { syncUsers } = app.register({ syncUsers: syncUsersJob });
  let completed = 0;
  const off = app.on('run:complete', () => completed++); // also run:start, step:complete, log:write, …
  await app.start();

  // Basic trigger (fire and forget)
  const run = await syncUsers.trigger({ orgId: 'org_123' });
  console.log(run.status); // "pending"

  // Wait for completion
  const result = await syncUsers.triggerAndWait({ orgId: 'org_123' }, { timeout: 5000 });
  console.log(result.output.syncedCount); // 3
  console.log((await app.getRun(result.id)).progress); // { current: 2, total: 2, message: 'saved' }

  // With an idempotency key: the second trigger returns the first run
  const first = await syncUsers.trigger({ orgId: 'org_123' }, { idempotencyKey: 'webhook-event-456' });
  const again = await syncUsers.trigger({ orgId: 'org_123' }, { idempotencyKey: 'webhook-event-456' });
  console.log(`idempotent: ${first.id === again.id}`);

  // With a concurrency key: runs of one org run one at a time, in trigger order
  const batch = await syncUsers.batchTrigger([
    { input: { orgId: 'org_9' }, options: { concurrencyKey: 'org_9' } },
    { input: { orgId: 'org_9' }, options: { concurrencyKey: 'org_9' } },
  ]);

  // Bad input is refused before anything is stored
  await syncUsers.trigger({ org: 1 }).catch((error) => console.log(`refused: ${error.message}`));

  for (const { id } of [run, first, ...batch]) await app.waitForRun(id);
  off();
  console.log(`users in db: ${db.users.size}; runs completed here: ${completed}`);
  const logs = await app.getLogs(run.id);
  console.log(`log: [${logs[0].level}] ${logs[0].message} ${JSON.stringify(logs[0].data)}`);
  console.log(`completed runs: ${(await app.getRuns({ jobName: 'sync-users', status: 'completed' })).length}`);

  await app.stop();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
