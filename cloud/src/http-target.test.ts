import { describe, expect, it } from 'vitest';
import { parseRequestTarget } from './http-target.js';

describe('request targets', () => {
  it('reads an origin-form target as path segments and query', () => {
    const t = parseRequestTarget('/collections/a%20b/items?limit=5&bbox=[1,2]');
    expect(t).toMatchObject({
      ok: true,
      path: '/collections/a%20b/items',
      segments: ['collections', 'a%20b', 'items'],
    });
    expect(t.ok && t.query.get('bbox')).toBe('[1,2]');
  });

  it('reads a leading // as a path, never as a host', () => {
    expect(parseRequestTarget('//x:99999/')).toMatchObject({ ok: true, segments: ['x:99999'] });
    expect(parseRequestTarget('//evil.example/healthz')).toMatchObject({
      ok: true,
      segments: ['evil.example', 'healthz'],
    });
  });

  it.each([
    '//[',
    '//%',
    '/%zz',
    '/a b',
    '/\\\\evil',
    '/\u00e9',
    '/a\u0000',
    '*',
    'healthz',
    '',
    'http://[/x',
  ])('refuses %j', (raw) => {
    const t = parseRequestTarget(raw);
    expect(t.ok).toBe(false);
    expect(!t.ok && t.error).toMatch(/^request target /);
  });

  it('takes the path and query of an absolute-form target', () => {
    expect(parseRequestTarget('http://h:1/healthz?x=1')).toMatchObject({
      ok: true,
      path: '/healthz',
      segments: ['healthz'],
    });
  });

  it('refuses a target longer than its bound', () => {
    expect(parseRequestTarget(`/${'a'.repeat(20_000)}`).ok).toBe(false);
  });
});
