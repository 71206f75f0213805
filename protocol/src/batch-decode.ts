import { decodeBatchV2, isBatchV2 } from './batch-v2.js';
import { ObservationBatch, ObservationBatchV2Envelope } from './messages.js';
import { Observation } from './observation.js';
import { type Checked, checkValue, decodeMessage } from './validate.js';

/**
 * A batch message as published, v1 or v2, checked whole against the schemas: for tools and tests that
 * read the OBS stream. (The collector checks each observation on its own: `batch-check` in the cloud.)
 */
export function decodeObservationBatch(data: Uint8Array): Checked<ObservationBatch> {
  if (!isBatchV2(data)) return decodeMessage(ObservationBatch, data);
  const decoded = decodeBatchV2(data);
  if (!decoded.ok) return decoded;
  const envelope = checkValue(ObservationBatchV2Envelope, decoded.envelope);
  if (!envelope.ok) return envelope;
  const observations: Observation[] = [];
  for (const [i, o] of envelope.value.observations.entries()) {
    const checked = checkValue(Observation, o);
    if (!checked.ok) return { ok: false, reason: `observations[${i}]: ${checked.reason}` };
    if (checked.value.edge !== envelope.value.edge) {
      return { ok: false, reason: `observations[${i}]: every observation must carry the batch edge` };
    }
    observations.push(checked.value);
  }
  return { ok: true, value: { ...envelope.value, observations } };
}
