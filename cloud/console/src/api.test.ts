import { describe, expect, it } from 'vitest';
import { safeHref } from './api.ts';

describe('links from answers', () => {
  const base = 'http://collector:8080/console/datasets';
  it('keeps http(s) and relative links, resolved', () => {
    expect(safeHref('/collections/co2/windows/x/1.parquet', base)).toBe(
      'http://collector:8080/collections/co2/windows/x/1.parquet',
    );
    expect(safeHref('https://files.example/1.arrow', base)).toBe('https://files.example/1.arrow');
  });
  it('drops any other scheme and what is not a URL', () => {
    for (const bad of [
      'javascript:alert(1)',
      ' JavaScript:alert(1)',
      'data:text/html,<b>x</b>',
      'vbscript:x',
    ]) {
      expect(safeHref(bad, base)).toBeNull();
    }
    expect(safeHref('http://[bad', base)).toBeNull();
    expect(safeHref(null, base)).toBeNull();
  });
});
