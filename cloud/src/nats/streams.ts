import type { StreamSpec } from '@fieldbeam/protocol';
import { DiscardPolicy, type JetStreamManager, StorageType, type StreamConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { CloudError, CloudErrorCode } from '../errors.js';

function toConfig(spec: StreamSpec): Partial<StreamConfig> & { name: string } {
  return {
    name: spec.name,
    subjects: [...spec.subjects],
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_bytes: spec.maxBytes,
    max_age: nanos(spec.maxAgeMs),
    duplicate_window: nanos(spec.duplicateWindowMs),
    max_msgs_per_subject: spec.maxMsgsPerSubject,
    num_replicas: spec.replicas,
  };
}

/** What `ensureStreams` did to one stream: created it, or changed these fields (old and new value). */
export interface StreamChange {
  stream: string;
  created: boolean;
  changed: Record<string, { from: unknown; to: unknown }>;
}

/** The limits compared with an existing stream's; a difference is applied by an update. */
const COMPARED = [
  'subjects',
  'max_bytes',
  'max_age',
  'duplicate_window',
  'max_msgs_per_subject',
  'num_replicas',
] as const;

/**
 * Creates each stream, or updates an existing one whose limits differ from the spec (a setting changed
 * since it was made), so whoever starts first sets them up. Returns what it created or changed.
 */
export async function ensureStreams(
  jsm: JetStreamManager,
  specs: readonly StreamSpec[],
): Promise<StreamChange[]> {
  const changes: StreamChange[] = [];
  for (const spec of specs) {
    const config = toConfig(spec);
    let current: Partial<StreamConfig>;
    try {
      current = (await jsm.streams.info(spec.name)).config;
    } catch (err) {
      if (!(err as Error).message.includes('stream not found')) throw err;
      await jsm.streams.add(config).catch((e: unknown) => {
        throw explainReplicas(e, spec);
      });
      changes.push({ stream: spec.name, created: true, changed: {} });
      continue;
    }
    const changed: StreamChange['changed'] = {};
    for (const field of COMPARED) {
      const from = current[field];
      const to = config[field];
      if (JSON.stringify(from) !== JSON.stringify(to)) changed[field] = { from, to };
    }
    if (Object.keys(changed).length === 0) continue;
    await jsm.streams.update(spec.name, config).catch((e: unknown) => {
      throw explainReplicas(e, spec);
    });
    changes.push({ stream: spec.name, created: false, changed });
  }
  return changes;
}

/**
 * A stream refused for its replica count (a single server takes 1; a cluster needs as many JetStream
 * nodes up as replicas) explained in terms of the setting; any other error as it is.
 */
function explainReplicas(err: unknown, spec: StreamSpec): unknown {
  const message = (err as Error)?.message ?? String(err);
  if (spec.replicas <= 1 || !/replicas|insufficient resources|no suitable peers/i.test(message)) return err;
  return new CloudError(
    CloudErrorCode.CONFIG_INVALID,
    `NATS refused stream ${spec.name} with ${spec.replicas} replicas (${message}): FB_STREAM_REPLICAS must be 1 ` +
      'on a single nats-server, and at most the number of JetStream nodes of a cluster (deploy/nats/cluster-node.conf)',
    false,
    { cause: err },
  );
}
