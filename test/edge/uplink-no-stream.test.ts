import { ensureStreams } from '@fieldbeam/cloud';
import { streams, subjects } from '@fieldbeam/protocol';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { EdgeErrorCode } from '../../edge/src/errors.js';
import { createJetStreamPublisher } from '../../edge/src/forward/jetstream-publisher.js';
import { startEdgeAgentProcess, startNatsServer, tempDir, waitFor } from '../harness/index.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const NO_STREAM = (edge: string) =>
  `no JetStream stream takes ${subjects.obs(edge)}; start the collector, which creates the streams (or create FB_OBS)`;

describe('an edge whose collector has not created the streams yet', () => {
  it('is told that no stream takes its subject, and publishes once the streams exist', async () => {
    // JetStream is on; only the streams are missing, as before the collector's first start.
    const nats = await startNatsServer();
    cleanups.push(() => nats.close());
    const publisher = createJetStreamPublisher({
      servers: [nats.url],
      name: 'no-stream-test',
      inboxPrefix: subjects.inbox('gw-early'),
      ackTimeoutMs: 2000,
    });
    cleanups.push(() => publisher.close());
    await waitFor('the connection', () => (publisher.connected ? true : undefined));

    const data = new TextEncoder().encode('{}');
    const failure = await publisher.publish(subjects.obs('gw-early'), data, 'id-1').then(
      () => undefined,
      (err: unknown) => err as Error & { code?: string; retryable?: boolean },
    );
    expect(failure?.message).toContain(NO_STREAM('gw-early'));
    expect(failure?.message).not.toContain('jetstream is not enabled');
    expect(failure?.code).toBe(EdgeErrorCode.NO_STREAM);
    expect(failure?.retryable).toBe(true);

    const nc = await connect({ servers: nats.url });
    await ensureStreams(await jetstreamManager(nc), Object.values(streams));
    await nc.close();
    expect(await publisher.publish(subjects.obs('gw-early'), data, 'id-2')).toEqual({ duplicate: false });
  });

  it('the agent logs the cause, not "jetstream is not enabled", and forwards its buffer once the streams exist', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const nats = await startNatsServer();
    cleanups.push(() => nats.close());
    const agent = await startEdgeAgentProcess({
      dir: dir.path,
      config: {
        edge: 'gw-early',
        nats: { servers: [nats.url], ack_timeout_ms: 2000 },
        sensors: [
          { topic: 's/+station/t', decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' } },
        ],
      },
    });
    cleanups.push(() => agent.stop());
    const sensor = await mqtt.connectAsync(agent.mqttUrl, { clientId: 'no-stream-sensor' });
    cleanups.push(() => sensor.endAsync());
    await sensor.publishAsync('s/field/t', '21.5', { qos: 1 });

    const output = () => agent.process?.output() ?? '';
    await waitFor('the no-stream warning', () =>
      output().includes(NO_STREAM('gw-early')) ? true : undefined,
    );
    expect(output()).not.toContain('jetstream is not enabled');
    expect(output()).toContain(`"code":"${EdgeErrorCode.NO_STREAM}"`);

    const nc = await connect({ servers: nats.url });
    cleanups.push(() => nc.close());
    const jsm = await jetstreamManager(nc);
    await ensureStreams(jsm, Object.values(streams));
    await waitFor(
      'the buffered reading in FB_OBS',
      async () => ((await jsm.streams.info(streams.OBS.name)).state.messages >= 1 ? true : undefined),
      60_000,
    );
    await waitFor('an empty buffer', async () =>
      (await agent.status())?.buffer.depth === 0 ? true : undefined,
    );
  });
});
