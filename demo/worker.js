'use strict';
// The demo's worker: runs (or resumes) a five-step workflow and prints what it does. The
// started runtime keeps the process alive, so it shuts down once the workflow is done; on
// SIGTERM it finishes the step in flight and exits with 143 (reprise's signal handling).
const { SqliteProvider, Client, Runtime } = require('..');

const [db, id] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

(async () => {
  const provider = await SqliteProvider.open(db);
  const client = new Client(provider);
  const runtime = new Runtime(provider);
  runtime.registerActivity('Step', async (ctx, n) => {
    console.log(`step ${n} started`);
    await sleep(300);
    console.log(`step ${n} done`);
    return n * n;
  });
  runtime.registerOrchestration('Pipeline', function* (ctx) {
    const squares = [];
    for (let n = 1; n <= 5; n++) squares.push(yield ctx.scheduleActivity('Step', n));
    return squares;
  });
  await runtime.start();
  await client.startOrchestration(id, 'Pipeline'); // a no-op when it already exists
  const result = await client.waitForOrchestration(id, 60000);
  console.log(`workflow ${result.status}: ${JSON.stringify(result.output)}`);
  await runtime.shutdown();
})();
