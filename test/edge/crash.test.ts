import { describe, expect, it } from 'vitest';
import { natsPerTest, readObsStream, startEdgeProcess, startMqttLoad, waitFor } from '../harness/index.js';

const RATE = 2000;
const servers = natsPerTest();

describe('edge agent crash', () => {
  it('kill -9 at random moments mid-stream loses no acknowledged reading', async () => {
    const edge = await startEdgeProcess(servers.dir.path, {
      edge: 'gw-crash',
      nats: { servers: [servers.nats.url] },
      sensors: [{ topic: 'load/+station/v', decoder: { type: 'number', variable: 'x:seq', unit: '1' } }],
    });
    const total = RATE * 12;
    const load = await startMqttLoad({
      url: `mqtt://127.0.0.1:${edge.mqttPort}`,
      rate: RATE,
      maxMessages: total,
      topic: () => 'load/s1/v',
      payload: (seq) => String(seq),
      maxInFlight: 500,
    });
    try {
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 1500 + Math.random() * 1500));
        await edge.kill();
        await new Promise((r) => setTimeout(r, 300));
        await edge.restart();
      }
      await waitFor(
        'the load to finish',
        () => (load.sent >= total && load.ackedCount >= total ? true : undefined),
        120_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}: sent ${load.sent}, acked ${load.ackedCount} of ${total}`);
      });
      const result = await load.stop();
      await waitFor(
        'the buffer to drain',
        async () => ((await edge.status()).buffer.depth === 0 ? true : undefined),
        60_000,
      );
      const contents = await readObsStream(servers.nats.url);
      const inStream = new Set(contents.observations.map((o) => o.value));
      const lost = [...result.acked].filter((seq) => !inStream.has(seq));
      expect(lost).toEqual([]);
      expect(result.acked.size).toBe(total);
    } finally {
      await load.stop(1000);
      await edge.stop();
    }
  }, 240_000);
});
