import { describe, expect, it } from 'vitest';
import { configForDisplay, parseEdgeConfig, parseEdgeConfigText } from './config.js';

describe('parseEdgeConfig', () => {
  it('applies defaults and freezes the result', () => {
    const cfg = parseEdgeConfig({ edge: 'gw-1' });
    expect(cfg.buffer.policy).toBe('block');
    expect(cfg.mqtt.mode).toBe('embedded');
    expect(cfg.mqtt.max_readings_per_message).toBe(500);
    expect(cfg.forward.max_batch_bytes).toBe(255 * 1024);
    expect(Object.isFrozen(cfg.buffer)).toBe(true);
  });

  it('takes the NATS servers of a cluster as a list, or as one comma-separated entry (${NATS_SERVERS})', () => {
    const urls = ['nats://n1:4222', 'nats://n2:4222', 'nats://n3:4222'];
    expect(parseEdgeConfig({ edge: 'gw-1', nats: { servers: urls } }).nats.servers).toEqual(urls);
    const text = 'edge: gw-1\nnats:\n  servers: ["${NATS_SERVERS}"]\n';
    const cfg = parseEdgeConfigText(text, {
      NATS_SERVERS: ' nats://n1:4222, nats://n2:4222,nats://n3:4222,',
    });
    expect(cfg.nats.servers).toEqual(urls);
    expect(() => parseEdgeConfig({ edge: 'gw-1', nats: { servers: [','] } })).toThrow(/nats\.servers/);
  });

  it('refuses a batch size above what the protocol carries', () => {
    expect(() => parseEdgeConfig({ edge: 'gw-1', forward: { max_batch_bytes: 1024 * 1024 } })).toThrow(
      /forward\.max_batch_bytes/,
    );
  });

  it('reports every problem at once with its path', () => {
    let message = '';
    try {
      parseEdgeConfig({
        edge: 'bad.id',
        buffer: { policy: 'drop_newest' },
        sensors: [
          { topic: 'a/+station/t', decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' } },
          { topic: 'x/#/y', decoder: { type: 'number', variable: 'v', unit: '1' } },
        ],
      });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/edge: edge id must be/);
    expect(message).toMatch(/buffer\.policy:/);
    expect(message).toMatch(/sensors\[1\]\.topic: .*last level/);
    expect(message).toMatch(/sensors\[1\]\.station: set station/);
    expect(message).not.toMatch(/sensors\[0\]/);
  });

  it('http_intake: off by default; when on, each client its own token of 16+ characters, from ${ENV}', () => {
    expect(parseEdgeConfig({ edge: 'gw-1' }).http_intake).toMatchObject({
      enabled: false,
      max_body_bytes: 262144,
    });
    const cfg = parseEdgeConfig(
      { edge: 'gw-1', http_intake: { enabled: true, tokens: { 'barn-script': '${TOKEN}' } } },
      { TOKEN: 'a-token-of-20-chars!' },
    );
    expect(cfg.http_intake.tokens).toEqual({ 'barn-script': 'a-token-of-20-chars!' });
    const problems = (config: object) => {
      try {
        parseEdgeConfig({ edge: 'gw-1', http_intake: config });
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(problems({ enabled: true })).toMatch(
      /http_intake\.tokens: http_intake is enabled but has no client token/,
    );
    expect(problems({ tokens: { a: 'short' } })).toMatch(
      /http_intake\.tokens\.a: use a token of at least 16/,
    );
    expect(problems({ tokens: { a: 'same-token-0123456', b: 'same-token-0123456' } })).toMatch(
      /http_intake\.tokens\.b: the same token as client a/,
    );
    expect(problems({ tokens: { 'a b': 'a-token-of-20-chars!' } })).toMatch(/client names are/);
    // A client limited to topic filters: its token is checked as the plain form's, its filters as MQTT's.
    const scoped = { token: 'a-token-of-20-chars!', topics: ['sensors/barn/#'] };
    expect(
      parseEdgeConfig({ edge: 'gw-1', http_intake: { tokens: { barn: scoped } } }).http_intake.tokens,
    ).toEqual({ barn: scoped });
    expect(problems({ tokens: { a: { ...scoped, topics: ['a/#/b'] } } })).toMatch(
      /http_intake\.tokens\.a\.topics\[0\]: expected an MQTT topic filter/,
    );
    expect(problems({ tokens: { a: { ...scoped, topics: [] } } })).toMatch(/at least one topic filter/);
    expect(problems({ tokens: { a: { ...scoped, token: 'short' } } })).toMatch(/at least 16/);
    expect(problems({ tokens: { a: scoped, b: 'a-token-of-20-chars!' } })).toMatch(
      /the same token as client a/,
    );
  });

  it('interpolates ${ENV} and names missing variables', () => {
    const cfg = parseEdgeConfig({ edge: 'gw-1', nats: { pass: '${SECRET}' } }, { SECRET: 's3' });
    expect(cfg.nats.pass).toBe('s3');
    expect(() => parseEdgeConfig({ edge: 'gw-1', nats: { pass: '${NOPE}' } }, {})).toThrow(
      /nats\.pass: environment variable NOPE is not set/,
    );
  });

  it('${VAR:-default}, $${...} as text, numbers and booleans from a whole reference, the file named in the error', () => {
    const text = [
      'edge: ${EDGE:-gw-7}',
      'nats:',
      '  servers: ["nats://${NATS_HOST:-127.0.0.1}:4222"]',
      '  pass: ${PASS}',
      'mqtt:',
      '  port: ${MQTT_PORT:-1883}',
      '  users: [{ username: u, password: "$${NOT_A_VARIABLE}" }]',
      'iss:',
      '  enabled: ${ISS:-false}',
      '# ${IN_A_COMMENT} is not looked at',
    ].join('\n');
    const cfg = parseEdgeConfigText(text, { PASS: '12345', MQTT_PORT: '2883' }, 'edge.yaml');
    expect(cfg.edge).toBe('gw-7');
    expect(cfg.nats.servers).toEqual(['nats://127.0.0.1:4222']);
    // Text where the schema wants text, whatever the value looks like.
    expect(cfg.nats.pass).toBe('12345');
    expect(cfg.mqtt.port).toBe(2883);
    expect(cfg.mqtt.users[0]?.password).toBe('${NOT_A_VARIABLE}');
    expect(cfg.iss.enabled).toBe(false);
    expect(() => parseEdgeConfigText(text, {}, '/etc/fieldbeam/edge.yaml')).toThrow(
      /invalid edge config \/etc\/fieldbeam\/edge\.yaml:\n {2}nats\.pass: environment variable PASS is not set/,
    );
    // A value that is not a number where one is wanted is still refused, naming the key.
    expect(() => parseEdgeConfigText(text, { PASS: 'p', MQTT_PORT: 'http' }, 'edge.yaml')).toThrow(
      /mqtt\.port:/,
    );
  });
});

describe('configForDisplay', () => {
  it('shows every setting but no secret', () => {
    const cfg = parseEdgeConfig({
      edge: 'gw-1',
      nats: { servers: ['nats://10.0.0.1:4222'], user: 'gw-1', pass: 's3cret-pass' },
      mqtt: { users: [{ username: 'sensor', password: 'sensor-password' }] },
    });
    const text = configForDisplay(cfg);
    expect(text).not.toMatch(/s3cret-pass|sensor-password/);
    const shown = JSON.parse(text);
    expect(shown.nats).toMatchObject({ servers: ['nats://10.0.0.1:4222'], user: 'gw-1', pass: '(redacted)' });
    expect(shown.mqtt.users[0]).toMatchObject({ username: 'sensor', password: '(redacted)' });
    expect(shown.buffer).toEqual(JSON.parse(JSON.stringify(cfg.buffer)));
  });
});
