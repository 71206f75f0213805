import { execFileSync } from 'node:child_process';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type EdgeAgentProcess,
  freePort,
  type Mosquitto,
  startEdgeAgentProcess,
  startMosquitto,
  type TempDir,
  tempDir,
  waitFor,
} from '../harness/index.js';

/**
 * Retained state, as ESPHome, Tasmota and Zigbee2MQTT publish it by default. A broker sends the
 * retained message of every topic a subscription matches each time the agent subscribes, so without
 * a memory of what was stored every start of an agent in external mode stored the same reading again,
 * each time with a new receipt time. The agent's uplink points nowhere here, so what it stores stays
 * in its buffer, where the test counts it (`buffer.depth`).
 */

const sensors = [
  {
    topic: 'home/+station/temperature',
    decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' },
  },
];

let dir: TempDir | undefined;
let mosquitto: Mosquitto | undefined;
let agent: EdgeAgentProcess | undefined;
afterEach(async () => {
  await agent?.stop();
  await mosquitto?.close();
  dir?.remove();
  agent = undefined;
  mosquitto = undefined;
  dir = undefined;
});

/** The agent's counters that say what became of the messages it took (0 when absent). */
async function counts(edge: EdgeAgentProcess) {
  const m = await edge.metrics();
  return {
    readings: m?.get('fb_edge_readings_total{source="mqtt"}') ?? 0,
    repeats: m?.get('fb_edge_mqtt_retained_repeat_total') ?? 0,
  };
}

/** Waits until the agent's counters since its start are `want`, then returns its buffer depth. */
async function settled(edge: EdgeAgentProcess, want: { readings: number; repeats: number }) {
  await waitFor(`readings ${want.readings}, repeats ${want.repeats}`, async () => {
    const c = await counts(edge);
    return c.readings === want.readings && c.repeats === want.repeats ? true : undefined;
  });
  const status = await edge.status();
  return status?.buffer.depth;
}

const publishRetained = (broker: Mosquitto, topic: string, value: string) =>
  execFileSync('mosquitto_pub', ['-p', String(broker.port), '-r', '-q', '1', '-t', topic, '-m', value]);

async function unreachableNats(): Promise<string> {
  return `nats://127.0.0.1:${await freePort()}`;
}

describe('retained MQTT messages', () => {
  it('external broker: three start/stop cycles store a retained reading once; a new retained value adds exactly one', async () => {
    dir = tempDir('fb-retained-');
    mosquitto = await startMosquitto();
    publishRetained(mosquitto, 'home/kitchen/temperature', '20.5');
    agent = await startEdgeAgentProcess({
      dir: dir.path,
      config: {
        edge: 'gw-ret',
        nats: { servers: [await unreachableNats()] },
        mqtt: { mode: 'external', url: mosquitto.url },
        sensors,
      },
    });
    // First start: the replay on subscribe is the first the agent sees of it, and is stored.
    expect(await settled(agent, { readings: 1, repeats: 0 })).toBe(1);
    for (let cycle = 0; cycle < 3; cycle++) {
      await agent.stop();
      await agent.start();
      expect(await settled(agent, { readings: 0, repeats: 1 })).toBe(1);
    }

    // A new retained value while the agent runs arrives live (RETAIN cleared) and is stored once (the
    // counters are those of this process, whose start replayed 20.5)...
    publishRetained(mosquitto, 'home/kitchen/temperature', '21.0');
    expect(await settled(agent, { readings: 1, repeats: 1 })).toBe(2);
    await agent.stop();
    // ...and one published while the agent is down comes from its session's queue, then as the
    // replay on subscribe: stored once too.
    publishRetained(mosquitto, 'home/kitchen/temperature', '21.5');
    await agent.start();
    expect(await settled(agent, { readings: 1, repeats: 1 })).toBe(3);
    await agent.stop();
    await agent.start();
    expect(await settled(agent, { readings: 0, repeats: 1 })).toBe(3);
  });

  it('embedded broker: subscribers getting the retained message do not store it again; a device publishing again does', async () => {
    dir = tempDir('fb-retained-');
    agent = await startEdgeAgentProcess({
      dir: dir.path,
      config: { edge: 'gw-ret-emb', nats: { servers: [await unreachableNats()] }, sensors },
    });
    const device = await mqtt.connectAsync(agent.mqttUrl, { clientId: 'esphome-kitchen' });
    await device.publishAsync('home/kitchen/temperature', '20.5', { qos: 1, retain: true });
    expect(await settled(agent, { readings: 1, repeats: 0 })).toBe(1);
    // The agent takes what devices publish, not what its broker replays to subscribers.
    for (let i = 0; i < 3; i++) {
      const dashboard = await mqtt.connectAsync(agent.mqttUrl, { clientId: `dashboard-${i}` });
      const got = new Promise<boolean>((resolve) =>
        dashboard.once('message', (_t, _p, packet) => resolve(packet.retain)),
      );
      await dashboard.subscribeAsync('home/#', { qos: 1 });
      expect(await got).toBe(true);
      await dashboard.endAsync();
    }
    expect(await settled(agent, { readings: 1, repeats: 0 })).toBe(1);
    // A device that reconnects and publishes its state again has sent a new message: a new reading.
    await device.endAsync();
    const again = await mqtt.connectAsync(agent.mqttUrl, { clientId: 'esphome-kitchen' });
    await again.publishAsync('home/kitchen/temperature', '20.5', { qos: 1, retain: true });
    expect(await settled(agent, { readings: 2, repeats: 0 })).toBe(2);
    await again.endAsync();
  });
});
