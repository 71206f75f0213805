import { describe, expect, it } from 'vitest';
import { createLogThrottle } from './log-throttle.js';

describe('createLogThrottle', () => {
  it('lets one line per key through per interval and counts the ones held back', () => {
    let t = 0;
    const throttle = createLogThrottle(10_000, () => t);
    expect(throttle.pass('parse')).toEqual({ suppressed: 0 });
    for (let i = 0; i < 500; i++) expect(throttle.pass('parse')).toBeUndefined();
    // Another key has its own interval.
    expect(throttle.pass('oversized')).toEqual({ suppressed: 0 });
    t = 9_999;
    expect(throttle.pass('parse')).toBeUndefined();
    t = 10_000;
    expect(throttle.pass('parse')).toEqual({ suppressed: 501 });
    expect(throttle.pass('parse')).toBeUndefined();
  });
});
