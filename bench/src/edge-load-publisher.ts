/**
 * MQTT QoS 1 load for the edge benchmark, run as its own process (`node edge-load-publisher.js ARGS`).
 *
 * Connects, prints `ready`, starts on `go` (stdin), and publishes uniquely numbered readings with
 * at most `window` unacknowledged: as fast as PUBACKs allow (`rate` 0) or paced to `rate` msg/s in
 * 1 ms steps. Bounded by `durationMs` and `maxMessages`; `stop` on stdin ends it early. Prints
 * `progress` every 200 ms and a final `done` with publish->PUBACK latency and, when `recordTimes`,
 * the publish time of every sequence number (for the parent to match against JetStream PubAcks).
 */
import mqtt from 'mqtt';
import { emit, onStdinLine } from './lib/child.js';
import { monoMs, summarize } from './lib/stats.js';

export interface PublisherArgs {
  url: string;
  /** Station id; the topic is `bench/<id>/env`. */
  id: string;
  window: number;
  /** Messages per second; 0 = as fast as the window allows. */
  rate: number;
  durationMs: number;
  maxMessages: number;
  recordTimes: boolean;
  /**
   * The socket without Nagle (mqtt.js leaves it on): with it, a message published while the one
   * before is not yet acknowledged by TCP waits for that ACK, which the broker sends with its PUBACK,
   * so paced latencies would measure the publisher's own socket (about 1.3 ms at the median at
   * 1,000 msg/s, measured here).
   */
  noDelay?: boolean;
}

/** The IoT payload of perf-baselines.md (~200 B); `seq` is what the agent's sensor maps. */
function benchPayload(seq: number, ts: number): string {
  return `{"sensor":"greenhouse/t2","ts":${ts},"value":21.45,"unit":"degC","seq":${seq},"site":"edge-gw-0001","quality":"good","meta":{"fw":"1.4.2","rssi":-67,"battery":3.71,"src":"lora"},"pad":"xxxxx"}`;
}

async function main(args: PublisherArgs): Promise<void> {
  const topic = `bench/${args.id}/env`;
  const client = await mqtt.connectAsync(args.url, {
    clientId: `bench-${args.id}-${process.pid}`,
    clean: true,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  });
  if (args.noDelay) (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  let failed = 0;
  client.on('error', () => {
    failed++;
  });
  const sentAt = args.recordTimes ? new Float64Array(args.maxMessages) : undefined;
  // publish->PUBACK, sampled (every message when recording times, else every 16th).
  const pubackMs: number[] = [];
  let sent = 0;
  let acked = 0;
  let errors = 0;
  let inFlight = 0;
  let stopped = false;
  let startedAt = 0;
  let endedAt = 0;
  let finish: () => void = () => {};
  let halted: () => void = () => {};
  const stoppedP = new Promise<void>((r) => {
    halted = r;
  });
  const finished = new Promise<void>((r) => {
    finish = r;
  });

  const publishOne = () => {
    const seq = sent++;
    inFlight++;
    const t0 = monoMs();
    if (sentAt) sentAt[seq] = t0;
    const sample = sentAt !== undefined || (seq & 15) === 0;
    client.publish(topic, benchPayload(seq, Date.now()), { qos: 1 }, (err) => {
      inFlight--;
      if (err) errors++;
      else {
        acked++;
        if (sample) pubackMs.push(monoMs() - t0);
      }
      if (args.rate === 0) pump();
      if (sent >= args.maxMessages && inFlight === 0) stop();
      if (stopped && inFlight === 0) finish();
    });
  };
  const canSend = () => !stopped && sent < args.maxMessages && inFlight < args.window;
  const pump = () => {
    while (canSend()) publishOne();
  };

  const progress = setInterval(() => void emit({ type: 'progress', sent, acked, errors, t: monoMs() }), 200);
  let pacer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    endedAt = monoMs();
    if (pacer) clearInterval(pacer);
    halted();
    if (inFlight === 0) finish();
  };

  await new Promise<void>((resolve) => {
    onStdinLine((line) => {
      if (line === 'go') resolve();
      if (line === 'stop') stop();
    });
    void emit({ type: 'ready' });
  });
  process.stdin.on('end', stop);
  startedAt = monoMs();
  const limit = setTimeout(stop, args.durationMs);
  if (args.rate === 0) pump();
  else {
    const startPerf = performance.now();
    pacer = setInterval(() => {
      const due = Math.min(
        args.maxMessages,
        Math.floor(((performance.now() - startPerf) * args.rate) / 1000),
      );
      while (sent < due && canSend()) publishOne();
      if (sent >= args.maxMessages) stop();
    }, 1);
  }
  await stoppedP;
  // Outstanding acks get a bounded grace period after the stop.
  await Promise.race([finished, new Promise((r) => setTimeout(r, 10_000))]);
  clearTimeout(limit);
  clearInterval(progress);
  await client.endAsync(true).catch(() => {});
  await emit({
    type: 'done',
    sent,
    acked,
    errors,
    connectionErrors: failed,
    startedAt,
    endedAt,
    puback: summarize(pubackMs),
    ...(sentAt ? { sentAt: Array.from(sentAt.subarray(0, sent), (v) => Math.round(v * 1000) / 1000) } : {}),
  });
}

main(JSON.parse(process.argv[2] ?? '{}') as PublisherArgs).then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`publisher: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
