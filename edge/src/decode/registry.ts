import { z } from 'zod';
import { jsonFieldsDecoder } from './json-fields.js';
import { numberDecoder } from './number.js';
import type { Decoder } from './types.js';

const VariableUnit = z.object({ variable: z.string().min(1), unit: z.string() });

/** How a sensor's payloads are decoded, as written in the agent's config (`sensors[].decoder`). */
export const DecoderSpec = z.discriminatedUnion('type', [
  z.object({ type: z.literal('number'), variable: z.string().min(1), unit: z.string() }).strict(),
  z.object({ type: z.literal('json'), fields: z.record(z.string(), VariableUnit) }).strict(),
]);
export type DecoderSpec = z.infer<typeof DecoderSpec>;

export function createDecoder(spec: DecoderSpec): Decoder {
  switch (spec.type) {
    case 'number':
      return numberDecoder(spec);
    case 'json':
      return jsonFieldsDecoder(spec);
  }
}
