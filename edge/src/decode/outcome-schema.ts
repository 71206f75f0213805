import { z } from 'zod';

/**
 * The shape every decoder promises (types.ts), with the wire Observation's limits (names up to
 * 200 characters, text 4096, units 64, a time that has an ISO form). Tests hold every decoder to it;
 * the agent may use it to guard decoders it did not write.
 */
export const ReadingSchema = z
  .object({
    variable: z.string().min(1).max(200),
    value: z.number().finite().nullable(),
    text: z.string().max(4096).optional(),
    unit: z.string().max(64),
    timeMs: z.number().int().min(0).max(253_402_300_799_999).optional(),
    sensor: z.string().min(1).max(200).optional(),
    quality: z.array(z.string().min(1).max(64)).min(1).max(16).optional(),
  })
  .strict()
  .refine(
    (r) => (r.value === null) === (r.text !== undefined),
    'exactly one of value and text carries the reading',
  );

const Station = z.string().min(1).optional();

export const DecodeOutcomeSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('readings'),
      readings: z.array(ReadingSchema),
      skipped: z.array(z.object({ field: z.string(), reason: z.string().min(1) }).strict()),
      station: Station,
    })
    .strict(),
  z.object({ kind: z.literal('status'), state: z.string(), station: Station }).strict(),
  z.object({ kind: z.literal('ignored'), reason: z.string().min(1) }).strict(),
  z.object({ kind: z.literal('rejected'), reason: z.string().min(1) }).strict(),
]);
