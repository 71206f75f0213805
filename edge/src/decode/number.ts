import { ReadingCollector } from './collector.js';
import { isNoReading, preview, toNumber, utf8 } from './text.js';
import type { Decoder } from './types.js';

export interface NumberOptions {
  /** What the number measures. Default: `mqtt:<last topic level>` (`kitchen/temperature` -> `mqtt:temperature`). */
  variable?: string;
  /** The unit the device sends; converted to the canonical unit. `''` or absent: unknown, flagged. */
  unit?: string;
}

/**
 * The longest payload read as one plain number: a double's longest spelling is 24 characters, and the
 * rest allows for padding and "no reading" words. Anything longer is refused before it is decoded, so
 * a flood of large payloads on a number topic costs no text copies of them.
 */
export const MAX_NUMBER_PAYLOAD_BYTES = 64;

/** A payload that is one plain number, e.g. `21.5`. */
export function numberDecoder(opts: NumberOptions = {}): Decoder {
  return ({ topic, payload }) => {
    if (payload.byteLength > MAX_NUMBER_PAYLOAD_BYTES) {
      return {
        kind: 'rejected',
        reason: `a plain number payload is at most ${MAX_NUMBER_PAYLOAD_BYTES} bytes; got ${payload.byteLength}`,
      };
    }
    const text = utf8(payload);
    if (text === undefined) return { kind: 'rejected', reason: 'payload is not valid UTF-8 text' };
    const variable = opts.variable ?? `mqtt:${topic.split('/').pop() || 'value'}`;
    const out = new ReadingCollector();
    if (isNoReading(text)) {
      out.skip('(payload)', `no reading: ${JSON.stringify(text)}`);
      return out.outcome();
    }
    const value = toNumber(text);
    if (value === undefined) {
      return { kind: 'rejected', reason: `expected a plain number for ${variable}, got ${preview(text)}` };
    }
    out.number('(payload)', variable, value, opts.unit ?? '');
    return out.outcome();
  };
}
