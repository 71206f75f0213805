/**
 * The forms in which the edge agent and the collector write their log lines (pino JSON, one a line)
 * to standard output. Both programs run under systemd and at terminals alike, so the forms are
 * defined once, here, as pure functions of a line; each program's logger picks one and writes.
 *
 * - `json`: pino's line as it is (for log shippers and files).
 * - `journal`: pino's line behind a `<N>` syslog priority, which journald's stdout stream reads
 *   (`SyslogLevelPrefix=yes`, its default) to set PRIORITY, so `journalctl -p warning` filters.
 * - `pretty`: one line a person reads: time, level, message, then the other fields as key=value.
 */

export const LOG_FORMATS = ['json', 'journal', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Where a program's log lines go (its standard output), and what that is: a terminal, the journal, or neither. */
export interface LogOutput {
  write(text: string): void;
  readonly tty: boolean;
  readonly journal: boolean;
}

export const isLogFormat = (value: string): value is LogFormat =>
  (LOG_FORMATS as readonly string[]).includes(value);

/**
 * The format to write in: `requested` (LOG_FORMAT) when set, else `journal` when standard output is
 * systemd's journal stream, `pretty` on a terminal and `json` otherwise (pipes, files, containers).
 */
export function chooseLogFormat(
  requested: LogFormat | undefined,
  stdout: { journal: boolean; tty: boolean },
): LogFormat {
  if (requested) return requested;
  if (stdout.journal) return 'journal';
  return stdout.tty ? 'pretty' : 'json';
}

/**
 * Whether standard output is the journal: systemd sets JOURNAL_STREAM to `<device>:<inode>` of the
 * stream it connected, and a child that inherited the variable but writes to a pipe must not take its
 * pipe for the journal (systemd.exec(5) says to compare, not just to test that the variable is set).
 */
export const isJournalStream = (journalStream: string | undefined, stdout: { dev: bigint; ino: bigint }) =>
  journalStream !== undefined && journalStream === `${stdout.dev}:${stdout.ino}`;

/** pino's numeric levels as syslog priorities: fatal 2 (crit), error 3, warn 4, info 6, debug and trace 7. */
export function syslogPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/** pino writes `level` first; a line that does not start so is parsed whole. */
const LEADING_LEVEL = /^\{"level":(\d+)/;

function levelOf(line: string): number {
  const m = LEADING_LEVEL.exec(line);
  if (m?.[1]) return Number(m[1]);
  try {
    const level = (JSON.parse(line) as { level?: unknown }).level;
    return typeof level === 'number' ? level : 30;
  } catch {
    return 30;
  }
}

/** The line behind its `<N>` syslog priority, for journald's stdout stream. */
export const journalLine = (line: string): string => `<${syslogPriority(levelOf(line))}>${line}`;

const LEVEL_NAMES: ReadonlyMap<number, string> = new Map([
  [10, 'TRACE'],
  [20, 'DEBUG'],
  [30, 'INFO '],
  [40, 'WARN '],
  [50, 'ERROR'],
  [60, 'FATAL'],
]);

const COLORS = { dim: '\x1b[2m', yellow: '\x1b[33m', red: '\x1b[31m', reset: '\x1b[0m' };

/** Fields every line has and the pretty form shows otherwise or leaves out (one process at a terminal). */
const SHOWN_APART = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'svc']);

const BARE = /^[^\s"=]+$/;

function fieldValue(value: unknown): string {
  if (typeof value === 'string') return BARE.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/**
 * pino's JSON line as one line a person reads: `12:04:05.120 WARN  uplink not connected detail=...`
 * (UTC time of day). An error object's stack follows on indented lines. Not JSON: passed on as it is.
 */
export function prettyLine(line: string, opts: { color: boolean }): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const level = typeof record.level === 'number' ? record.level : 30;
  const time = typeof record.time === 'number' ? new Date(record.time).toISOString().slice(11, 23) : '';
  const name = LEVEL_NAMES.get(level) ?? String(level).padEnd(5);
  const color = !opts.color
    ? ''
    : level >= 50
      ? COLORS.red
      : level >= 40
        ? COLORS.yellow
        : level < 30
          ? COLORS.dim
          : '';
  const fields: string[] = [];
  let stack = '';
  for (const [key, value] of Object.entries(record)) {
    if (SHOWN_APART.has(key)) continue;
    const err = value as { message?: unknown; stack?: unknown } | null;
    if (typeof err === 'object' && err !== null && typeof err.stack === 'string') {
      fields.push(`${key}=${fieldValue(err.message)}`);
      stack += `\n    ${err.stack.split('\n').join('\n    ')}`;
      continue;
    }
    fields.push(`${key}=${fieldValue(value)}`);
  }
  const msg = typeof record.msg === 'string' ? record.msg : '';
  const text = [time, `${color}${name}${color && COLORS.reset}`, msg, ...fields].filter(Boolean).join(' ');
  return `${text}${stack}\n`;
}

/**
 * A pino destination that writes each line in `format` through `write` (standard output, in the
 * programs). Redaction happens before: pino censors the JSON line that every format starts from.
 */
export function logLineWriter(
  format: LogFormat,
  write: (text: string) => void,
  opts: { color: boolean } = { color: false },
): { write(line: string): void } {
  if (format === 'journal') return { write: (line) => write(journalLine(line)) };
  if (format === 'pretty') return { write: (line) => write(prettyLine(line, opts)) };
  return { write };
}
