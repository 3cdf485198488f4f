'use strict';
// A worker process for the PostgreSQL benchmark: runs 'Stamp' and 'One' until SIGTERM.
const { PostgresProvider, Runtime } = require('..');

const [url, schema] = process.argv.slice(2);

(async () => {
  const provider = await PostgresProvider.connectWithSchema(url, schema);
  const runtime = new Runtime(provider, { keepAlive: true, orchestrationConcurrency: 500, workerConcurrency: 500 });
  runtime.registerActivity('Work', async (ctx, n) => n + 1);
  runtime.registerActivity('Now', async () => Date.now());
  // The first thing the orchestration does is note when this process got it.
  runtime.registerOrchestration('Stamp', function* (ctx) {
    return yield ctx.scheduleActivity('Now');
  });
  runtime.registerOrchestration('One', function* (ctx, n) {
    return yield ctx.scheduleActivity('Work', n);
  });
  await runtime.start();
  process.stdout.write('ready\n');
  process.on('SIGTERM', async () => {
    await runtime.shutdown(2000);
    process.exit(0);
  });
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
