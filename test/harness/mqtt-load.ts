import mqtt from 'mqtt';

export interface LoadResult {
  /** Sequence numbers whose PUBACK arrived. */
  acked: Set<number>;
  sent: number;
  errors: number;
}

export interface MqttLoad {
  /** Acknowledged so far. */
  readonly ackedCount: number;
  readonly sent: number;
  /** Stops publishing, waits up to `drainMs` for outstanding acks, disconnects. */
  stop(drainMs?: number): Promise<LoadResult>;
}

/**
 * Publishes uniquely numbered readings at QoS 1 at a steady rate and records which were acknowledged.
 * Bounded by `maxMessages` and by `maxInFlight` unacknowledged messages (a real sensor's window).
 * The client reconnects on its own and resends what was not acknowledged.
 */
export async function startMqttLoad(opts: {
  url: string;
  rate: number;
  maxMessages: number;
  topic: (seq: number) => string;
  payload: (seq: number) => string;
  maxInFlight?: number;
  clientId?: string;
  username?: string;
  password?: string;
}): Promise<MqttLoad> {
  const client = await mqtt.connectAsync(opts.url, {
    clientId: opts.clientId ?? `fb-load-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
    clean: false,
    reconnectPeriod: 200,
    connectTimeout: 5000,
    ...(opts.username ? { username: opts.username, password: opts.password ?? '' } : {}),
  });
  client.on('error', () => {});
  // mqtt.js resends unacknowledged messages after a reconnect and emits 'connect' only when done;
  // publishing new ones before that can reuse a message id still held by a resend, which mqtt.js
  // then silently skips. A real sensor waits for its session too.
  let ready = true;
  client.on('close', () => {
    ready = false;
  });
  client.on('connect', () => {
    ready = true;
  });
  const acked = new Set<number>();
  const maxInFlight = opts.maxInFlight ?? 2000;
  let sent = 0;
  let errors = 0;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  const perTick = Math.max(1, Math.round(opts.rate / 100));
  const timer = setInterval(() => {
    for (let i = 0; ready && i < perTick && sent < opts.maxMessages && inFlight < maxInFlight; i++) {
      const seq = sent++;
      inFlight++;
      const p = client
        .publishAsync(opts.topic(seq), opts.payload(seq), { qos: 1 })
        .then(
          () => {
            acked.add(seq);
          },
          () => {
            errors++;
          },
        )
        .finally(() => {
          inFlight--;
          pending.delete(p);
        });
      pending.add(p);
    }
  }, 10);
  return {
    get ackedCount() {
      return acked.size;
    },
    get sent() {
      return sent;
    },
    async stop(drainMs = 60_000) {
      clearInterval(timer);
      await Promise.race([Promise.allSettled([...pending]), new Promise((r) => setTimeout(r, drainMs))]);
      await client.endAsync(true).catch(() => {});
      return { acked, sent, errors };
    },
  };
}
