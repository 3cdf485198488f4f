'use strict';
// durable's quick start in reprise: a research task in three checkpointed steps. Each step's
// result is stored when it finishes, so when a later step fails and is retried (or the
// process dies and another one resumes), the earlier steps are not run again. Then the same
// task spawns subtasks, joins them, sleeps and waits for an event, as durable's tasks do.
// Run: node examples/research-task.js
const { createReprise, defineJob } = require('..'); // require('reprise') in your project

const runs = { 'find-sources': 0, analyze: 0, summarize: 0 };

const research = defineJob({
  name: 'research',
  run: async (step, params) => {
    // Phase 1: find relevant sources (checkpointed)
    const sources = await step.run('find-sources', async () => {
      runs['find-sources'] += 1;
      return ['https://example.com/article1', 'https://example.com/article2'];
    });

    // Phase 2: analyze the sources (checkpointed)
    const analysis = await step.run('analyze', async () => {
      runs.analyze += 1;
      return `Key findings from ${sources.length} sources...`;
    });

    // Phase 3: generate the summary; its first attempt fails, as if the model timed out,
    // and is retried after a durable backoff (phases 1 and 2 are not run again).
    const summary = await step.run(
      'summarize',
      async () => {
        runs.summarize += 1;
        if (runs.summarize === 1) throw new Error('summarizer timed out');
        return `Research summary for '${params.query}': ${analysis}`;
      },
      { retry: { maxAttempts: 3, initialDelayMs: 10 } },
    );
    return { summary, sources };
  },
});

// Subtasks: spawn, do local work, join; then sleep and wait for an approval event.
const fetchPage = defineJob({ name: 'fetch-page', run: async (step, url) => step.run('fetch', () => `contents of ${url}`) });
const review = defineJob({
  name: 'review',
  run: async (step, { urls }) => {
    const handles = [];
    for (const url of urls) handles.push(await step.spawn(url, fetchPage, url));
    const local = await step.run('local-work', () => urls.length);
    const pages = [];
    for (const [i, handle] of handles.entries()) pages.push(await step.join(urls[i], handle));
    await step.sleep('cool-down', 50);
    const approval = await step.awaitEvent(`approved:${step.runId}`, { timeoutMs: 60000 });
    return { local, pages, approvedBy: approval.by };
  },
});

async function main() {
  // durable runs on PostgreSQL; reprise too (storage: 'postgres://…'), or on SQLite as here.
  const app = await createReprise({ storage: ':memory:' });
  const jobs = app.register({ research, fetchPage, review });
  await app.start();

  // Spawn a task
  const { id } = await jobs.research.trigger({ query: 'distributed systems consensus algorithms' }, { runId: 'research-1' });
  console.log(`Spawned task: ${id}`);
  const done = await app.waitForRun(id);
  console.log(JSON.stringify(done.output, null, 2));
  console.log(`steps: ${(await app.getSteps(id)).map((s) => `${s.name}=${s.state}`).join(', ')}; runs: ${JSON.stringify(runs)}`);

  const reviewRun = await jobs.review.trigger({ urls: ['https://example.com/a', 'https://example.com/b'] });
  setTimeout(() => app.emitEvent(`approved:${reviewRun.id}`, { by: 'admin' }), 200);
  const reviewed = await app.waitForRun(reviewRun.id, { timeoutMs: 10000 });
  console.log(`review: ${JSON.stringify(reviewed.output)}`);

  await app.stop();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
