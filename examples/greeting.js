'use strict';
// duroxide-node's quick start in reprise: a greeting workflow (one activity, one
// orchestration), on an in-memory SQLite database. Run: node examples/greeting.js
const { SqliteProvider, Client, Runtime } = require('..'); // require('reprise') in your project

async function main() {
  // 1. Open a storage backend (SqliteProvider.open('sqlite:myapp.db') for a file)
  const provider = await SqliteProvider.inMemory();
  const client = new Client(provider);
  const runtime = new Runtime(provider);

  // 2. Register activities (async functions with side effects)
  runtime.registerActivity('Greet', async (ctx, name) => {
    ctx.traceInfo(`greeting ${name}`);
    return `Hello, ${name}!`;
  });

  // 3. Register orchestrations (generator functions)
  runtime.registerOrchestration('GreetWorkflow', function* (ctx, input) {
    const greeting = yield ctx.scheduleActivity('Greet', input.name);
    ctx.traceInfo(`got: ${greeting}`);
    return greeting;
  });

  // 4. Start the runtime
  await runtime.start();

  // 5. Start an orchestration and wait for it
  await client.startOrchestration('greet-1', 'GreetWorkflow', { name: 'World' });
  const result = await client.waitForOrchestration('greet-1');
  console.log(result.output); // "Hello, World!"

  await runtime.shutdown();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
