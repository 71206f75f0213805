import { fstatSync } from 'node:fs';
import { chooseLogFormat, isJournalStream, type LogOutput, logLineWriter } from '@fieldbeam/protocol';
import { type Logger, pino } from 'pino';
import type { CloudConfig } from './config.js';

/** Standard output, written synchronously; `journal` when it is the stream systemd's JOURNAL_STREAM names. */
export function stdoutLogOutput(journalStream = process.env.JOURNAL_STREAM): LogOutput {
  const dest = pino.destination({ dest: 1, sync: true });
  let stat: { dev: bigint; ino: bigint } | undefined;
  try {
    stat = fstatSync(1, { bigint: true });
  } catch {
    // Standard output closed: not the journal either.
  }
  return {
    write: (text) => dest.write(text),
    tty: process.stdout.isTTY === true,
    journal: stat !== undefined && isJournalStream(journalStream, stat),
  };
}

/**
 * The collector's logger: LOG_LEVEL and LOG_FORMAT from its settings (json, journal or pretty; unset:
 * journal under systemd, pretty on a terminal, json otherwise).
 */
export function createCloudLogger(
  config: Pick<CloudConfig, 'LOG_LEVEL' | 'LOG_FORMAT'>,
  output: LogOutput = stdoutLogOutput(),
): Logger {
  const format = chooseLogFormat(config.LOG_FORMAT, output);
  return pino(
    { level: config.LOG_LEVEL, base: { svc: 'fieldbeam-cloud' } },
    logLineWriter(format, (text) => output.write(text), { color: output.tty && !process.env.NO_COLOR }),
  );
}
