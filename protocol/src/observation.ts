import { z } from 'zod';
import { isTraceId } from './trace-context.js';

const ISO_SHAPE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * True for a real instant written as ISO-8601 UTC with milliseconds, i.e. a string that comes back
 * unchanged from `new Date(s).toISOString()`. The shape alone lets `2026-13-45T25:61:61.000Z`
 * through, which Postgres (and its partitioning) refuses on every redelivery. Checked field by field
 * (proleptic Gregorian, as `Date`), because ingest runs it twice per observation.
 */
export function isIsoTime(s: string): boolean {
  if (s.length !== 24 || !ISO_SHAPE.test(s)) return false;
  const n = (at: number, len: number) => {
    let v = 0;
    for (let i = at; i < at + len; i++) v = v * 10 + s.charCodeAt(i) - 48;
    return v;
  };
  const year = n(0, 4);
  const month = n(5, 2);
  const day = n(8, 2);
  if (month < 1 || month > 12 || day < 1 || n(11, 2) > 23 || n(14, 2) > 59 || n(17, 2) > 59) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= (month === 2 && leap ? 29 : (DAYS_IN_MONTH[month - 1] ?? 0));
}

/** ISO-8601 UTC with millisecond precision, e.g. `2026-11-30T12:00:00.000Z`: the only time form on the wire. */
export const IsoTime = z
  .string()
  .refine(isIsoTime, 'expected a real date as ISO-8601 UTC with milliseconds (…T…:…:….sssZ)');

// A lone UTF-16 surrogate has no UTF-8 form: it would be stored as U+FFFD, not as sent.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why Postgres would refuse (or silently alter) a string, or undefined when it stores it as is: a
 * `text` value cannot hold the NUL character, and a lone surrogate is not Unicode text.
 */
export function textProblem(s: string): string | undefined {
  if (s.includes('\u0000')) return 'contains the NUL character (U+0000), which text columns cannot hold';
  if (LONE_SURROGATE.test(s)) return 'contains a lone UTF-16 surrogate, which is not Unicode text';
  return undefined;
}

/** A string Postgres stores exactly as sent. */
const StorableText = z.string().superRefine((s, ctx) => {
  const problem = textProblem(s);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

const Name = StorableText.min(1).max(200);

/**
 * One reading of one variable at one place and time (DESIGN.md, "The observation").
 * Exactly one of `value` (number or null for "no number") and `text` carries the reading.
 */
export const Observation = z
  .object({
    id: z.string().regex(/^[0-9a-f]{64}$/, 'expected a hex SHA-256 observation id'),
    source: Name,
    edge: Name,
    station: Name,
    sensor: Name.optional(),
    variable: Name,
    value: z.number().finite().nullable(),
    text: StorableText.max(4096).optional(),
    unit: StorableText.max(64),
    time: IsoTime,
    received: IsoTime,
    lat: z.number().min(-90).max(90).optional(),
    lon: z.number().min(-180).max(180).optional(),
    alt: z.number().finite().optional(),
    quality: z.array(StorableText.max(64)).max(16).optional(),
    /**
     * The W3C trace-id (32 hex digits) of the message that brought the reading, shared by every reading
     * of that message (see `trace-context.ts`). Not part of the id: the same reading sent again in
     * another message is the same observation.
     */
    trace: z
      .string()
      .refine(isTraceId, 'expected a W3C trace-id: 32 lower-case hex digits, not all zero')
      .optional(),
  })
  .strict();
export type Observation = z.infer<typeof Observation>;
