import type { LogOutput } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import { loadCloudConfig } from './config.js';
import { createCloudLogger } from './logger.js';

function capture(where: { tty?: boolean; journal?: boolean } = {}): LogOutput & { text(): string } {
  let text = '';
  return {
    write: (t) => (text += t),
    tty: where.tty ?? false,
    journal: where.journal ?? false,
    text: () => text,
  };
}

describe('the collector logger', () => {
  it('writes by LOG_FORMAT, else by where stdout goes: journal priorities, readable lines, JSON', () => {
    const journal = capture({ journal: true });
    createCloudLogger(loadCloudConfig({}), journal).warn('slow');
    expect(journal.text()).toMatch(/^<4>\{"level":40,.*"svc":"fieldbeam-cloud".*"msg":"slow"\}\n$/);
    const json = capture({ journal: true });
    createCloudLogger(loadCloudConfig({ LOG_FORMAT: 'json', LOG_LEVEL: 'debug' }), json).debug('d');
    expect(JSON.parse(json.text())).toMatchObject({ level: 20, msg: 'd' });
    const pretty = capture();
    createCloudLogger(loadCloudConfig({ LOG_FORMAT: 'pretty' }), pretty).info({ rows: 3 }, 'stored');
    expect(pretty.text()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}stored rows=3\n$/);
  });

  it('refuses an unknown LOG_FORMAT among the settings', () => {
    expect(() => loadCloudConfig({ LOG_FORMAT: 'syslog' })).toThrow(/LOG_FORMAT/);
  });
});
