import { describe, expect, it } from 'vitest';
import { interpolateEnv, interpolateString, retypeReferences } from './env-interpolation.js';

describe('interpolateString', () => {
  const env = { HOST: 'nats.lan', EMPTY: '', PORT: '4222' };
  it('replaces ${NAME} by the variable, an empty one included', () => {
    expect(interpolateString('nats://${HOST}:${PORT}', env)).toEqual({
      text: 'nats://nats.lan:4222',
      missing: [],
      whole: false,
    });
    expect(interpolateString('[${EMPTY}]', env).text).toBe('[]');
  });

  it('${NAME:-default} takes the default when the variable is unset or empty', () => {
    expect(interpolateString('${NOPE:-127.0.0.1}', env).text).toBe('127.0.0.1');
    expect(interpolateString('${EMPTY:-x}', env).text).toBe('x');
    expect(interpolateString('${HOST:-x}', env).text).toBe('nats.lan');
    expect(interpolateString('${NOPE:-}', env)).toEqual({ text: '', missing: [], whole: true });
  });

  it('names every unset variable without a default', () => {
    expect(interpolateString('${A}/${B:-b}/${C}', env).missing).toEqual(['A', 'C']);
  });

  it('$${NAME} is the text ${NAME}; other forms are text as written', () => {
    expect(interpolateString('$${HOST} and $${NOPE:-d}', env)).toEqual({
      text: '${HOST} and ${NOPE:-d}',
      missing: [],
      whole: false,
    });
    for (const t of ['$HOST', '${', '${}', '${1X}', '${A-B}', 'a$$b', '$${X'])
      expect(interpolateString(t, env).text).toBe(t);
  });
});

describe('interpolateEnv', () => {
  it('walks every string value with its path; keys are left alone', () => {
    const r = interpolateEnv(
      {
        '${HOST}': 1,
        nats: { servers: ['nats://${HOST}:4222', '${NOPE}'] },
        port: '${PORT}',
        on: '${T:-true}',
      },
      { HOST: 'h', PORT: '4222' },
    );
    expect(r.value).toEqual({
      '${HOST}': 1,
      nats: { servers: ['nats://h:4222', ''] },
      port: '4222',
      on: 'true',
    });
    expect(r.problems).toEqual([
      { path: ['nats', 'servers', 1], message: 'environment variable NOPE is not set' },
    ]);
    expect(r.typed).toEqual([
      { path: ['port'], value: 4222 },
      { path: ['on'], value: true },
    ]);
  });

  it('refuses nesting deeper than maxDepth', () => {
    expect(interpolateEnv({ a: { b: { c: 'x' } } }, {}, { maxDepth: 2 }).problems).toEqual([
      { path: ['a', 'b'], message: 'nested more than 2 levels deep' },
    ]);
  });
});

describe('retypeReferences', () => {
  it('gives a whole reference the type the schema wants, when its value reads as one', () => {
    const r = interpolateEnv({ port: '${P}', pass: '${S}' }, { P: '1883', S: '12345' });
    const issues = [{ code: 'invalid_type', expected: 'number', path: ['port'] }];
    expect(retypeReferences(r.value, issues, r.typed)).toEqual({ port: 1883, pass: '12345' });
    // No issue about a typed reference: nothing to change.
    expect(
      retypeReferences(r.value, [{ code: 'invalid_type', expected: 'string', path: ['x'] }], r.typed),
    ).toBe(undefined);
  });
});
