// The package is importable from ESM by name.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Runtime, SqliteProvider, Client, TimeoutError, NotFoundError, RepriseError } from '../index.js';

test('named ESM imports', async () => {
  const provider = await SqliteProvider.inMemory();
  const runtime = new Runtime(provider);
  runtime.registerActivity('Hi', async (ctx, n) => `hi ${n}`);
  runtime.registerOrchestration('Esm', function* (ctx, n) {
    return yield* ctx.scheduleActivity('Hi', n);
  });
  await runtime.start();
  const client = new Client(provider);
  await client.startOrchestration('esm-1', 'Esm', 'esm');
  assert.equal((await client.waitForOrchestration('esm-1', 10000)).output, 'hi esm');
  await runtime.shutdown();
  assert.ok(new TimeoutError('x') instanceof RepriseError);
  assert.ok(new NotFoundError('x') instanceof RepriseError);
  await assert.rejects(client.retryInstance('nobody'), NotFoundError);
});
