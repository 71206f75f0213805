import { z } from 'zod';
import { batchV2Limits } from './batch-v2.js';
import { IsoTime, Observation } from './observation.js';
import { batchLimits } from './streams.js';

const Seq = z.number().int().nonnegative();

/** Bounds of a batch's buffer account: one batch reports at most this many dropped ranges. */
export const bufferLimits = { maxDroppedRanges: 64 } as const;

const SeqRange = z
  .tuple([Seq, Seq])
  .refine((r) => r[0] <= r[1], { message: 'a range must not start after its end' });

/** What a batch's buffer id may be (`BatchBuffer.id`): the fast validator checks the same. */
export const BUFFER_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Which buffer file a batch's sequence numbers belong to, so that the collector can prove its
 * completeness per edge (every number from `start` on either arrived, was dropped as the edge says, or
 * is an unexplained gap). An optional field of the batch rather than a new message or a header: it is
 * validated with the batch, arrives with it or not at all, and costs some 40 bytes per batch. Collectors
 * accept batches with and without it (agents of earlier versions send none); a collector of an earlier
 * version refuses it (the batch schema is strict), so the collector is upgraded before the edges.
 */
export const BatchBuffer = z
  .object({
    /**
     * The buffer file's random id: a replaced file starts a new sequence space under a new id. Letters,
     * digits, `.`, `_` and `-` only: it is stored as text and named in logs (a NUL, which Postgres text
     * cannot hold, would fail every ingest round that carried it).
     */
    id: z.string().regex(BUFFER_ID_PATTERN, 'expected 1 to 64 letters, digits, ".", "_" or "-"'),
    /**
     * The first sequence number this id accounts for: 1 for a file made by an agent that sends this
     * field; for a file from an earlier version, the first number it handed out after the upgrade.
     */
    start: Seq.min(1),
    /**
     * Ranges of this buffer dropped unsent under `drop_oldest` and not yet reported by an acknowledged
     * batch (they may lie before or after this batch's own range). A batch repeated after a failure
     * repeats them; the collector's account is idempotent.
     */
    dropped: z.array(SeqRange).max(bufferLimits.maxDroppedRanges).optional(),
  })
  .strict();
export type BatchBuffer = z.infer<typeof BatchBuffer>;

const batchFields = {
  v: z.literal(1),
  edge: z.string().min(1),
  seq: z.tuple([Seq, Seq]),
  sent: IsoTime,
  buffer: BatchBuffer.optional(),
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

/** The envelope of a v2 batch once decoded (`batch-v2.ts`): v1's, with v2's bound on observations. */
export const ObservationBatchV2Envelope = z
  .object({
    ...batchFields,
    observations: z.array(z.unknown()).min(1).max(batchV2Limits.maxObservations),
  })
  .strict()
  .refine(seqInOrder, { message: 'seq[0] must not exceed seq[1]', path: ['seq'] });

/** Bounds of a heartbeat, so that one stays small whatever an edge has registered. */
export const statusLimits = { maxSensors: 200 } as const;

/** One sensor of an edge as its heartbeat reports it. */
export const SensorState = z.object({
  /** The MQTT topic filter (or, for an auto-registered sensor, the topic). */
  topic: z.string().max(256),
  decoder: z.string().max(64),
  station: z.string().max(128).optional(),
  /** Where it comes from: the edge's own YAML, the collector's central config, or auto-registration. */
  origin: z.enum(['local', 'central', 'auto']),
  /** The newest reading it gave since the agent started, or null. */
  lastReadingTime: IsoTime.nullable(),
});
export type SensorState = z.infer<typeof SensorState>;

/** The central sensor configuration an edge runs with. */
export const ConfigState = z.object({
  /** KV revision of the central config applied (null: none yet, local YAML only). */
  revision: z.number().int().nonnegative().nullable(),
  /** When that revision was applied. */
  appliedAt: IsoTime.nullable(),
  /** Why the newest central revision was refused (the last good one stays applied), or null. */
  error: z.string().max(1024).nullable(),
  /** The revision that was refused, when `error` is set. */
  refusedRevision: z.number().int().nonnegative().nullable(),
});
export type ConfigState = z.infer<typeof ConfigState>;

/** The ISS (Lightstreamer) source of an edge. */
export const IssState = z.object({
  state: z.string().max(32),
  lastUpdateTime: IsoTime.nullable(),
});
export type IssState = z.infer<typeof IssState>;

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
  /*
   * The fields below are optional so that a collector reads the heartbeats of older agents; an agent
   * of this version sends them all. The fleet registry keeps them as sent.
   */
  /**
   * How long until this edge's next heartbeat (its `status_interval_ms`): the collector counts it
   * offline after a few missed ones.
   */
  intervalMs: z.number().int().positive().max(86_400_000).optional(),
  /** The buffer file's id: its sequence numbers start again when the file is replaced. */
  bufferId: z.string().max(64).optional(),
  /** Sensors by origin (at most `statusLimits.maxSensors`; `sensorCount` is the full count). */
  sensors: z.array(SensorState).max(statusLimits.maxSensors).optional(),
  sensorCount: z.number().int().nonnegative().optional(),
  /** The sensor configuration in force: the central revision applied, or the error that refused one. */
  config: ConfigState.optional(),
  /** The ISS telemetry source, when configured. */
  iss: IssState.optional(),
  /** Readings the edge knows it never sent, by reason, for this buffer file (completeness). */
  gaps: z
    .object({
      droppedOldest: z.number().int().nonnegative(),
      quarantined: z.number().int().nonnegative(),
    })
    .optional(),
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
