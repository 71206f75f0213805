import { z } from 'zod';
import { IsoTime, Observation } from './observation.js';
import { batchLimits } from './streams.js';

const Seq = z.number().int().nonnegative();

const batchFields = {
  v: z.literal(1),
  edge: z.string().min(1),
  seq: z.tuple([Seq, Seq]),
  sent: IsoTime,
};
const seqInOrder = (b: { seq: [number, number] }) => b.seq[0] <= b.seq[1];

/** Edge -> cloud, on `fb.obs.<edge>`. `seq` is the range of buffer sequence numbers it carries. */
export const ObservationBatch = z
  .object({
    ...batchFields,
    observations: z.array(Observation).min(1).max(batchLimits.maxObservations),
  })
  .strict()
  .refine(seqInOrder, { message: 'seq[0] must not exceed seq[1]', path: ['seq'] })
  .refine((b) => b.observations.every((o) => o.edge === b.edge), {
    message: 'every observation must carry the batch edge',
    path: ['observations'],
  });
export type ObservationBatch = z.infer<typeof ObservationBatch>;

/**
 * An ObservationBatch with its observations left unchecked: a receiver checks each observation on
 * its own, so that one bad observation is set aside and the rest of its batch is kept.
 */
export const ObservationBatchEnvelope = z
  .object({
    ...batchFields,
    observations: z.array(z.unknown()).min(1).max(batchLimits.maxObservations),
  })
  .strict()
  .refine(seqInOrder, { message: 'seq[0] must not exceed seq[1]', path: ['seq'] });
export type ObservationBatchEnvelope = z.infer<typeof ObservationBatchEnvelope>;

/** Heartbeat of one edge agent, on `fb.edge.<edge>.status`. */
export const EdgeStatus = z.object({
  v: z.literal(1),
  edge: z.string().min(1),
  time: IsoTime,
  version: z.string(),
  uptimeS: z.number().nonnegative(),
  buffer: z.object({
    depth: z.number().int().nonnegative(),
    bytes: z.number().int().nonnegative(),
    capacityBytes: z.number().int().positive(),
    oldestUnsentAgeS: z.number().nonnegative().nullable(),
    dropped: z.number().int().nonnegative(),
  }),
  rates: z.object({ inPerS: z.number().nonnegative(), outPerS: z.number().nonnegative() }),
  rejected: z.number().int().nonnegative(),
  diskFreeBytes: z.number().nonnegative().nullable(),
  clock: z.enum(['synced', 'unsynced', 'unknown']),
  uplink: z.enum(['connected', 'disconnected']),
});
export type EdgeStatus = z.infer<typeof EdgeStatus>;

/** Cloud: a batch of observations was committed, on `fb.events.data`. */
export const DataAvailable = z.object({
  v: z.literal(1),
  source: z.array(z.string()),
  edge: z.string(),
  stations: z.array(z.string()),
  /** Variables in the batch (optional: older collectors did not send it); lets datasets skip unrelated batches. */
  variables: z.array(z.string()).optional(),
  start: IsoTime,
  end: IsoTime,
  count: z.number().int().nonnegative(),
  inserted: z.number().int().nonnegative(),
  batch: z.string(),
});
export type DataAvailable = z.infer<typeof DataAvailable>;

/** Cloud: a dataset window was built, on `fb.dataset.<dataset>`. */
export const DataSetAvailable = z.object({
  v: z.literal(1),
  dataset: z.string(),
  start: IsoTime,
  end: IsoTime,
  version: z.number().int().positive(),
  key: z.string(),
  rows: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  provisional: z.boolean(),
});
export type DataSetAvailable = z.infer<typeof DataSetAvailable>;
