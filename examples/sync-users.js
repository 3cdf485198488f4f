'use strict';
// Durably's quick start in reprise: a `sync-users` job in two persisted steps (fetch the
// users, save them), with progress the caller can read, triggered fire-and-forget, awaited
// with a timeout, and deduplicated by an idempotency key. Run: node examples/sync-users.js
const crypto = require('node:crypto');
const { SqliteProvider, Client, Runtime, defineActivity } = require('..'); // require('reprise') in your project
// not in reprise yet: input/output schemas (zod), concurrencyKey, a 'pending' run status (a started run is 'Running'), structured fields in step.log

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

// Steps: results are persisted; on resume they come from the store instead of running again.
const fetchUsers = defineActivity('sync-users/fetch-users', async (ctx, orgId) => api.fetchUsers(orgId));
const saveToDb = defineActivity('sync-users/save-to-db', async (ctx, users) => {
  await db.upsertUsers(users);
});

// The job: step.run is `yield* ctx.activity`, step.progress is ctx.setCustomStatus, step.log is ctx.trace*.
function* syncUsersJob(ctx, payload) {
  ctx.traceInfo(`syncing users of ${payload.orgId}`);
  const users = yield* ctx.activity(fetchUsers, payload.orgId);
  ctx.setCustomStatus({ current: 1, total: 2, message: `fetched ${users.length} users` });
  yield* ctx.activity(saveToDb, users);
  ctx.setCustomStatus({ current: 2, total: 2, message: 'saved' });
  return { syncedCount: users.length };
}

async function main() {
  const provider = await SqliteProvider.inMemory(); // SqliteProvider.open('sqlite:local.db') for a file
  const client = new Client(provider);
  const runtime = new Runtime(provider, { pollIntervalMs: 1000 }); // Durably's pollingInterval
  runtime.registerActivity(fetchUsers).registerActivity(saveToDb);
  runtime.registerOrchestration('sync-users', syncUsersJob);

  const syncUsers = {
    // Basic trigger (fire and forget): the run id is ours to choose.
    async trigger(input, options = {}) {
      const id = options.idempotencyKey ?? crypto.randomUUID();
      const created = await client.startOrchestration(id, 'sync-users', input);
      return { id, created, status: (await client.getStatus(id)).status };
    },
    // Trigger and wait for completion (rejects with a TimeoutError after `timeout` ms).
    async triggerAndWait(input, options = {}) {
      const { id } = await this.trigger(input, options);
      const run = await client.waitForOrchestration(id, options.timeout);
      if (run.status === 'Failed') throw new Error(`sync-users ${id} failed: ${run.error}`);
      return { id, output: run.output, progress: run.customStatus };
    },
  };

  // Initialize: starts the worker (the schema is created when the store is opened).
  await runtime.start();

  const run = await syncUsers.trigger({ orgId: 'org_123' });
  console.log(run.status); // "Running" (Durably: "pending"), or "Completed" if it was that quick

  const result = await syncUsers.triggerAndWait({ orgId: 'org_123' }, { timeout: 5000 });
  console.log(result.output.syncedCount); // 3
  console.log(result.progress.message); // "saved"

  // With an idempotency key: the second trigger finds the first run and starts nothing.
  const first = await syncUsers.trigger({ orgId: 'org_123' }, { idempotencyKey: 'webhook-event-456' });
  const again = await syncUsers.trigger({ orgId: 'org_123' }, { idempotencyKey: 'webhook-event-456' });
  console.log(`idempotent: created ${first.created}, then ${again.created}`);

  await client.waitForOrchestration(run.id, 5000);
  await client.waitForOrchestration('webhook-event-456', 5000);
  console.log(`users in db: ${db.users.size}`);

  await runtime.shutdown();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
