import { fstatSync } from 'node:fs';
import {
  chooseLogFormat,
  isJournalStream,
  isLogFormat,
  LOG_FORMATS,
  type LogOutput,
  logLineWriter,
} from '@fieldbeam/protocol';
import { type Logger, pino } from 'pino';
import { EdgeConfigError } from './errors.js';
import { logRedaction } from './redact.js';

/** Standard output, written synchronously (a line is out before the process can end). */
export function stdoutLogOutput(env: NodeJS.ProcessEnv = process.env): LogOutput {
  const dest = pino.destination({ dest: 1, sync: true });
  let journal = false;
  try {
    journal = isJournalStream(env.JOURNAL_STREAM, fstatSync(1, { bigint: true }));
  } catch {
    // No standard output to look at (closed): then it is not the journal either.
  }
  return { write: (text) => dest.write(text), tty: process.stdout.isTTY === true, journal };
}

/**
 * The agent's logger: LOG_LEVEL (default info) and LOG_FORMAT (json, journal or pretty; default
 * journal under systemd, pretty on a terminal, json otherwise), secrets redacted in every format.
 */
export function createEdgeLogger(
  env: NodeJS.ProcessEnv = process.env,
  output: LogOutput = stdoutLogOutput(env),
): Logger {
  const requested = env.LOG_FORMAT || undefined;
  if (requested !== undefined && !isLogFormat(requested))
    throw new EdgeConfigError(
      [
        `LOG_FORMAT: "${requested}" is not one of ${LOG_FORMATS.join(', ')} (unset: chosen by where stdout goes)`,
      ],
      'invalid environment',
    );
  const format = chooseLogFormat(requested, output);
  return pino(
    { level: env.LOG_LEVEL || 'info', base: { svc: 'fieldbeam-edge' }, redact: logRedaction },
    logLineWriter(format, (text) => output.write(text), { color: output.tty && !env.NO_COLOR }),
  );
}
