import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EdgeAgentProcess,
  edgeCli,
  type NatsServer,
  readMetric,
  readObsStream,
  startEdgeAgentProcess,
  startNatsServer,
  startTcpProxy,
  type TcpProxy,
  type TempDir,
  tempDir,
  waitFor,
} from '../harness/index.js';

const run = promisify(execFile);

/**
 * `POST /ingest/<topic>` of a real agent process (fieldbeam-edge run) forwarding to a real
 * nats-server, with real HTTP clients (fetch, curl): every body format, the tokens, bad bodies kept
 * as rejects, and a full buffer under `block` (429, then 201 once it drains, nothing lost).
 */
const TOKENS = {
  script: 'script-token-0123456789',
  ttn: 'ttn-webhook-token-012345',
  airrohr: 'airrohr-token-0123456789',
};
/** A client limited to some topics (the plain tokens above may post to any). */
const BARN_TOKEN = 'barn-only-token-0123456789';
const CAPACITY = 200_000;
const MAX_BODY = 64 * 1024;
const CONCURRENT = 4;

let nats: NatsServer;
let proxy: TcpProxy;
let dir: TempDir;
let edge: EdgeAgentProcess;
let base: string;

beforeAll(async () => {
  nats = await startNatsServer({ streams: true });
  proxy = await startTcpProxy(nats.port);
  dir = tempDir();
  edge = await startEdgeAgentProcess({
    dir: dir.path,
    env: { FB_TEST_SCRIPT_TOKEN: TOKENS.script },
    config: {
      edge: 'gw-http',
      nats: { servers: [`nats://127.0.0.1:${proxy.port}`], ack_timeout_ms: 1000 },
      buffer: { capacity_bytes: CAPACITY, policy: 'block' },
      http_intake: {
        enabled: true,
        // Interpolated from the environment like any other value of the file.
        tokens: {
          ...TOKENS,
          script: '${FB_TEST_SCRIPT_TOKEN}',
          barn: { token: BARN_TOKEN, topics: ['sensors/barn/#', 'sc/+/esp-barn'] },
        },
        max_body_bytes: MAX_BODY,
        max_concurrent: CONCURRENT,
        // Long enough that the slow requests below still hold the intake when the test's own request
        // comes, however busy the machine; the 408 test waits that long.
        body_timeout_ms: 15_000,
      },
      sensors: [
        {
          topic: 'sensors/+station/temperature',
          decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' },
        },
        {
          topic: 'json/+station',
          decoder: {
            type: 'json',
            fields: { temperature: { variable: 'air_temperature', unit: 'degC' } },
            time: 'time',
          },
        },
        { topic: 'senml/+station', decoder: { type: 'senml' } },
        { topic: 'sc/+station/+pin', decoder: { type: 'json' } },
        { topic: 'sc/+station', decoder: { type: 'json' } },
        { topic: 'ttn/+station', decoder: { type: 'json' } },
      ],
    },
  });
  base = `http://${edge.host}:${edge.httpPort}`;
}, 120_000);

afterAll(async () => {
  await edge?.stop();
  await proxy?.close();
  await nats?.close();
  dir?.remove();
});

interface Answer {
  status: number;
  body: { count?: number; ids?: string[]; error?: string; refused?: string };
  headers: Headers;
}

async function post(
  topic: string,
  body: string,
  opts: { token?: string | null; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const token = opts.token === undefined ? TOKENS.script : opts.token;
  const res = await fetch(`${base}/ingest/${topic}`, {
    method: 'POST',
    body,
    headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...opts.headers },
  });
  return { status: res.status, body: (await res.json()) as Answer['body'], headers: res.headers };
}

/** Every id a 201 named in this file, to find in JetStream at the end. */
const acked = new Set<string>();
const stored = (a: Answer, count: number) => {
  expect(a.status, JSON.stringify(a.body)).toBe(201);
  expect(a.body.count).toBe(count);
  expect(a.body.ids).toHaveLength(count);
  for (const id of a.body.ids ?? []) acked.add(id);
  return a.body.ids ?? [];
};
const recent = (offsetS: number) => new Date(Date.now() - 3_600_000 + offsetS * 1000).toISOString();

describe('POST /ingest/<topic>', () => {
  it('stores a number, JSON and SenML through the topic sensors decoders', async () => {
    stored(await post('sensors/barn/temperature', '21.5'), 1);
    stored(await post('json/shed', JSON.stringify({ temperature: 3.5, time: recent(0) })), 1);
    const senml = [
      { bn: 'urn:dev:ow:10e2073a01080063:', n: 'temp', u: 'Cel', t: Date.now() / 1000 - 60, v: 23.1 },
      { n: 'rh', u: '%RH', v: 41 },
    ];
    stored(
      await post('senml/roof', JSON.stringify(senml), {
        headers: { 'content-type': 'application/senml+json' },
      }),
      2,
    );
  });

  it('makes the same observation as an MQTT publish of the same topic and payload', async () => {
    const payload = JSON.stringify({ temperature: 7.25, time: recent(1) });
    const [httpId] = stored(await post('json/same', payload), 1);
    const client = await mqtt.connectAsync(`mqtt://${edge.host}:${edge.mqttPort}`, { reconnectPeriod: 0 });
    try {
      await client.publishAsync('json/same', payload, { qos: 1 });
    } finally {
      await client.endAsync();
    }
    const stream = await waitFor('both readings forwarded', async () => {
      const c = await readObsStream(nats.url);
      return c.observations.filter((o) => o.station === 'same').length === 2 ? c : undefined;
    });
    const same = stream.observations.filter((o) => o.station === 'same');
    expect(same.map((o) => o.id)).toEqual([httpId, httpId]);
    // Each message has a trace of its own; the reading is the same.
    const { received: _a, trace: traceA, ...first } = same[0] ?? {};
    const { received: _b, trace: traceB, ...second } = same[1] ?? {};
    expect(first).toEqual(second);
    expect(traceA).toMatch(/^[0-9a-f]{32}$/);
    expect(traceB).not.toBe(traceA);
  });

  it('takes Sensor.Community pushes (X-Sensor, X-Pin; Basic auth as the firmware sends it)', async () => {
    const body = JSON.stringify({
      esp8266id: '15505091',
      software_version: 'NRZ-2020-133',
      sensordatavalues: [
        { value_type: 'SDS_P1', value: '12.30' },
        { value_type: 'SDS_P2', value: '4.10' },
      ],
    });
    const basic = `Basic ${Buffer.from(`airrohr:${TOKENS.airrohr}`).toString('base64')}`;
    const headers = { 'x-sensor': 'esp8266-15505091', 'x-pin': '1', authorization: basic };
    stored(await post('sc', body, { token: null, headers }), 2);
    const { 'x-pin': _, ...noPin } = headers;
    stored(await post('sc', body, { token: null, headers: noPin }), 2);
    const bad = await post('sc', '{"esp8266id":"1"}', { token: null, headers });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/sensordatavalues/);
  });

  it('takes The Things Network v3 uplink webhooks, timed by the network', async () => {
    const receivedAt = recent(2);
    const uplink = {
      end_device_ids: { device_id: 'field-node-7', application_ids: { application_id: 'farm' } },
      received_at: receivedAt,
      uplink_message: { f_port: 1, decoded_payload: { soil_moisture: 31.5 }, received_at: receivedAt },
    };
    const [id] = stored(await post('ttn', JSON.stringify(uplink), { token: TOKENS.ttn }), 1);
    const join = { end_device_ids: { device_id: 'field-node-7' }, join_accept: { session_key_id: 'AA' } };
    const none = await post('ttn', JSON.stringify(join), { token: TOKENS.ttn });
    expect(none.status).toBe(200);
    expect(none.body).toEqual({ count: 0, ids: [] });
    const obs = await waitFor('the TTN reading forwarded', async () =>
      (await readObsStream(nats.url)).observations.find((o) => o.id === id),
    );
    expect(obs).toMatchObject({ station: 'field-node-7', value: 31.5, time: receivedAt });
    expect(obs.quality ?? []).not.toContain('edge_time');
  });

  it('answers 401 without a token and 403 with a wrong one, and reads no body for them', async () => {
    const none = await post('sensors/barn/temperature', '1', { token: null });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await post('sensors/barn/temperature', '1', { token: 'not-a-token-of-anyone' })).status).toBe(
      403,
    );
    expect((await post('sensors/barn/temperature', '1', { token: `${TOKENS.script}x` })).status).toBe(403);
    expect(
      await readMetric(edge.httpPort, 'fb_edge_http_intake_requests_total', 'client="-",outcome="forbidden"'),
    ).toBe(2);
  });

  it('limits a token given topics to them: 403 naming the topic outside, before or after the body format adds levels', async () => {
    stored(await post('sensors/barn/temperature', '7.5', { token: BARN_TOKEN }), 1);
    const outside = await post('sensors/house/temperature', '7.5', { token: BARN_TOKEN });
    expect(outside.status).toBe(403);
    expect(outside.body.error).toContain('"sensors/house/temperature"');
    expect(outside.body.error).toContain('http_intake.tokens.barn.topics');
    // Sensor.Community adds the X-Sensor level: the scope holds for the topic it makes.
    const push = (sensor: string) =>
      post('sc/barn', JSON.stringify({ sensordatavalues: [{ value_type: 'temperature', value: '3.5' }] }), {
        token: BARN_TOKEN,
        headers: { 'content-type': 'application/json', 'x-sensor': sensor },
      });
    expect((await push('esp-barn')).status).toBe(201);
    const other = await push('esp-house');
    expect(other.status).toBe(403);
    expect(other.body.error).toContain('"sc/barn/esp-house"');
    // The plain token form still posts anywhere.
    stored(await post('sensors/house/temperature', '7.5'), 1);
    expect(
      await readMetric(
        edge.httpPort,
        'fb_edge_http_intake_requests_total',
        'client="barn",outcome="forbidden"',
      ),
    ).toBe(2);
  });

  it('answers a bad body with 400 and its reason, and keeps it in the reject log', async () => {
    const bad = await post('sensors/barn/temperature', 'warm');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/number/);
    const unmatched = await post('nowhere/at/all', '1');
    expect(unmatched.status).toBe(404);
    expect(unmatched.body.error).toMatch(/no sensor matches/);
    const { stdout } = await waitFor('the reject kept', async () => {
      const out = await run(process.execPath, [edgeCli, 'rejects', '--config', edge.configFile], {
        env: { ...process.env, FB_TEST_SCRIPT_TOKEN: TOKENS.script },
      });
      return out.stdout.includes('warm') ? out : undefined;
    });
    const kept = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { source: string; topic: string; reason: string });
    expect(kept.find((r) => r.topic === 'sensors/barn/temperature')).toMatchObject({
      source: 'http',
      reason: expect.stringMatching(/^client script: /),
    });
    expect(
      await readMetric(
        edge.httpPort,
        'fb_edge_http_intake_requests_total',
        'client="script",outcome="rejected"',
      ),
    ).toBeGreaterThanOrEqual(1);
  });

  it('answers 413 over max_body_bytes, declared or streamed, and curl sees it', async () => {
    const big = 'x'.repeat(MAX_BODY + 1);
    expect((await post('sensors/barn/temperature', big)).status).toBe(413);
    const { stdout } = await run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-H',
      `Authorization: Bearer ${TOKENS.script}`,
      '-H',
      'Transfer-Encoding: chunked',
      '--data-binary',
      big,
      `${base}/ingest/sensors/barn/temperature`,
    ]).catch((err: { stdout: string }) => err);
    expect(stdout).toBe('413');
    const ok = await run('curl', [
      '-sS',
      '-H',
      `Authorization: Bearer ${TOKENS.script}`,
      '--data-binary',
      '19.75',
      `${base}/ingest/sensors/barn/temperature`,
    ]);
    stored({ status: 201, body: JSON.parse(ok.stdout), headers: new Headers() }, 1);
  });

  it('bounds requests at once (429) and the time a body may take (408)', async () => {
    const timeoutsBefore = await readMetric(
      edge.httpPort,
      'fb_edge_http_intake_requests_total',
      'outcome="timeout"',
    );
    // Slow clients: headers promise 10 bytes, 2 arrive.
    const openSlow = async () => {
      const socket = connect({ host: edge.host, port: edge.httpPort });
      let text = '';
      socket.setEncoding('latin1').on('data', (d: string) => {
        text += d;
      });
      const closed = new Promise<void>((r) => socket.on('close', () => r()));
      await new Promise<void>((r) => socket.once('connect', () => r()));
      socket.write(
        `POST /ingest/sensors/slow/temperature HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKENS.script}\r\n` +
          'Content-Length: 10\r\n\r\n21',
      );
      return { closed, text: () => text };
    };
    const slow = await Promise.all(Array.from({ length: CONCURRENT }, openSlow));
    const over = await waitFor(
      'the intake full of slow requests',
      async () => {
        const a = await post('sensors/barn/temperature', '1');
        if (a.status === 429) return a;
        // A place was free: this request reached the intake before the last slow one's headers were
        // read (it comes on a connection already open), took that place for a moment and had the slow
        // one refused with 429. One more slow request takes the place.
        if (slow.length < 3 * CONCURRENT) slow.push(await openSlow());
        return undefined;
      },
      12_000,
    );
    expect(over.body.error).toMatch(/max_concurrent/);
    expect(over.headers.get('retry-after')).toBe('1');
    for (const s of slow) await s.closed;
    // Each slow request is answered: 408 when its body's time ran out, 429 if it came while full.
    for (const s of slow) expect(s.text()).toMatch(/^HTTP\/1\.1 (408|429) /);
    const timedOut = slow.filter((s) => s.text().startsWith('HTTP/1.1 408 ')).length;
    expect(timedOut).toBeGreaterThanOrEqual(CONCURRENT - 1);
    stored(await post('sensors/barn/temperature', '2'), 1);
    const timeouts =
      (await readMetric(edge.httpPort, 'fb_edge_http_intake_requests_total', 'outcome="timeout"')) -
      timeoutsBefore;
    expect(timeouts).toBe(timedOut);
  }, 60_000);

  it('answers 429 with Retry-After while the buffer is full under block, then 201 after it drains: nothing lost', async () => {
    await proxy.setMode('refuse');
    const t0 = Math.floor(Date.now() / 1000) - 3600;
    const body = (i: number) =>
      JSON.stringify(
        Array.from({ length: 100 }, (_, k) => ({
          n: 'urn:dev:load',
          u: 'Cel',
          t: t0 + i * 100 + k,
          v: i * 100 + k,
        })),
      );
    let full: Answer | undefined;
    let i = 0;
    for (; i < 500 && !full; i++) {
      const a = await post('senml/load', body(i));
      if (a.status === 429) full = a;
      else stored(a, 100);
    }
    expect(full, `the buffer never filled\n${edge.process?.output()}`).toBeDefined();
    expect(full?.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(full?.body.error).toMatch(/buffer is full/);
    const refusedBody = body(i - 1);
    // Still full: the client's next try is refused again, not half-taken.
    expect((await post('senml/load', refusedBody)).status).toBe(429);

    await proxy.setMode('pass');
    const again = await waitFor(
      'a 201 after the drain',
      async () => {
        const a = await post('senml/load', refusedBody);
        return a.status === 201 ? a : undefined;
      },
      60_000,
    );
    stored(again, 100);
    await waitFor(
      'drain',
      async () => ((await readMetric(edge.httpPort, 'fb_edge_buffer_depth')) === 0 ? true : undefined),
      60_000,
    );
    const stream = await readObsStream(nats.url);
    const ids = new Set(stream.observations.map((o) => o.id));
    for (const id of acked) expect(ids.has(id), id).toBe(true);
    const load = stream.observations.filter((o) => o.station === 'load');
    expect(new Set(load.map((o) => o.id)).size).toBe(i * 100);
    expect(
      await readMetric(edge.httpPort, 'fb_edge_http_intake_requests_total', 'client="script",outcome="busy"'),
    ).toBeGreaterThanOrEqual(2);
  });
});
