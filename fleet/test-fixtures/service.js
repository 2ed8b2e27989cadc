// A stand-in service for the supervisor tests, so they run real processes without needing Redis or Postgres.
// Usage: node service.js <mode> ; modes: serve, crash, once, stubborn, parent (serve + a child process of its own).
'use strict';
const { spawn } = require('node:child_process');

const mode = process.argv[2];
const name = process.env.FIXTURE_NAME || 'fixture';
const exitCode = Number(process.env.FIXTURE_EXIT_CODE || '0');
const keepAlive = setInterval(() => undefined, 60_000);

function serve() {
  console.log(JSON.stringify({ level: 30, msg: `ready ${name}`, pid: process.pid }));
  process.on('SIGTERM', () => {
    console.log(`stopping ${name}`);
    setTimeout(() => {
      console.log(`stopped ${name}`);
      process.exit(0);
    }, Number(process.env.FIXTURE_STOP_MS || '50'));
  });
}

switch (mode) {
  case 'serve':
    serve();
    break;
  case 'parent': {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 60000)'], { stdio: 'ignore' });
    console.log(`grandchild ${child.pid}`);
    serve();
    break;
  }
  case 'crash':
    console.error(`crashing ${name}`);
    process.exit(exitCode || 3);
    break;
  case 'once':
    console.log(`done ${name}`);
    process.exit(exitCode);
    break;
  case 'stubborn':
    process.on('SIGTERM', () => console.log(`ignoring SIGTERM ${name}`));
    console.log(`ready ${name}`);
    break;
  default:
    clearInterval(keepAlive);
    console.error(`unknown mode ${mode}`);
    process.exit(2);
}
