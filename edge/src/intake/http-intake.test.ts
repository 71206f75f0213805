import { describe, expect, it } from 'vitest';
import { topicOf } from './http-intake.js';

describe('topicOf', () => {
  it('takes the percent-decoded rest of /ingest/ as the topic', () => {
    expect(topicOf('/ingest/sensors/barn/temperature')).toBe('sensors/barn/temperature');
    expect(topicOf('/ingest/k%C3%BChlhaus/t')).toBe('kühlhaus/t');
    expect(topicOf('/ingest/a//b')).toBe('a//b');
  });

  it.each([
    ['/ingest/', /no topic/],
    ['/ingest/a/%E0%A4%A', /percent-encoded/],
    ['/ingest/a/+/b', /no \+ # or NUL/],
    ['/ingest/a/%23', /no \+ # or NUL/],
    ['/ingest/a%00b', /no \+ # or NUL/],
  ])('refuses %s', (path, reason) => {
    const t = topicOf(path);
    expect(typeof t === 'string' ? t : t.error).toMatch(reason);
  });
});
