import { randomFillSync } from 'node:crypto';

/** Trace ids made per fill of the pool: one `randomFillSync` call instead of one per message. */
const POOL_IDS = 256;
const pool = Buffer.alloc(POOL_IDS * 16);
let next = POOL_IDS;

/**
 * A new W3C trace-id (32 lower-case hex digits of random bits), for a message that arrives without
 * one. Every MQTT message, HTTP intake request and ISS update gets one at intake, shared by all its
 * readings (`Origin.trace`). Drawn from a pool filled 256 ids at a time: ingest makes one per message,
 * tens of thousands a second, and a system call each would show in its profile.
 */
export function newTraceId(): string {
  if (next === POOL_IDS) {
    randomFillSync(pool);
    next = 0;
  }
  const at = next++ * 16;
  const id = pool.toString('hex', at, at + 16);
  // All zero is the one invalid trace-id (a chance of 2^-128, but the spec forbids it).
  return id === '00000000000000000000000000000000' ? newTraceId() : id;
}
