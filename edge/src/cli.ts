#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';
import type { Logger } from 'pino';
import { runCommandLine } from './cli/command-line.js';
import { createEdgeProgram } from './cli/program.js';
import { createEdgeLogger } from './logger.js';

// This program ends with process.exit, which joins V8's worker threads while the heap is still alive.
// A Sparkplug (baseline) compile running on one of them can wait for a garbage collection that only the
// exiting main thread could run, and the process then never exits (seen once: the main thread in
// pthread_join, the V8 worker in AwaitCollectionBackground). Baseline code is compiled on the main thread
// instead, which closes that window at the cost of a little start-up time.
setFlagsFromString('--no-concurrent-sparkplug');

/** The agent's logger (`run`); LOG_LEVEL and LOG_FORMAT, see logger.ts. */
function createLogger(): Logger {
  return createEdgeLogger();
}

// A reader that stops early (`fieldbeam-edge rejects ... | head`) is not an error of this program.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});

const status = { code: 0 };
runCommandLine(createEdgeProgram({ createLogger }, status), process.argv.slice(2), status).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`fieldbeam-edge: ${err.message}\n`);
    process.exitCode = 1;
  },
);
