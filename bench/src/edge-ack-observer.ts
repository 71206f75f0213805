import { decodeObservationBatch } from '@fieldbeam/protocol';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { monoMs } from './lib/stats.js';

/**
 * Watches, from outside the agent, when each reading's JetStream PubAck goes out.
 *
 * The agent publishes a batch to `fb.obs.<edge>` as a request whose reply subject is its inbox;
 * JetStream answers there with the PubAck once the batch is stored. A core NATS connection that
 * subscribes to both `fb.obs.<edge>` and `_INBOX.>` (nothing restricts it in the bench server)
 * sees every batch with its reply subject, then the PubAck sent to that subject: the PubAck time of
 * each reading (station + sequence number) is when the copy of its ack arrives here, at the same
 * moment the agent gets its own.
 */
export class AckObserver {
  /** `station:seq` -> wall time (ms) the PubAck was seen. */
  readonly ackedAt = new Map<string, number>();
  private readonly byReply = new Map<string, string[]>();
  /** PubAcks that arrived before their batch (possible across server goroutines). */
  private readonly early = new Map<string, number>();
  batches = 0;
  errors = 0;
  private constructor(private readonly nc: NatsConnection) {}

  static async start(url: string, edge: string): Promise<AckObserver> {
    const nc = await connect({ servers: url, name: 'fieldbeam-bench-observer' });
    const o = new AckObserver(nc);
    nc.subscribe(`fb.obs.${edge}`, {
      callback: (_err, msg) => {
        if (!msg.reply) return;
        // v1 (JSON) or v2 (columns, compressed): whatever the agent is configured to send.
        const body = decodeObservationBatch(msg.data);
        if (!body.ok) {
          o.errors++;
          return;
        }
        const keys = body.value.observations.map((ob) => `${ob.station}:${ob.value}`);
        o.batches++;
        const t = o.early.get(msg.reply);
        if (t !== undefined) {
          o.early.delete(msg.reply);
          for (const k of keys) o.ackedAt.set(k, t);
        } else o.byReply.set(msg.reply, keys);
      },
    });
    nc.subscribe('_INBOX.>', {
      callback: (_err, msg) => {
        const t = monoMs();
        const text = msg.string();
        if (!text.includes('"stream"') || text.includes('"error"')) {
          if (text.includes('"error"')) o.errors++;
          return;
        }
        const keys = o.byReply.get(msg.subject);
        if (keys) {
          o.byReply.delete(msg.subject);
          for (const k of keys) o.ackedAt.set(k, t);
        } else if (o.early.size < 100_000) o.early.set(msg.subject, t);
      },
    });
    await nc.flush();
    return o;
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}
