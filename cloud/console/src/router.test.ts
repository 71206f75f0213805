import { describe, expect, it } from 'vitest';
import { edgeHref, parseRoute } from './router.ts';

describe('console routes', () => {
  it('opens the fleet at /, /console and /console/fleet, with or without a trailing slash', () => {
    for (const p of ['/', '/console', '/console/', '/console/fleet', '/console/fleet/']) {
      expect(parseRoute(p, '')).toEqual({ page: 'fleet' });
    }
  });
  it('carries any edge id in the query, so ids need no path escaping', () => {
    for (const id of ['gw-17', 'a b/c?d&e=f', 'édge.1', '<script>']) {
      const url = new URL(edgeHref(id), 'http://x');
      expect(parseRoute(url.pathname, url.search)).toEqual({ page: 'edge', id });
    }
    expect(parseRoute('/console/edge', '')).toEqual({ page: 'fleet' });
  });
  it('names the other pages and an unknown one', () => {
    expect(parseRoute('/console/datasets', '')).toEqual({ page: 'datasets' });
    expect(parseRoute('/console/iss', '')).toEqual({ page: 'iss' });
    expect(parseRoute('/console/ingest', '')).toEqual({ page: 'ingest' });
    expect(parseRoute('/console/nope', '')).toEqual({ page: 'missing', path: '/console/nope' });
  });
});
