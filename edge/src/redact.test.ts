import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { configForDisplay, parseEdgeConfig } from './config.js';
import { logRedaction, REDACTED, redactSecrets, redactUrl } from './redact.js';

describe('redactUrl', () => {
  it.each([
    ['mqtt://user:s3cret@broker:1883', `mqtt://user:${REDACTED}@broker:1883`],
    [
      'nats://a:pw1@h1:4222,nats://b:pw2@h2:4222',
      `nats://a:${REDACTED}@h1:4222,nats://b:${REDACTED}@h2:4222`,
    ],
    // Unescaped @ and / in the password: still all of it.
    ['mqtts://u:p@ss/w@host/x', `mqtts://u:${REDACTED}@host/x`],
    [
      'connect failed for mqtt://u:pw@host: ECONNREFUSED',
      `connect failed for mqtt://u:${REDACTED}@host: ECONNREFUSED`,
    ],
    ['https://host/path?token=abc&x=1', `https://host/path?token=${REDACTED}&x=1`],
  ])('%s', (input, shown) => {
    expect(redactUrl(input)).toBe(shown);
  });

  it.each([
    'mqtt://broker:1883',
    'mqtt://user@broker',
    'sensors/+station/temperature',
    'plain text: with a colon',
  ])('leaves %s alone', (text) => {
    expect(redactUrl(text)).toBe(text);
  });
});

describe('redactSecrets', () => {
  it('redacts secret keys at any depth and passwords in URLs, without changing the input', () => {
    const input = { nats: { servers: ['nats://e:pw@h:4222'], pass: 'x' }, users: [{ password: 'y' }] };
    expect(redactSecrets(input)).toEqual({
      nats: { servers: [`nats://e:${REDACTED}@h:4222`], pass: REDACTED },
      users: [{ password: REDACTED }],
    });
    expect(input.nats.pass).toBe('x');
  });
});

describe('configForDisplay', () => {
  it('shows no password or seed, including those inside URLs', () => {
    const seed = `SU${'A'.repeat(56)}`;
    const shown = configForDisplay(
      parseEdgeConfig({
        edge: 'gw',
        nats: {
          servers: ['nats://edge:natspw-1@cloud:4222'],
          user: 'edge',
          pass: 'natspw-2',
          nkey_seed: seed,
        },
        mqtt: { mode: 'external', url: 'mqtt://sub:mqttpw-3@broker:1883' },
        http_intake: { enabled: true, tokens: { script: 'intake-token-4-abcdef' } },
      }),
    );
    for (const secret of ['natspw-1', 'natspw-2', 'mqttpw-3', seed, 'intake-token-4-abcdef'])
      expect(shown).not.toContain(secret);
    expect(shown).toContain('"script"');
    expect(shown).toContain(`mqtt://sub:${REDACTED}@broker:1883`);
  });
});

describe('logRedaction', () => {
  it('keeps secrets out of log lines that carry them in known fields', () => {
    let out = '';
    const sink = new Writable({
      write(chunk, _enc, done) {
        out += String(chunk);
        done();
      },
    });
    const log = pino({ redact: logRedaction }, sink);
    log.info({ url: 'mqtt://u:pw-1@h:1883' }, 'connected');
    log.info({ servers: ['nats://e:pw-2@h:4222'], serverUrl: 'https://u:pw-3@h' }, 'uplink');
    log.info({ nats: { pass: 'pw-4' }, password: 'pw-5', nkey_seed: 'pw-6' }, 'config');
    for (const secret of ['pw-1', 'pw-2', 'pw-3', 'pw-4', 'pw-5', 'pw-6']) expect(out).not.toContain(secret);
    expect(out).toContain(`mqtt://u:${REDACTED}@h:1883`);
  });
});
