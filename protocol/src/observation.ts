import { z } from 'zod';

/** ISO-8601 UTC with millisecond precision, e.g. `2026-11-30T12:00:00.000Z`: the only time form on the wire. */
export const IsoTime = z
  .string()
  .regex(
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/,
    'expected ISO-8601 UTC with milliseconds (…T…:…:….sssZ)',
  );

const Name = z.string().min(1).max(200);

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
    text: z.string().max(4096).optional(),
    unit: z.string().max(64),
    time: IsoTime,
    received: IsoTime,
    lat: z.number().min(-90).max(90).optional(),
    lon: z.number().min(-180).max(180).optional(),
    alt: z.number().finite().optional(),
    quality: z.array(z.string().max(64)).max(16).optional(),
  })
  .strict();
export type Observation = z.infer<typeof Observation>;
