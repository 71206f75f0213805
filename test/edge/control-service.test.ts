import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  addEdge,
  CloudErrorCode,
  collectorConnectOptions,
  EdgeControlError,
  ensureStreams,
  requestEdge,
} from '@fieldbeam/cloud';
import { startControlService } from '@fieldbeam/edge';
import { controlLimits, controlServiceName, streams, subjects } from '@fieldbeam/protocol';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EdgeAgentProcess,
  type NatsServer,
  startEdgeAgentProcess,
  startNatsServer,
  type TempDir,
  tempDir,
  waitFor,
} from '../harness/index.js';

/*
 * The edge's control service against a real nats-server with per-edge nkeys and a real agent process:
 * the collector asks over NATS request/reply; the edge answers only with its own credentials.
 */

const temperature = {
  topic: 'a/+station/t',
  decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' },
};
const humidity = {
  topic: 'b/+station/h',
  decoder: { type: 'number', variable: 'relative_humidity', unit: '%' },
};

let dir: TempDir;
let nats: NatsServer;
let collector: NatsConnection;
let edge: EdgeAgentProcess;
let base: Record<string, unknown> & { edge: string };

beforeAll(async () => {
  dir = tempDir();
  const idDir = `${dir.path}/identity`;
  const added = addEdge(idDir, 'gw-ctl');
  nats = await startNatsServer({ extraConfig: readFileSync(added.files.authorization, 'utf8') });
  collector = await connect(
    collectorConnectOptions({ NATS_URL: nats.url, FB_IDENTITY_DIR: idDir, FB_DATA_DIR: dir.path }),
  );
  await ensureStreams(await jetstreamManager(collector), Object.values(streams));
  base = { edge: 'gw-ctl', nats: { servers: [nats.url], nkey_seed: added.seed } };
  edge = await startEdgeAgentProcess({ dir: dir.path, config: { ...base, sensors: [temperature] } });
  // The service starts once the uplink connects.
  await waitFor('the control service', () =>
    requestEdge(collector, 'gw-ctl', 'ping').then(
      () => true,
      () => undefined,
    ),
  );
}, 120_000);

afterAll(async () => {
  await edge?.stop();
  await collector?.close();
  await nats?.close();
  dir?.remove();
});

async function refusal(p: Promise<unknown>): Promise<EdgeControlError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EdgeControlError);
  return err as EdgeControlError;
}

describe('edge control service', () => {
  it('answers ping and status with the request id, and is discoverable under its own name', async () => {
    const ping = await requestEdge(collector, 'gw-ctl', 'ping', { id: 'p-1' });
    expect(ping).toMatchObject({ edge: 'gw-ctl', id: 'p-1' });
    expect(ping.version).toMatch(/^\d+\.\d+\.\d+/);

    const status = await requestEdge(collector, 'gw-ctl', 'status', { id: 's-1' });
    expect(status).toMatchObject({ edge: 'gw-ctl', id: 's-1', uplink: 'connected' });
    // What /healthz adds to the heartbeat.
    expect(status.buffer.policy).toBe('block');
    expect(status.autoRegister).toBeDefined();

    // The services API's discovery, on the $SRV subjects of the edge's own service name.
    const found = await collector.request(`$SRV.PING.${controlServiceName('gw-ctl')}`, '', { timeout: 5000 });
    expect(found.json()).toMatchObject({ name: 'fieldbeam-edge-gw-ctl', metadata: { edge: 'gw-ctl' } });
  });

  it('lists sensors and the recent rejects with their reasons', async () => {
    const sensors = await requestEdge(collector, 'gw-ctl', 'sensors');
    expect(sensors.count).toBe(1);
    expect(sensors.sensors[0]).toMatchObject({
      topic: 'a/+station/t',
      decoder: 'number',
      origin: 'local',
      lastReadingTime: null,
    });

    const c = await mqtt.connectAsync(edge.mqttUrl);
    try {
      await c.publishAsync('a/barn/t', 'not a number', { qos: 1 });
      await c.publishAsync('a/barn/t', '21.5', { qos: 1 });
    } finally {
      await c.endAsync();
    }
    const rejects = await waitFor('the reject kept', async () => {
      const r = await requestEdge(collector, 'gw-ctl', 'rejects', { limit: 5 });
      return r.rejects.length > 0 ? r : undefined;
    });
    expect(rejects.rejects[0]).toMatchObject({
      topic: 'a/barn/t',
      payload: 'not a number',
      truncated: false,
    });
    expect(rejects.rejects[0]?.reason.length).toBeGreaterThan(0);
    // The good reading gave the sensor its last reading time.
    const after = await requestEdge(collector, 'gw-ctl', 'sensors');
    expect(after.sensors[0]?.lastReadingTime).toEqual(expect.any(String));
  });

  it('reloads the config file and says what changed; a broken file is refused and the agent keeps its sensors', async () => {
    edge.writeConfig({ ...base, sensors: [temperature, humidity] });
    const reload = await requestEdge(collector, 'gw-ctl', 'reload', { id: 'r-1' });
    expect(reload).toMatchObject({ id: 'r-1', sensors: 2 });
    expect(reload.changes).toEqual({ added: ['b/+station/h'], removed: [], changed: [] });

    const good = readFileSync(edge.configFile, 'utf8');
    for (const broken of [
      'edge: gw-ctl\nsensors: [unclosed',
      JSON.stringify({ ...base, sensors: [{ topic: 'c/+station', decoder: { type: 'no-such-decoder' } }] }),
    ]) {
      writeFileSync(edge.configFile, broken);
      const err = await refusal(requestEdge(collector, 'gw-ctl', 'reload', { id: 'r-bad' }));
      expect(err).toMatchObject({ code: CloudErrorCode.EDGE_REFUSED, retryable: false, status: 422 });
      expect(err.message).toMatch(/invalid edge config|not valid YAML/);
      expect(err.message).toContain('running sensors are kept');
    }
    // Still running, with the last good sensors: both answer and the new topic still decodes.
    expect(edge.running).toBe(true);
    const sensors = await requestEdge(collector, 'gw-ctl', 'sensors');
    expect(sensors.sensors.map((s) => s.topic)).toEqual(['a/+station/t', 'b/+station/h']);
    writeFileSync(edge.configFile, good);
  });

  it('answers a malformed and an oversized body with an error and keeps answering', async () => {
    const ask = (op: string, body: Uint8Array | string) =>
      collector.request(subjects.control('gw-ctl', op), body, { timeout: 5000 });
    const malformed = await ask('status', '{"id": "m-1", ');
    expect(malformed.headers?.get('Nats-Service-Error-Code')).toBe('400');
    expect(malformed.headers?.get('Nats-Service-Error')).toMatch(/not JSON/);
    const unknownOption = await ask('rejects', '{"id":"m-2","limit":"all"}');
    expect(unknownOption.headers?.get('Nats-Service-Error-Code')).toBe('400');
    expect(JSON.parse(unknownOption.string())).toMatchObject({ id: 'm-2', error: { status: 400 } });
    const oversized = await ask('ping', new Uint8Array(controlLimits.maxRequestBytes * 4).fill(0x20));
    expect(oversized.headers?.get('Nats-Service-Error-Code')).toBe('413');
    expect((await refusal(requestEdge(collector, 'gw-ctl', 'rejects', { limit: 10_000 }))).code).toBe(
      CloudErrorCode.EDGE_REFUSED,
    );
    expect((await requestEdge(collector, 'gw-ctl', 'ping', { id: 'after' })).id).toBe('after');
    const metrics = await edge.metrics();
    expect(metrics?.get('fb_edge_control_requests_total{op="status",outcome="refused"}')).toBe(1);
  });

  it('keeps answering after the NATS server restarts', async () => {
    await nats.restart();
    await waitFor('the control service after the reconnect', () =>
      requestEdge(collector, 'gw-ctl', 'ping').then(
        () => true,
        () => undefined,
      ),
    );
  });

  it('fails at once with EDGE_NOT_CONNECTED for an edge that is not connected', async () => {
    // The server answers "no responders" at once: the code says so, not EDGE_TIMEOUT after 30 s.
    const err = await refusal(requestEdge(collector, 'gw-never', 'status', undefined, { timeoutMs: 30_000 }));
    expect(err).toMatchObject({ code: CloudErrorCode.EDGE_NOT_CONNECTED, retryable: true, edge: 'gw-never' });

    await edge.stop();
    const gone = await refusal(requestEdge(collector, 'gw-ctl', 'ping', undefined, { timeoutMs: 30_000 }));
    expect(gone.code).toBe(CloudErrorCode.EDGE_NOT_CONNECTED);
  });
});

describe('control service permissions', () => {
  it('stops when its subscriptions are refused and comes back once the authorization allows them', async () => {
    // An edge user as an authorization from before the control service has it: its inbox only.
    const perms = (control: string) =>
      `authorization { users = [
        { user: collector, password: c },
        { user: e, password: e, permissions: { publish: { allow: ["fb.edge.e.status"] },
          subscribe: { allow: ["_INBOX.e.>"${control}] }, allow_responses: true } } ] }`;
    const server = await startNatsServer({ extraConfig: perms('') });
    const conf = join(dirname(server.storeDir), 'nats.conf');
    const asked = await connect({ servers: server.url, user: 'collector', pass: 'c' });
    const nc = await connect({
      servers: server.url,
      user: 'e',
      pass: 'e',
      inboxPrefix: '_INBOX.e',
      maxReconnectAttempts: -1,
      reconnectTimeWait: 200,
    });
    const service = startControlService(
      Promise.resolve(nc),
      {
        edge: 'e',
        version: '1.0.0',
        startedMs: Date.now(),
        status: () => ({}),
        sensors: () => [],
        rejects: async () => [],
        reload: () => ({
          changes: { added: [], removed: [], changed: [] },
          sensors: 0,
          autoRegistered: { kept: 0, dropped: 0 },
        }),
      },
      { log: pino({ level: 'silent' }), restartDelayMs: 200 },
    );
    try {
      await service.started;
      const refused = await refusal(requestEdge(asked, 'e', 'ping'));
      expect(refused.code).toBe(CloudErrorCode.EDGE_NOT_CONNECTED);

      writeFileSync(
        conf,
        readFileSync(conf, 'utf8').replace('"_INBOX.e.>"', '"_INBOX.e.>", "fb.ctl.e.>", "$SRV.>"'),
      );
      await server.restart();
      const ping = await waitFor('the control service back', () =>
        requestEdge(asked, 'e', 'ping', { id: 'back' }).then(
          (r) => r,
          () => undefined,
        ),
      );
      expect(ping).toMatchObject({ edge: 'e', id: 'back', version: '1.0.0' });
    } finally {
      await service.close();
      await nc.close();
      await asked.close();
      await server.close();
    }
  });
});
