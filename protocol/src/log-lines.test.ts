import { describe, expect, it } from 'vitest';
import {
  chooseLogFormat,
  isJournalStream,
  journalLine,
  logLineWriter,
  prettyLine,
  syslogPriority,
} from './log-lines.js';

const line = (fields: Record<string, unknown>) => `${JSON.stringify({ level: 30, time: 0, ...fields })}\n`;

describe('journal lines', () => {
  it('map pino levels to syslog priorities', () => {
    expect([10, 20, 30, 40, 50, 60].map(syslogPriority)).toEqual([7, 7, 6, 4, 3, 2]);
  });

  it('put the priority before the JSON line and keep the line as it is', () => {
    const warn = line({ level: 40, msg: 'uplink down' });
    expect(journalLine(warn)).toBe(`<4>${warn}`);
    // A line whose level is not first is read whole.
    expect(journalLine('{"msg":"x","level":50}\n')).toBe('<3>{"msg":"x","level":50}\n');
    expect(journalLine('not json\n')).toBe('<6>not json\n');
  });
});

describe('pretty lines', () => {
  it('show time, level and message, then the other fields as key=value', () => {
    const text = prettyLine(
      line({
        level: 40,
        time: Date.UTC(2026, 0, 2, 3, 4, 5, 67),
        svc: 'fieldbeam-edge',
        msg: 'uplink not connected',
        detail: 'connection refused',
        attempt: 3,
        bare: 'a',
      }),
      { color: false },
    );
    expect(text).toBe(
      '03:04:05.067 WARN  uplink not connected detail="connection refused" attempt=3 bare=a\n',
    );
  });

  it('show an error stack below the line and colour only when asked', () => {
    const text = prettyLine(
      line({
        level: 50,
        msg: 'failed',
        err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at f' },
      }),
      { color: true },
    );
    expect(text).toBe('00:00:00.000 \x1b[31mERROR\x1b[0m failed err=boom\n    Error: boom\n        at f\n');
  });
});

describe('choosing a format', () => {
  it('takes LOG_FORMAT first, then the journal, a terminal, and json for everything else', () => {
    expect(chooseLogFormat('json', { journal: true, tty: true })).toBe('json');
    expect(chooseLogFormat(undefined, { journal: true, tty: false })).toBe('journal');
    expect(chooseLogFormat(undefined, { journal: false, tty: true })).toBe('pretty');
    expect(chooseLogFormat(undefined, { journal: false, tty: false })).toBe('json');
  });

  it('takes standard output for the journal only when JOURNAL_STREAM names it', () => {
    expect(isJournalStream('64769:1234', { dev: 64769n, ino: 1234n })).toBe(true);
    expect(isJournalStream('64769:1234', { dev: 64769n, ino: 99n })).toBe(false);
    expect(isJournalStream(undefined, { dev: 64769n, ino: 1234n })).toBe(false);
  });

  it('writes json lines through unchanged', () => {
    const out: string[] = [];
    logLineWriter('json', (t) => out.push(t)).write('{"level":30}\n');
    expect(out).toEqual(['{"level":30}\n']);
  });
});
