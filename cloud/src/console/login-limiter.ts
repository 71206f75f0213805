/** Bounds of failed console logins (cloud/README.md, "Operator console"). */
export interface LoginLimits {
  /** Failed logins one address may make per window; the next ones are a 429 until the window ends. */
  failures: number;
  windowMs: number;
  /** Addresses remembered at once; beyond it the oldest is forgotten, so memory stays bounded. */
  maxAddresses: number;
}

export const DEFAULT_LOGIN_LIMITS: Readonly<LoginLimits> = Object.freeze({
  failures: 5,
  windowMs: 60_000,
  maxAddresses: 10_000,
});

/**
 * Failed console logins per client address (client-address.ts), in a fixed window from the first
 * failure. The admin token is long and random, so guessing it is hopeless anyway; this keeps a client
 * from trying at the speed of the network, and from filling the log with attempts.
 */
export class LoginLimiter {
  /** Insertion order is window start order: a new window re-inserts its address. */
  private readonly failures = new Map<string, { since: number; count: number }>();

  constructor(
    readonly limits: LoginLimits = DEFAULT_LOGIN_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.failures.size;
  }

  /** Seconds `address` must wait before its next try, or 0 when it may try now. */
  retryAfterS(address: string): number {
    const entry = this.failures.get(address);
    if (!entry) return 0;
    const left = entry.since + this.limits.windowMs - this.now();
    if (left <= 0) {
      this.failures.delete(address);
      return 0;
    }
    return entry.count >= this.limits.failures ? Math.ceil(left / 1000) : 0;
  }

  failed(address: string): void {
    const now = this.now();
    let entry = this.failures.get(address);
    if (!entry || entry.since + this.limits.windowMs <= now) {
      this.failures.delete(address);
      this.makeRoom(now);
      entry = { since: now, count: 0 };
      this.failures.set(address, entry);
    }
    entry.count++;
  }

  succeeded(address: string): void {
    this.failures.delete(address);
  }

  private makeRoom(now: number): void {
    for (const [address, entry] of this.failures) {
      if (this.failures.size < this.limits.maxAddresses && entry.since + this.limits.windowMs > now) return;
      this.failures.delete(address);
    }
  }
}
