import { randomBytes } from 'node:crypto';

/** A random half drawn once per process: which agent run made the id. */
function drawPrefix(): string {
  const p = randomBytes(8).toString('hex');
  return p === '0000000000000000' ? drawPrefix() : p;
}

let prefix = drawPrefix();
let counter = 0;

/**
 * A new W3C trace-id (32 lower-case hex digits) for a message that arrives without one. Every MQTT
 * message, HTTP intake request and ISS update gets one at intake, shared by all its readings
 * (`Origin.trace`).
 *
 * It is 64 random bits drawn when the agent starts, then a 64-bit count of the messages since: unique
 * across a fleet as a wholly random id would be (two agents meet only if their random halves do), and
 * the ids of one batch share their first half, so a v2 batch compresses each to a few bytes, where a
 * wholly random id costs its 16 bytes of entropy per message on the uplink (and the compressor's time
 * to find nothing in them). The spec allows such ids; a `traceparent` the edge sends would not set
 * the "random" flag.
 */
export function newTraceId(): string {
  if (counter >= Number.MAX_SAFE_INTEGER) {
    prefix = drawPrefix();
    counter = 0;
  }
  const n = (counter++).toString(16);
  return `${prefix}${'0000000000000000'.slice(n.length)}${n}`;
}
