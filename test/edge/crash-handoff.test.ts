import { describe, expect, it } from 'vitest';
import { natsPerTest, readObsStream, startEdgeProcess, startMqttLoad, waitFor } from '../harness/index.js';

const servers = natsPerTest();

/**
 * The agent's buffer and forwarder run on a thread of their own (`forward.thread`, default on): a
 * reading crosses from the MQTT thread to the buffer thread to be committed, and its PUBACK crosses
 * back. kill -9 can land while a hand-off is on its way in either direction, or while the buffer
 * thread is still starting and the sensors' re-sends pour in; none of it may lose an acknowledged
 * reading. Three sensors keep hand-offs in flight all the time, and the kills come at random moments,
 * some of them moments after a restart.
 */
describe('edge agent crash with its buffer on a thread of its own', () => {
  it('kill -9 while readings cross between the threads loses no acknowledged reading', async () => {
    const edge = await startEdgeProcess(servers.dir.path, {
      edge: 'gw-handoff',
      nats: { servers: [servers.nats.url] },
      forward: { thread: true },
      sensors: [{ topic: 'load/+station/v', decoder: { type: 'number', variable: 'x:seq', unit: '1' } }],
    });
    const stations = ['s1', 's2', 's3'];
    const perStation = 12_000;
    const loads = await Promise.all(
      stations.map((s) =>
        startMqttLoad({
          url: `mqtt://127.0.0.1:${edge.mqttPort}`,
          rate: 2000,
          maxMessages: perStation,
          topic: () => `load/${s}/v`,
          payload: (seq) => String(seq),
          maxInFlight: 400,
        }),
      ),
    );
    try {
      for (let i = 0; i < 5; i++) {
        // Half the kills soon after a start, while re-sends and the buffer thread's start overlap.
        await new Promise((r) =>
          setTimeout(r, i % 2 === 0 ? Math.random() * 400 : 800 + Math.random() * 1500),
        );
        await edge.kill();
        await new Promise((r) => setTimeout(r, 200));
        await edge.restart();
      }
      await waitFor(
        'the load to finish',
        () => (loads.every((l) => l.sent >= perStation && l.ackedCount >= perStation) ? true : undefined),
        150_000,
      ).catch((err: Error) => {
        const counts = loads.map((l) => `${l.ackedCount}/${l.sent}`).join(', ');
        throw new Error(`${err.message}: acked/sent ${counts} of ${perStation} each`);
      });
      const results = await Promise.all(loads.map((l) => l.stop()));
      await waitFor(
        'the buffer to drain',
        async () => ((await edge.status()).buffer.depth === 0 ? true : undefined),
        60_000,
      );
      const contents = await readObsStream(servers.nats.url);
      const inStream = new Set(contents.observations.map((o) => `${o.station}:${o.value}`));
      const lost = stations.flatMap((s, i) =>
        [...(results[i]?.acked ?? [])]
          .filter((seq) => !inStream.has(`${s}:${seq}`))
          .map((seq) => `${s}:${seq}`),
      );
      expect(lost).toEqual([]);
      expect(results.map((r) => r.acked.size)).toEqual(stations.map(() => perStation));
    } finally {
      await Promise.all(loads.map((l) => l.stop(1000)));
      await edge.stop();
    }
  }, 300_000);
});
