'use strict';
// `npm start`: the quick start on an embedded SQLite file, then a crash-and-resume run: a
// child process runs a five-step workflow, is killed with SIGKILL in the middle, and a new
// process picks the workflow up where it stopped. Last, a graceful stop: SIGTERM in the
// middle of a step lets the step finish before the worker exits (code 143).
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { SqliteProvider, Client, Runtime } = require('..');

const dataDir = path.join(__dirname, '..', 'demo-data');
fs.mkdirSync(dataDir, { recursive: true });

async function quickStart() {
  console.log('== 1. Quick start (SQLite file demo-data/quickstart.db)');
  const provider = await SqliteProvider.open(`sqlite:${path.join(dataDir, 'quickstart.db')}`);
  const client = new Client(provider);
  const runtime = new Runtime(provider);
  runtime.registerActivity('Greet', async (ctx, name) => `Hello, ${name}!`);
  runtime.registerOrchestration('GreetWorkflow', function* (ctx, input) {
    const greeting = yield ctx.scheduleActivity('Greet', input.name);
    return greeting;
  });
  await runtime.start();
  const id = `greet-${Date.now()}`;
  await client.startOrchestration(id, 'GreetWorkflow', { name: 'World' });
  const result = await client.waitForOrchestration(id);
  console.log(`   ${id}: ${result.status}, output ${JSON.stringify(result.output)}`);
  await runtime.shutdown();
}

function runWorker(db, id) {
  const child = spawn(process.execPath, [path.join(__dirname, 'worker.js'), db, id], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.setEncoding('utf8');
  child.lines = [];
  child.stdout.on('data', (chunk) => {
    for (const line of chunk.split('\n').filter(Boolean)) {
      child.lines.push(line);
      console.log(`   [pid ${child.pid}] ${line}`);
    }
  });
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return child;
}

function printed(child, line) {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (child.lines.includes(line)) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
}

async function crashAndResume() {
  console.log('\n== 2. Crash and resume');
  const db = path.join(dataDir, `crash-${Date.now()}.db`);
  const id = 'pipeline-1';
  const first = runWorker(db, id);
  await printed(first, 'step 3 started');
  first.kill('SIGKILL');
  const { signal } = await first.exited;
  console.log(`   ${signal}: the process died in the middle of step 3. Starting a new process...`);
  const second = runWorker(db, id);
  const { code } = await second.exited;
  if (code !== 0) throw new Error(`the resumed worker failed with exit code ${code}`);
  console.log('   Steps 1 and 2 were not run again; step 3 ran once more; the workflow finished.');
}

async function gracefulStop() {
  console.log('\n== 3. Graceful stop');
  const db = path.join(dataDir, `stop-${Date.now()}.db`);
  const id = 'pipeline-2';
  const first = runWorker(db, id);
  await printed(first, 'step 2 started');
  first.kill('SIGTERM');
  const { code } = await first.exited;
  console.log(`   SIGTERM: the worker finished step 2, then exited with code ${code}. Starting a new process...`);
  const second = runWorker(db, id);
  const resumed = await second.exited;
  if (resumed.code !== 0) throw new Error(`the resumed worker failed with exit code ${resumed.code}`);
  if (second.lines.includes('step 2 started')) throw new Error('step 2 ran again after a graceful stop');
  console.log('   Step 2 was not run again: the new process went on with step 3.');
}

quickStart()
  .then(crashAndResume)
  .then(gracefulStop)
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
