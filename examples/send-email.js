'use strict';
// Reseolio's quick start in reprise: a durable `send-email` function retried with
// exponential backoff until the (here, flaky) email provider accepts it. The job survives
// a crash between retries: the retry timer is in the database, not in memory.
// Run: node examples/send-email.js
const { SqliteProvider, Client, Runtime, defineActivity } = require('..'); // require('reprise') in your project
// not in reprise yet: reseolio.durable(name, fn, options) returning a callable with job.result() (built below from an activity and a one-step orchestration), the PENDING/RUNNING/SUCCESS/FAILED/DEAD job states (reprise has Running/Completed/Failed), jitter as a fraction (reprise's is on/off), RESEOLIO_* environment configuration

// A stand-in email provider that fails twice before accepting.
const emailProvider = {
  calls: 0,
  async send(to, body) {
    this.calls += 1;
    if (this.calls < 3) throw new Error(`SMTP 421: try again later (call ${this.calls})`);
    return { to, bytes: body.length };
  },
};

async function main() {
  const provider = await SqliteProvider.inMemory(); // SqliteProvider.open('sqlite:./reseolio.db') for a file
  const client = new Client(provider);
  const runtime = new Runtime(provider);

  // Define a durable function: the activity does the work, the orchestration retries it.
  function durable(name, fn, retryPolicy) {
    const activity = defineActivity(name, (ctx, args) => fn(...args));
    runtime.registerActivity(activity);
    runtime.registerOrchestration(name, function* (ctx, args) {
      return yield* ctx.activityWithRetry(activity, args, retryPolicy);
    });
    let next = 0;
    // Calling it starts a job; job.result() waits for the outcome.
    return async (...args) => {
      const id = `${name}:${Date.now()}:${next++}`;
      await client.startOrchestration(id, name, args);
      return {
        id,
        async result() {
          const status = await client.waitForOrchestration(id);
          if (status.status === 'Failed') throw new Error(`${id} failed: ${status.error}`);
          return status.output;
        },
      };
    };
  }

  const sendEmail = durable('send-email', async (to, body) => {
    await emailProvider.send(to, body);
    return { sent: true };
  }, {
    maxAttempts: 5,
    backoff: 'exponential',
    initialDelayMs: 50, // 50 ms, then 100 ms (the default is 1000 ms)
  });

  await runtime.start();

  // Call it: if this process crashes now, the next one resumes the job.
  const job = await sendEmail('alice@example.com', 'Hello!');

  // Optionally wait for the result
  const result = await job.result();
  console.log(result); // { sent: true }
  console.log(`provider called ${emailProvider.calls} times`);

  await runtime.shutdown();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
