'use strict';
// durable's quick start in reprise: a research task in three checkpointed steps. Each step's
// result is stored when it finishes, so when a later step fails and is retried (or the
// process dies and another one resumes), the earlier steps are not run again.
// Run: node examples/research-task.js
const { SqliteProvider, Client, Runtime, defineActivity } = require('..'); // require('reprise') in your project
// not in reprise yet: inline step closures (ctx.step(name, fn)) and named queues; a step is a registered activity and a runtime serves every orchestration of its store

const runs = { 'find-sources': 0, analyze: 0, summarize: 0 };

// Phase 1: find relevant sources
const findSources = defineActivity('find-sources', async () => {
  runs['find-sources'] += 1;
  return ['https://example.com/article1', 'https://example.com/article2'];
});

// Phase 2: analyze the sources
const analyze = defineActivity('analyze', async (ctx, sources) => {
  runs.analyze += 1;
  return `Key findings from ${sources.length} sources...`;
});

// Phase 3: generate the summary; its first attempt fails, as if the model timed out.
const summarize = defineActivity('summarize', async (ctx, { query, analysis }) => {
  runs.summarize += 1;
  if (ctx.attempt === 1) throw new Error('summarizer timed out');
  return `Research summary for '${query}': ${analysis}`;
});

function* research(ctx, params) {
  const sources = yield* ctx.activity(findSources);
  const analysis = yield* ctx.activity(analyze, sources);
  const summary = yield* ctx.activityWithRetry(summarize, { query: params.query, analysis }, { maxAttempts: 3, initialDelayMs: 10 });
  return { summary, sources };
}

async function main() {
  // durable runs on PostgreSQL; reprise too (PostgresProvider.connect(url)), or on SQLite as here.
  const provider = await SqliteProvider.inMemory();
  const client = new Client(provider);

  // Register the task
  const runtime = new Runtime(provider);
  runtime.registerActivity(findSources).registerActivity(analyze).registerActivity(summarize);
  runtime.registerOrchestration('research', research);

  // Spawn a task
  const taskId = 'research-1';
  await client.startOrchestration(taskId, 'research', { query: 'distributed systems consensus algorithms' });
  console.log(`Spawned task: ${taskId}`);

  // Start a worker to process tasks
  await runtime.start();
  const result = await client.waitForOrchestration(taskId);
  console.log(JSON.stringify(result.output, null, 2));

  const steps = (await client.readStoredHistory(taskId)).filter((e) => e.kind === 'ActivityCompleted').length;
  console.log(`checkpointed steps: ${steps}; runs: ${JSON.stringify(runs)}`);

  await runtime.shutdown();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
