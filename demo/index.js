'use strict';
// `npm start`: the quick start on an embedded SQLite file, then a crash-and-resume run: a
// child process runs a five-step workflow, is killed with SIGKILL in the middle, and a new
// process picks the workflow up where it stopped.
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

async function crashAndResume() {
  console.log('\n== 2. Crash and resume');
  const db = path.join(dataDir, `crash-${Date.now()}.db`);
  const id = 'pipeline-1';
  const first = runWorker(db, id);
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      if (first.lines.some((l) => l.startsWith('step 3 started'))) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
  first.kill('SIGKILL');
  const { signal } = await first.exited;
  console.log(`   ${signal}: the process died in the middle of step 3. Starting a new process...`);
  const second = runWorker(db, id);
  const { code } = await second.exited;
  if (code !== 0) throw new Error(`the resumed worker failed with exit code ${code}`);
  console.log('   Steps 1 and 2 were not run again; step 3 ran once more; the workflow finished.');
}

quickStart()
  .then(crashAndResume)
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
