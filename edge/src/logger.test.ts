import type { LogOutput } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import { EdgeConfigError } from './errors.js';
import { createEdgeLogger } from './logger.js';

function capture(where: { tty?: boolean; journal?: boolean } = {}): LogOutput & { text(): string } {
  let text = '';
  return {
    write: (t) => (text += t),
    tty: where.tty ?? false,
    journal: where.journal ?? false,
    text: () => text,
  };
}

const SECRET = 'Pw-91c2e';

describe('the agent logger', () => {
  it.each(['json', 'journal', 'pretty'])(
    'keeps URL passwords and secret fields out of %s lines',
    (format) => {
      const out = capture();
      const log = createEdgeLogger({ LOG_FORMAT: format }, out);
      log.warn({ url: `nats://edge:${SECRET}@host:4222`, config: { pass: SECRET } }, 'uplink not connected');
      expect(out.text()).toContain('uplink not connected');
      expect(out.text()).toContain('nats://edge:(redacted)@host:4222');
      expect(out.text()).not.toContain(SECRET);
    },
  );

  it('writes journal lines under systemd and pretty ones at a terminal unless LOG_FORMAT says otherwise', () => {
    const journal = capture({ journal: true, tty: true });
    createEdgeLogger({}, journal).error('e');
    expect(journal.text()).toMatch(/^<3>\{"level":50,/);
    const tty = capture({ tty: true });
    createEdgeLogger({ NO_COLOR: '1' }, tty).info('hello');
    expect(tty.text()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}hello\n$/);
    const forced = capture({ journal: true });
    createEdgeLogger({ LOG_FORMAT: 'json' }, forced).info('hello');
    expect(JSON.parse(forced.text())).toMatchObject({ level: 30, svc: 'fieldbeam-edge', msg: 'hello' });
  });

  it('refuses an unknown LOG_FORMAT naming the choices', () => {
    expect(() => createEdgeLogger({ LOG_FORMAT: 'syslog' }, capture())).toThrow(EdgeConfigError);
    expect(() => createEdgeLogger({ LOG_FORMAT: 'syslog' }, capture())).toThrow(/json, journal, pretty/);
  });
});
