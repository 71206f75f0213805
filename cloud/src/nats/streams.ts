import type { StreamSpec } from '@fieldbeam/protocol';
import { DiscardPolicy, type JetStreamManager, StorageType, type StreamConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';

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

/** Creates each stream, or updates it to the spec, so whoever starts first sets them up. */
export async function ensureStreams(jsm: JetStreamManager, specs: readonly StreamSpec[]): Promise<void> {
  for (const spec of specs) {
    const config = toConfig(spec);
    try {
      await jsm.streams.info(spec.name);
      await jsm.streams.update(spec.name, config);
    } catch (err) {
      if ((err as Error).message.includes('stream not found')) await jsm.streams.add(config);
      else throw err;
    }
  }
}
