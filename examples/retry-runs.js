'use strict';
// After Durably's "Retry Failed Runs" and event subscriptions: a run fails on its second
// step, is retried from its last good point (the first step does not run again), and its
// lifecycle is followed with runtime.events() and client.watch().
const { SqliteProvider, Client, Runtime } = require('..');

// A stand-in API that rate-limits the first save.
const runs = { fetch: 0, save: 0 };
let rateLimited = true;

async function main() {
  const provider = await SqliteProvider.inMemory();
  const client = new Client(provider);
  const runtime = new Runtime(provider);

  runtime.registerActivity('fetch', async (ctx, org) => {
    runs.fetch += 1;
    return [`${org}-ada`, `${org}-bob`, `${org}-cy`];
  });
  runtime.registerActivity('save', async (ctx, users) => {
    runs.save += 1;
    if (rateLimited) throw new Error('API rate limited');
    return { saved: users.length };
  });
  runtime.registerOrchestration('sync-users', function* (ctx, org) {
    const users = yield ctx.scheduleActivity('fetch', org);
    return yield ctx.scheduleActivity('save', users);
  });
  await runtime.start();

  // Like durably.on('run:start' | 'run:fail' | 'run:retry' | 'run:complete', ...).
  const heard = [];
  const listening = (async () => {
    const types = ['instanceStarted', 'instanceFailed', 'instanceRetried', 'instanceCompleted'];
    for await (const e of runtime.events({ types })) {
      if (e.type === 'instanceStarted') heard.push(`Started: ${e.instanceId}`);
      if (e.type === 'instanceFailed') heard.push(`Failed: ${e.error.message}`);
      if (e.type === 'instanceRetried') heard.push(`Retried: ${e.instanceId}`);
      if (e.type === 'instanceCompleted') {
        heard.push(`Done: ${JSON.stringify(e.output)}`);
        break; // ends the subscription
      }
    }
  })();

  await client.startOrchestration('sync-org-1', 'sync-users', 'org-1');
  await client.waitForOrchestration('sync-org-1');
  console.log('steps run:', JSON.stringify(runs));

  rateLimited = false; // the API recovered
  await client.retryInstance('sync-org-1'); // like durably.retry(runId)
  await client.waitForOrchestration('sync-org-1');
  console.log('steps run:', JSON.stringify(runs));

  // The whole story of the run, from its history (works from any process).
  const story = [];
  for await (const e of client.watch('sync-org-1')) {
    if (e.type.startsWith('activity')) story.push(`${e.type}#${e.task}`);
  }
  console.log(story.join(' '));

  await listening;
  console.log(heard.join('\n'));
  await runtime.shutdown();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
