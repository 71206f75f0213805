import { ReadingCollector } from './collector.js';
import { leaves, resolvePath } from './json-path.js';
import { isNoReading, isObject, parseJson, toNumber, utf8 } from './text.js';
import { readTime } from './time.js';
import type { Decoder } from './types.js';

export interface JsonFieldsOptions {
  /**
   * Payload path -> what it measures. Paths are dotted (`BME280.Temperature`); a key that contains
   * dots itself (`SDS0X1.PM2.5`) is found by matching against the keys the object has. Units are the
   * device's and are converted to the canonical unit. Absent: every numeric leaf becomes
   * `json:<path>` with its unit unknown.
   */
  fields?: Readonly<Record<string, { variable: string; unit: string }>>;
  /** Path of the sensor time: epoch s/ms or ISO 8601 (see time.ts for times without an offset). */
  time?: string;
  /** IANA zone for payload times that carry no UTC offset. */
  timeZone?: string;
}

/** Without a field map, at most this many leaves (this deep) are taken from one message. */
const AUTO_MAX_READINGS = 500;
const AUTO_MAX_DEPTH = 6;

/** A JSON object whose named fields carry numbers, e.g. `{"temperature": 21.5, "humidity": 40}`. */
export function jsonFieldsDecoder(opts: JsonFieldsOptions = {}): Decoder {
  // Listed once here, not per message.
  const fields = opts.fields === undefined ? undefined : Object.entries(opts.fields);
  return ({ payload }) => {
    const text = utf8(payload);
    if (text === undefined) return { kind: 'rejected', reason: 'payload is not valid UTF-8 text' };
    const parsed = parseJson(text);
    if (!parsed.ok) return { kind: 'rejected', reason: parsed.reason };
    const doc = parsed.value;
    if (!isObject(doc)) return { kind: 'rejected', reason: 'expected a JSON object' };

    const timeAt = opts.time === undefined ? undefined : resolvePath(doc, opts.time);
    const time = timeAt?.found ? readTime(timeAt.value, { timeZone: opts.timeZone }) : { quality: [] };
    const out = new ReadingCollector(time);

    if (fields === undefined) {
      for (const [path, raw] of leaves(doc, AUTO_MAX_DEPTH)) {
        if (path === opts.time) continue;
        if (out.readings.length >= AUTO_MAX_READINGS) {
          out.skip(path, `more than ${AUTO_MAX_READINGS} fields in one message`);
          break;
        }
        if (raw === null) out.skip(path, 'no reading: null');
        else if (typeof raw === 'number') out.number(path, `json:${path}`, raw, '');
      }
      return out.outcome();
    }

    for (const [field, spec] of fields) {
      const hit = resolvePath(doc, field);
      if (!hit.found) continue;
      const raw = hit.value;
      if (raw === null || (typeof raw === 'string' && isNoReading(raw))) {
        out.skip(field, `no reading: ${JSON.stringify(raw)}`);
        continue;
      }
      const value = toNumber(raw);
      if (value === undefined) {
        return {
          kind: 'rejected',
          reason: `field "${field}" must be a number, got ${JSON.stringify(raw)?.slice(0, 40)}`,
        };
      }
      out.number(field, spec.variable, value, spec.unit);
    }
    return out.outcome();
  };
}
