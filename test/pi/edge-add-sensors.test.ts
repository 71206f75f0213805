/**
 * The edge `fieldbeam-cloud edge add --url` provisions, as a Pi owner gets it: the generated config
 * passes the agent's own `check`, the agent runs with it, and a device elsewhere on the network
 * (here: another loopback address than the agent's 127.0.0.1) logs in with the printed MQTT
 * credentials and its Zigbee2MQTT and Tasmota readings reach NATS with no further editing.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectorSeed, ensureStreams, FIRMWARE_TOPICS, openEnrollment } from '@fieldbeam/cloud';
import { parseTopicPattern } from '@fieldbeam/edge';
import { streams } from '@fieldbeam/protocol';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, nkeyAuthenticator } from '@nats-io/transport-node';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  builtCli,
  freePort,
  type NatsServer,
  readObsStream,
  type Spawned,
  spawnProcess,
  startNatsServer,
  type TempDir,
  tempDir,
  waitFor,
  waitForPort,
} from '../harness/index.js';

/** One message per firmware in its default layout, and the station and value that must arrive. */
const READINGS: Record<string, { payload: () => string; station: string; value: number }> = {
  'zigbee2mqtt/kitchen': {
    payload: () => JSON.stringify({ temperature: 21.5, humidity: 40 }),
    station: 'kitchen',
    value: 21.5,
  },
  'tele/balcony/SENSOR': {
    payload: () =>
      JSON.stringify({
        Time: new Date().toISOString().slice(0, 19),
        AM2301: { Temperature: 12.25, Humidity: 70 },
      }),
    station: 'balcony',
    value: 12.25,
  },
  'shellies/shellyht-1/sensor/temperature': { payload: () => '5.5', station: 'shellyht-1', value: 5.5 },
  'node1/sensor/temp/state': { payload: () => '19.75', station: 'node1', value: 19.75 },
};
const enc = (s: string) => new TextEncoder().encode(s);
/** Not the agent's 127.0.0.1: a broker bound to loopback only would refuse it. */
const DEVICE_HOST = '127.0.0.2';

let dir: TempDir;
let nats: NatsServer;
let agent: Spawned | undefined;
let mqttPort: number;
let printed: string;
let credentials: { username: string; password: string };
let env: NodeJS.ProcessEnv & { FB_IDENTITY_DIR: string };
let collectorAuth: { authenticator: ReturnType<typeof nkeyAuthenticator> };

function cloud(args: string[], env: NodeJS.ProcessEnv) {
  return spawnSync(process.execPath, [builtCli.cloud, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
}

/**
 * What the install link gives the Pi (its config and seed), opened with the token from the link
 * edge add printed, from the enrollment file it names: the Pi's files without a collector to fetch from.
 */
function enrolled(printed: string): { config: string; seed: string } {
  const file = /^enrollment (\S+): /m.exec(printed)?.[1];
  const token = /^one-line install .*: curl -fsSL \S+\/edge\/install\/(\S+) \| sudo sh$/m.exec(printed)?.[1];
  expect(file && token, printed).toBeTruthy();
  const { secret } = openEnrollment(token as string, readFileSync(file as string, 'utf8'));
  return { config: secret.config, seed: secret.seed };
}

/** The agent's own loader, as the first-boot script runs it: `fieldbeam-edge check --config`. */
function edgeCheck(configFile: string): void {
  const check = spawnSync(process.execPath, [builtCli.edge, 'check', '--config', configFile], {
    encoding: 'utf8',
  });
  expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
}

beforeAll(async () => {
  dir = tempDir();
  const releases = join(dir.path, 'releases');
  mkdirSync(releases);
  const deb = 'fieldbeam-edge_0.1.0_arm64.deb';
  writeFileSync(join(releases, deb), 'a package');
  writeFileSync(
    join(releases, 'release.json'),
    JSON.stringify({
      version: '0.1.0',
      deb: { file: deb, sha256: createHash('sha256').update('a package').digest('hex') },
      bundle: { file: 'fieldbeam-edge-0.1.0-linux-arm64.tar.zst', sha256: 'b'.repeat(64) },
    }),
  );
  mqttPort = await freePort();
  const userData = join(dir.path, 'gw-lan.user-data');
  env = {
    FB_DATA_DIR: join(dir.path, 'collector'),
    FB_IDENTITY_DIR: join(dir.path, 'identity'),
    FB_RELEASES_DIR: releases,
    FB_HTTP_HOST: '0.0.0.0',
  };
  const r = cloud(
    [
      ...[
        'edge',
        'add',
        'gw-lan',
        '--url',
        'http://collector.lan:8080',
        '--nats',
        'nats://collector.lan:4222',
      ],
      ...['--out', userData, '--mqtt-port', String(mqttPort)],
    ],
    env,
  );
  expect(r.status, r.stderr).toBe(0);
  printed = r.stdout;
  // With --url the seed is only in the enrollment the install link opens, never printed.
  expect(printed).not.toMatch(/SU[A-Z2-7]{56}/);
  const mqttLine = /MQTT for sensors .*: mqtt:\/\/<the Pi>:\d+ user (\S+) password (\S+)/.exec(printed);
  expect(mqttLine, printed).toBeTruthy();
  credentials = { username: mqttLine?.[1] as string, password: mqttLine?.[2] as string };

  nats = await startNatsServer({
    extraConfig: readFileSync(join(env.FB_IDENTITY_DIR, 'nats-authorization.conf'), 'utf8'),
  });
  collectorAuth = { authenticator: nkeyAuthenticator(enc(collectorSeed(env.FB_IDENTITY_DIR))) };
  const nc = await connect({ servers: nats.url, ...collectorAuth });
  await ensureStreams(await jetstreamManager(nc), Object.values(streams));
  await nc.close();

  // The Pi's files, as the install link writes them. Only what differs between a Pi and this test
  // changes: the folders, this test's NATS port, a free status port, no NTP to wait for.
  const pi = enrolled(printed);
  expect(pi.seed).toMatch(/^SU[A-Z2-7]{56}$/);
  expect(readFileSync(userData, 'utf8')).not.toContain(pi.seed);
  const seedFile = join(dir.path, 'edge.nk');
  writeFileSync(seedFile, `${pi.seed}\n`, { mode: 0o600 });
  const config = parse(pi.config);
  expect(config.mqtt.host).toBe('0.0.0.0');
  const configFile = join(dir.path, 'edge.yaml');
  writeFileSync(
    configFile,
    stringify({
      ...config,
      data_dir: join(dir.path, 'edge-data'),
      nats: { ...config.nats, servers: [nats.url], nkey_seed_file: seedFile },
      http: { host: '127.0.0.1', port: await freePort() },
      clock: { sync_check: 'none' },
    }),
  );
  mkdirSync(join(dir.path, 'edge-data'));

  edgeCheck(configFile);

  agent = spawnProcess(process.execPath, [builtCli.edge, 'run', '--config', configFile], {
    env: { ...process.env, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn' },
  });
  await waitForPort(mqttPort, 30_000, DEVICE_HOST).catch((err: Error) => {
    throw new Error(`${err.message}\n${agent?.output()}`);
  });
});

afterAll(async () => {
  await agent?.kill();
  await nats?.close();
  dir?.remove();
});

describe('edge add --url: a device pointed at the Pi delivers readings with no further editing', () => {
  it('prints the MQTT user and password once, and auto-registers the firmware topics', () => {
    expect(credentials.username).toBe('sensors');
    expect(credentials.password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(printed.split(credentials.password)).toHaveLength(2);
    // Each firmware's conventional reading topics are under one of the generated filters.
    for (const topic of Object.keys(READINGS))
      expect(
        FIRMWARE_TOPICS.some((f) => parseTopicPattern(f).match(topic)),
        topic,
      ).toBe(true);
  });

  it('takes Zigbee2MQTT, Tasmota, Shelly and ESPHome readings from a device on another address, with the printed credentials', async () => {
    const device = await mqtt.connectAsync(`mqtt://${DEVICE_HOST}:${mqttPort}`, {
      ...credentials,
      reconnectPeriod: 0,
    });
    for (const [topic, r] of Object.entries(READINGS))
      await device.publishAsync(topic, r.payload(), { qos: 1 });
    await device.endAsync();
    await waitFor('every reading in the OBS stream', async () => {
      const { observations } = await readObsStream(nats.url, collectorAuth);
      const missing = Object.values(READINGS).filter(
        (r) => !observations.some((o) => o.station === r.station && o.value === r.value),
      );
      return missing.length === 0 ? true : undefined;
    });
  });

  it('refuses a wrong password and no credentials', async () => {
    for (const auth of [{ ...credentials, password: `${credentials.password}x` }, {}]) {
      await expect(
        mqtt.connectAsync(`mqtt://${DEVICE_HOST}:${mqttPort}`, {
          ...auth,
          reconnectPeriod: 0,
          connectTimeout: 10_000,
        }),
      ).rejects.toThrow(/Not authorized|Bad username or password/i);
    }
  });

  it('writes configs the agent accepts for the sensors given with --sensor', () => {
    const out = join(dir.path, 'gw-listed.user-data');
    const r = cloud(
      [
        ...[
          'edge',
          'add',
          'gw-listed',
          '--url',
          'http://collector.lan:8080',
          '--nats',
          'nats://collector.lan:4222',
        ],
        ...['--out', out, '--sensor', 'garden/+station/t=number:air_temperature:degC'],
        ...['--sensor', 'meters/+station=json', '--sensor', 'zigbee2mqtt/#=zigbee2mqtt'],
        ...['--sensor', 'tele/+/SENSOR=tasmota', '--sensor', 'shellies/#=shelly', '--sensor', 'esp/#'],
      ],
      env,
    );
    expect(r.status, r.stderr).toBe(0);
    const configFile = join(dir.path, 'listed.yaml');
    writeFileSync(configFile, enrolled(r.stdout).config);
    edgeCheck(configFile);
  });

  it('as a command: a failing edge add exits non-zero naming the problem and changes nothing; the retry needs no --rotate', () => {
    // Every file below the identity folder (enrollments/ included), with its content.
    const identity = () =>
      (readdirSync(env.FB_IDENTITY_DIR, { recursive: true }) as string[])
        .sort()
        .map((f) => join(env.FB_IDENTITY_DIR, f))
        .map((f) => `${f}:${statSync(f).isDirectory() ? 'dir' : readFileSync(f, 'base64')}`);
    const before = identity();
    const out = join(dir.path, 'pi-02.user-data');
    const base = ['edge', 'add', 'pi-02', '--url', 'http://collector.lan:8080', '--out', out];
    const usage = cloud(base, env);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('--url needs --nats');
    const noRelease = cloud([...base, '--nats', 'nats://c:4222', '--releases', join(dir.path, 'none')], env);
    expect(noRelease.status).toBe(1);
    expect(noRelease.stderr).toMatch(/no edge release in .*none.*nothing was registered or written/);
    expect(identity()).toEqual(before);
    expect(existsSync(out)).toBe(false);
    const retry = cloud([...base, '--nats', 'nats://c:4222'], env);
    expect(retry.status, retry.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
  });
});
