#!/usr/bin/env node
import type { Logger } from 'pino';
import { runCommandLine } from './cli/command-line.js';
import { createEdgeProgram } from './cli/program.js';
import { createEdgeLogger } from './logger.js';

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
