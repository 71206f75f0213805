import { describe, expect, it } from 'vitest';
import { LoginLimiter } from './login-limiter.js';

describe('LoginLimiter', () => {
  it('lets an address fail `failures` times per window, then asks it to wait until the window ends', () => {
    let now = 1_000_000;
    const limiter = new LoginLimiter({ failures: 3, windowMs: 60_000, maxAddresses: 100 }, () => now);
    for (let i = 0; i < 3; i++) {
      expect(limiter.retryAfterS('10.0.0.1')).toBe(0);
      limiter.failed('10.0.0.1');
    }
    expect(limiter.retryAfterS('10.0.0.1')).toBe(60);
    expect(limiter.retryAfterS('10.0.0.2')).toBe(0);
    now += 59_500;
    expect(limiter.retryAfterS('10.0.0.1')).toBe(1);
    now += 500;
    expect(limiter.retryAfterS('10.0.0.1')).toBe(0);
    limiter.failed('10.0.0.2');
    limiter.succeeded('10.0.0.2');
    expect(limiter.size).toBe(0);
  });

  it('remembers at most maxAddresses, forgetting expired and then the oldest ones first', () => {
    let now = 0;
    const limiter = new LoginLimiter({ failures: 1, windowMs: 1000, maxAddresses: 50 }, () => now);
    for (let i = 0; i < 10_000; i++) {
      limiter.failed(`a${i}`);
      if (i % 100 === 0) now += 10;
    }
    expect(limiter.size).toBe(50);
    // The newest are kept (and still waiting), the oldest forgotten.
    expect(limiter.retryAfterS('a9999')).toBeGreaterThan(0);
    expect(limiter.retryAfterS('a0')).toBe(0);
  });
});
