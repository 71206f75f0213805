import { subjects } from './subjects.js';

/**
 * A JetStream stream as this system needs it; adapters map it onto the client's config type.
 * Byte and age limits are defaults that fit a small server; the collector's settings override them
 * (FB_OBS_MAX_BYTES, FB_OBS_MAX_AGE, ... see cloud/src/retention/retention-settings.ts).
 */
export interface StreamSpec {
  name: string;
  subjects: string[];
  /** Keep at most this many bytes; oldest go first. */
  maxBytes: number;
  /** Drop messages older than this (ms); 0 keeps them until `maxBytes`. */
  maxAgeMs: number;
  /** Window in which a repeated `Nats-Msg-Id` is dropped (ms). Must outlast an edge's retry backoff. */
  duplicateWindowMs: number;
  /** Keep only the newest message per subject (status heartbeats). */
  maxMsgsPerSubject: number;
  replicas: number;
}

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const HOUR = 3_600_000;

export const streams = {
  OBS: {
    name: 'FB_OBS',
    subjects: [subjects.obsAll],
    maxBytes: 2 * GiB,
    maxAgeMs: 7 * 24 * HOUR,
    duplicateWindowMs: 2 * HOUR,
    maxMsgsPerSubject: -1,
    replicas: 1,
  },
  STATUS: {
    name: 'FB_STATUS',
    subjects: [subjects.edgeStatusAll],
    maxBytes: 64 * MiB,
    maxAgeMs: 0,
    duplicateWindowMs: 60_000,
    maxMsgsPerSubject: 1,
    replicas: 1,
  },
  EVENTS: {
    name: 'FB_EVENTS',
    subjects: [subjects.dataAvailable],
    maxBytes: 256 * MiB,
    maxAgeMs: 24 * HOUR,
    duplicateWindowMs: 2 * 60_000,
    maxMsgsPerSubject: -1,
    replicas: 1,
  },
  DATASETS: {
    name: 'FB_DATASETS',
    subjects: [subjects.datasetAll],
    maxBytes: 256 * MiB,
    maxAgeMs: 30 * 24 * HOUR,
    duplicateWindowMs: 2 * 60_000,
    maxMsgsPerSubject: -1,
    replicas: 1,
  },
} as const satisfies Record<string, StreamSpec>;

/** Bounds of one observation batch on the wire. */
export const batchLimits = {
  maxObservations: 500,
  maxBytes: 256 * 1024,
} as const;
