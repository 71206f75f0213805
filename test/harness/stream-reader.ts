import { decodeObservationBatch, type Observation, streams } from '@fieldbeam/protocol';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type ConnectionOptions, connect } from '@nats-io/transport-node';

export interface StreamContents {
  messages: number;
  observations: Observation[];
  /** Observation ids seen more than once, with their count. */
  duplicateIds: Map<string, number>;
}

/** Reads every batch in the OBS stream (an ordered consumer, nothing acked or changed). */
export async function readObsStream(
  url: string,
  auth: Partial<ConnectionOptions> = {},
): Promise<StreamContents> {
  const nc = await connect({ servers: url, ...auth });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(streams.OBS.name);
    const total = info.state.messages;
    const js = jetstream(nc);
    const consumer = await js.consumers.get(streams.OBS.name, { deliver_policy: DeliverPolicy.All });
    const observations: Observation[] = [];
    const counts = new Map<string, number>();
    let messages = 0;
    if (total > 0) {
      const iter = await consumer.consume({ max_messages: 512 });
      for await (const m of iter) {
        messages++;
        const batch = decodeObservationBatch(m.data);
        if (!batch.ok) throw new Error(`bad batch in stream at ${m.seq}: ${batch.reason}`);
        for (const o of batch.value.observations) {
          observations.push(o);
          counts.set(o.id, (counts.get(o.id) ?? 0) + 1);
        }
        if (m.info.pending === 0) break;
      }
    }
    const duplicateIds = new Map([...counts].filter(([, n]) => n > 1));
    return { messages, observations, duplicateIds };
  } finally {
    await nc.close();
  }
}
