import { request } from 'node:http';
import { join } from 'node:path';
import { addEdge } from '@fieldbeam/cloud';
import { formatIssTimestamp } from '@fieldbeam/edge';
import mqtt from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DatasetsAnswer,
  EdgeAnswer,
  FleetAnswer,
  IngestAnswer,
  IssAnswer,
  RejectsAnswer,
  SensorsChanged,
  SeriesAnswer,
  SessionAnswer,
} from '../../cloud/src/console/console-api.js';
// The replay server is a test and demo tool outside the agent's package entry.
import { createTlcpReplayServer, type TlcpReplayServer } from '../../edge/src/iss-replay/index.js';
import {
  type CollectorProcess,
  type CommandResult,
  cloudCli,
  type EdgeAgentProcess,
  type NatsServer,
  runNodeScript,
  startCollectorProcess,
  startEdgeAgentProcess,
  startNatsServer,
  startPostgres,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';

/**
 * The console's HTTP API against real processes: a collector (admin token set, one dataset), a
 * second collector without FB_ADMIN_TOKEN (read-only console), two edge agents heartbeating every
 * second, one registered edge never started. Answers are compared with the CLI's and Postgres's.
 */
const TOKEN = 'console-admin-token-0123456789abcdef';
const INTERVAL_MS = 1000;

let nats: NatsServer;
let postgres: TestPostgres;
let dir: TempDir;
let idDir: string;
let collector: CollectorProcess;
let readOnly: CollectorProcess;
let db: pg.Pool;
let iss: TlcpReplayServer;
const agents = new Map<string, EdgeAgentProcess>();

const base = () => `http://127.0.0.1:${collector.httpPort}`;

function cloud(args: string[]): Promise<CommandResult> {
  return runNodeScript(cloudCli, args, {
    NATS_URL: nats.url,
    DATABASE_URL: postgres.url,
    FB_IDENTITY_DIR: idDir,
    FB_DATA_DIR: join(dir.path, 'cli'),
  });
}

async function get(path: string, headers: Record<string, string> = {}, port = collector.httpPort) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, body, text };
}

async function send(
  method: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
  port = collector.httpPort,
) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

async function login(): Promise<string> {
  const r = await send('POST', '/console/login', { token: TOKEN });
  expect(r.status).toBe(200);
  const cookie = r.headers.get('set-cookie') ?? '';
  return cookie.split(';')[0] as string;
}

beforeAll(async () => {
  dir = tempDir();
  idDir = join(dir.path, 'identity');
  for (const id of ['gw-a', 'gw-b', 'gw-never']) addEdge(idDir, id);
  const datasetsFile = join(dir.path, 'datasets.yaml');
  (await import('node:fs')).writeFileSync(
    datasetsFile,
    'datasets:\n  - name: air\n    filter: { variables: [air_temperature] }\n    window: PT10S\n    grace: PT1S\n    debounce: PT0.2S\n',
  );
  // No authorization in this NATS server: the agents connect without their keys (the registry
  // takes their heartbeats all the same; `registered` comes from the identity folder).
  [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
  db = new pg.Pool({ connectionString: postgres.url });
  // Postgres stopping at the end ends its idle connections; that is no failure of this test.
  db.on('error', () => {});
  const env = {
    FB_IDENTITY_DIR: idDir,
    FB_DATASETS_FILE: datasetsFile,
    FB_BUILD_POLL_MS: '200',
    FB_CONSOLE_MAX_CLIENTS: '3',
    FB_CONSOLE_PUSH_MS: '300',
  };
  [collector, readOnly] = await Promise.all([
    startCollectorProcess({
      name: 'console-1',
      natsUrl: nats.url,
      databaseUrl: postgres.url,
      dataDir: join(dir.path, 'c1'),
      env: { ...env, FB_ADMIN_TOKEN: TOKEN },
    }),
    startCollectorProcess({
      name: 'console-ro',
      natsUrl: nats.url,
      databaseUrl: postgres.url,
      dataDir: join(dir.path, 'c2'),
      // No datasets here: its builder would keep files in its own data folder.
      env: { ...env, FB_DATASETS_FILE: '' },
    }),
  ]);
  for (const id of ['gw-a', 'gw-b']) {
    agents.set(
      id,
      await startEdgeAgentProcess({
        dir: dir.path,
        config: {
          edge: id,
          status_interval_ms: INTERVAL_MS,
          nats: { servers: [nats.url] },
          sensors: [
            { topic: 's/+station/t', decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' } },
            {
              topic: 'p/+station/p',
              decoder: { type: 'number', variable: 'air_pressure', unit: 'hPa' },
              lat: 46.5,
              lon: 7.25,
            },
          ],
        },
      }),
    );
  }
  // An edge with an ISS source, fed by the replay server.
  iss = await createTlcpReplayServer({ keepaliveMs: 1000 });
  agents.set(
    'gw-iss',
    await startEdgeAgentProcess({
      dir: dir.path,
      config: {
        edge: 'gw-iss',
        status_interval_ms: INTERVAL_MS,
        nats: { servers: [nats.url] },
        sensors: [],
        iss: { enabled: true, server_url: iss.url, items: ['USLAB000058'] },
      },
    }),
  );
  await waitFor('the three edges online in the console', async () => {
    const f = FleetAnswer.parse((await get('/console/api/fleet')).body);
    return f.online === 3 ? f : undefined;
  });
});

afterAll(async () => {
  await Promise.all([...agents.values()].map((a) => a.stop()));
  await iss?.close();
  await Promise.all([collector?.stop(), readOnly?.stop()]);
  await db?.end();
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

describe('console: pages and the landing page', () => {
  it('keeps / for JSON clients exactly as before, and gives a browser the console', async () => {
    // The landing page as a JSON client always had it (no Accept at all): the same for every
    // Accept that does not prefer HTML, byte for byte.
    const plain = await get('/');
    expect(plain.status).toBe(200);
    expect(plain.headers.get('content-type')).toBe('application/json');
    expect(plain.body).toMatchObject({
      title: 'Fieldbeam collector',
      links: expect.arrayContaining([
        { href: `${base()}/`, rel: 'self', type: 'application/json', title: expect.any(String) },
      ]),
    });
    for (const accept of ['*/*', 'application/json', 'application/json, text/html;q=0.5', 'text/html;q=0']) {
      const r = await get('/', { accept });
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('application/json');
      expect(r.text).toBe(plain.text);
    }
    const html = await get('/', { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' });
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(html.text).toMatch(/<html/i);
    expect(html.headers.get('content-security-policy')).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    );
    expect(html.headers.get('x-content-type-options')).toBe('nosniff');
    expect(html.headers.get('referrer-policy')).toBe('no-referrer');
    // The shell's assets are served, hashed ones cached for long, each with an ETag.
    const assets = [...html.text.matchAll(/(?:src|href)="(\/console\/[^"]+)"/g)].map((m) => m[1] as string);
    expect(assets.length).toBeGreaterThan(0);
    for (const a of assets) {
      const r = await fetch(`${base()}${a}`);
      expect(r.status, a).toBe(200);
      const etag = r.headers.get('etag') as string;
      expect(etag).toMatch(/^".+"$/);
      expect((await fetch(`${base()}${a}`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    }
    // Client-side routes get the shell; no path leaves the app's folder.
    expect((await get('/console/edges/gw-a')).text).toBe(html.text);
    expect((await get('/console/')).text).toBe(html.text);
    for (const p of [
      '/console/..%2f..%2fpackage.json',
      '/console/%2e%2e/app.js',
      '/console/.env.js',
      '/console/api/nope',
    ]) {
      expect((await get(p)).status, p).toBe(404);
    }
  });
});

describe('console: reads', () => {
  it('fleet: the same edges and figures as edge list --json', async () => {
    const cli = await cloud(['edge', 'list', '--json']);
    expect(cli.code, cli.stderr).toBe(0);
    const fleet = FleetAnswer.parse((await get('/console/api/fleet')).body);
    const listed = JSON.parse(cli.stdout) as Record<string, unknown>[];
    expect(fleet.edges.map((e) => e.id)).toEqual(listed.map((e) => e.id));
    for (const e of listed) {
      const c = fleet.edges.find((x) => x.id === e.id) as Record<string, unknown>;
      for (const k of [
        'registered',
        'online',
        'firstSeen',
        'version',
        'bufferDepth',
        'sensors',
        'offlineAfterS',
        'intervalMs',
        'configRevision',
        'uplink',
        'clock',
      ])
        expect(c[k], `${e.id}.${k}`).toEqual(e[k]);
      // Heartbeats come every 500 ms: the two reads are at most a few apart.
      if (e.lastSeen)
        expect(Math.abs(Date.parse(c.lastSeen as string) - Date.parse(e.lastSeen as string))).toBeLessThan(
          5000,
        );
    }
    const a = fleet.edges.find((e) => e.id === 'gw-a');
    expect(a?.inPerS).toBeTypeOf('number');
    // A reading with coordinates places its edge on the map.
    const c = await mqtt.connectAsync((agents.get('gw-a') as EdgeAgentProcess).mqttUrl);
    await c.publishAsync('p/st5/p', '1013.2', { qos: 1 });
    await c.endAsync();
    const placed = await waitFor('gw-a placed', async () => {
      const f = FleetAnswer.parse((await get('/console/api/fleet')).body);
      const e = f.edges.find((x) => x.id === 'gw-a');
      return e?.lat !== null ? e : undefined;
    });
    expect([placed.lat, placed.lon]).toEqual([46.5, 7.25]);
    expect(fleet.edges.find((e) => e.id === 'gw-b')).toMatchObject({ lat: null, lon: null });
    expect(fleet.edges.find((e) => e.id === 'gw-never')).toMatchObject({ online: false, lastSeen: null });
  });

  it('edge page, series and rejects: the values Postgres and the edge hold', async () => {
    const a = agents.get('gw-a') as EdgeAgentProcess;
    const c = await mqtt.connectAsync(a.mqttUrl);
    const now = Date.now();
    for (let i = 0; i < 5; i++) await c.publishAsync('s/st1/t', String(20 + i), { qos: 1 });
    await c.publishAsync('s/st9/t', 'not a number', { qos: 1 });
    await c.endAsync();
    const stored = await waitFor('5 readings of st1 in Postgres', async () => {
      const r = await db.query<{ time: Date; value: number }>(
        "SELECT time, value FROM observations WHERE edge = 'gw-a' AND station = 'st1' ORDER BY time",
      );
      return r.rows.length >= 5 ? r.rows : undefined;
    });
    const series = SeriesAnswer.parse(
      (
        await get(
          `/console/api/edges/gw-a/series?station=st1&variable=air_temperature&since=${new Date(now - 60_000).toISOString()}`,
        )
      ).body,
    );
    expect(series.points).toEqual(stored.map((r) => [r.time.getTime(), r.value]));
    expect(series.unit).toBe('degC');

    const edge = EdgeAnswer.parse((await get('/console/api/edges/gw-a')).body);
    expect(edge.edge.id).toBe('gw-a');
    expect(edge.sensors.local.map((s) => s.topic)).toContain('s/+station/t');
    expect(edge.stations.find((s) => s.station === 'st1')?.variables.map((v) => v.variable)).toEqual([
      'air_temperature',
    ]);
    const cliStatus = JSON.parse((await cloud(['edge', 'status', 'gw-a', '--json'])).stdout);
    expect(edge.completeness.unexplained).toBe(cliStatus.completeness.unexplained);

    const rejects = await waitFor('the reject', async () => {
      const r = RejectsAnswer.parse((await get('/console/api/edges/gw-a/rejects')).body);
      return r.rejects.some((x) => x.topic === 's/st9/t') ? r : undefined;
    });
    const cli = JSON.parse((await cloud(['edge', 'rejects', 'gw-a', '--json'])).stdout) as {
      reason: string;
      at: string;
    }[];
    expect(rejects.rejects.map((r) => [r.at, r.reason])).toEqual(cli.map((r) => [r.at, r.reason]));

    // Many page loads at once ask the edge once: the console cannot flood an edge's uplink.
    const askedBy = async () => {
      const m = await agents.get('gw-a')?.metrics();
      return [...(m?.entries() ?? [])]
        .filter(([k]) => k.startsWith('fb_edge_control_requests_total{') && k.includes('op="rejects"'))
        .reduce((sum, [, v]) => sum + v, 0);
    };
    const before = await askedBy();
    const burst = await Promise.all(
      Array.from({ length: 20 }, () => get('/console/api/edges/gw-a/rejects?limit=150')),
    );
    expect(burst.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect((await askedBy()) - before).toBe(1);

    const never = await get('/console/api/edges/gw-never/rejects');
    expect(never.status).toBe(409);
    expect((never.body as { error: string }).error).toMatch(/gw-never is offline/);
    expect((await get('/console/api/edges/gw-nobody')).status).toBe(404);
    expect((await get('/console/api/edges/a.b/series?station=x&variable=y')).status).toBe(400);
    expect((await get('/console/api/edges/gw-a/series?station=st1&variable=x&since=yesterday')).status).toBe(
      400,
    );
    expect(
      (await get('/console/api/edges/gw-a/series?station=st1&variable=x&since=2001-01-01T00:00:00Z')).status,
    ).toBe(400);
  });

  it('datasets, ingest, ISS: their shapes, with the built window downloadable', async () => {
    const built = await waitFor(
      'a built window of air with a GeoParquet link',
      async () => {
        const d = DatasetsAnswer.parse((await get('/console/api/datasets')).body);
        return d.datasets[0]?.windows.find((w) => w.state === 'built' && w.geoparquetUrl);
      },
      60_000,
    );
    expect(built.rows).toBeGreaterThan(0);
    const file = await fetch(`${base()}${built.geoparquetUrl}`);
    expect(file.status).toBe(200);
    expect(
      Buffer.from(await file.arrayBuffer())
        .subarray(0, 4)
        .toString(),
    ).toBe('PAR1');
    const ingest = IngestAnswer.parse((await get('/console/api/ingest')).body);
    expect(ingest.lag.pending).toBeTypeOf('number');

    // ISS: the edge's state from its heartbeat, and its item's values as stored.
    const t0 = Date.now() - 10_000;
    for (let i = 0; i < 5; i++) {
      const at = t0 + i * 1000;
      iss.publish([
        {
          item: 'USLAB000058',
          TimeStamp: formatIssTimestamp(at),
          Value: String(740 + i),
          'Status.Class': '24',
          'Status.Indicator': '',
          'Status.Color': 'Green',
          CalibratedData: '',
        },
      ]);
    }
    const answer = await waitFor('the ISS edge streaming with its values', async () => {
      const a = IssAnswer.parse((await get('/console/api/iss')).body);
      const e = a.edges.find((x) => x.edge === 'gw-iss');
      // Online too: on a busy machine a heartbeat can come late enough to count the edge offline for a
      // moment, and the next one brings it back.
      return e?.state === 'streaming' && e.online && (e.items[0]?.points.length ?? 0) >= 5 ? e : undefined;
    });
    const stored = await db.query<{ time: Date; value: number }>(
      "SELECT time, value FROM observations WHERE edge = 'gw-iss' AND variable = 'iss:USLAB000058' ORDER BY time",
    );
    const item = answer.items.find((x) => x.variable === 'iss:USLAB000058');
    expect(item?.points).toEqual(
      stored.rows
        .filter((r) => r.time.getTime() >= Date.now() - 3_600_000)
        .map((r) => [r.time.getTime(), r.value]),
    );

    // A rebuild needs a login; then the window is due again and built into a new version.
    const path = `/console/api/datasets/air/windows/${built.start}/rebuild`;
    expect((await send('POST', path, {})).status).toBe(401);
    const cookie = await login();
    const r = await send('POST', path, {}, { cookie });
    expect(r.status).toBe(202);
    await waitFor(
      'the rebuilt version',
      async () => {
        const d = DatasetsAnswer.parse((await get('/console/api/datasets')).body);
        const w = d.datasets[0]?.windows.find((x) => x.start === built.start);
        return w && w.state === 'built' && (w.version ?? 0) > (built.version ?? 0) ? w : undefined;
      },
      60_000,
    );
  });
});

describe('console: writes', () => {
  const sensor = {
    topic: 'z/+station/h',
    decoder: { type: 'number', variable: 'relative_humidity', unit: '%' },
  };

  it('refuses a write without login, from another origin, not JSON, or too large', async () => {
    const path = '/console/api/edges/gw-b/sensors';
    expect((await send('POST', path, { sensor })).status).toBe(401);
    const cookie = await login();
    expect((await send('POST', path, { sensor }, { cookie, origin: 'http://evil.example' })).status).toBe(
      403,
    );
    expect(
      (await send('POST', path, JSON.stringify({ sensor }), { cookie, 'content-type': 'text/plain' })).status,
    ).toBe(415);
    const big = await send('POST', path, { sensor, pad: 'x'.repeat(20_000) }, { cookie });
    expect(big.status).toBe(413);
    expect(big.body.error).toMatch(/over 16384 bytes/);
    expect((await send('POST', '/console/login', { token: 'wrong-token-wrong-token-wrong' })).status).toBe(
      401,
    );
    // Nothing was written.
    const list = await cloud(['sensors', 'list', 'gw-b']);
    expect(list.stdout).not.toContain('z/+station/h');
  });

  it('adds and removes a central sensor (as sensors add/remove), refusing an invalid one with the reasons', async () => {
    const cookie = await login();
    const path = '/console/api/edges/gw-b/sensors';
    const bad = await send(
      'POST',
      path,
      { sensor: { topic: 'z/+station/h', decoder: { type: 'nope' } } },
      { cookie, origin: base() },
    );
    expect(bad.status).toBe(422);
    expect(bad.body.reasons.join('\n')).toMatch(/decoder/);
    const added = SensorsChanged.parse(
      (await send('POST', path, { sensor }, { cookie, origin: base() })).body,
    );
    expect(added.sensors).toEqual([sensor]);
    const list = await cloud(['sensors', 'list', 'gw-b']);
    expect(list.stdout).toContain('z/+station/h');
    await waitFor('gw-b applying the revision', async () => {
      const e = EdgeAnswer.parse((await get('/console/api/edges/gw-b')).body);
      return e.config?.revision === added.revision ? e : undefined;
    });
    // As the browser app sends it: no body, no type, its own origin.
    const gone = await fetch(`${base()}${path}?topic=${encodeURIComponent(sensor.topic)}`, {
      method: 'DELETE',
      headers: { cookie, origin: base() },
    });
    const removed = { status: gone.status, body: (await gone.json()) as { sensors: unknown[] } };
    expect(removed.status).toBe(200);
    expect(removed.body.sensors).toEqual([]);
    expect((await send('DELETE', `${path}?topic=nothing`, {}, { cookie })).status).toBe(404);
    // Logged out: writes refused again.
    expect((await send('POST', '/console/logout', {}, { cookie })).status).toBe(200);
    expect((await send('POST', path, { sensor }, { cookie })).status).toBe(401);
  });

  it('is read-only without FB_ADMIN_TOKEN', async () => {
    const session = SessionAnswer.parse((await get('/console/api/session', {}, readOnly.httpPort)).body);
    expect(session).toEqual({ writable: false, loggedIn: false, expiresAt: null });
    const login = await send('POST', '/console/login', { token: TOKEN }, {}, readOnly.httpPort);
    expect(login.status).toBe(403);
    expect(login.body.error).toContain('FB_ADMIN_TOKEN');
    const write = await send('POST', '/console/api/edges/gw-b/sensors', { sensor }, {}, readOnly.httpPort);
    expect(write.status).toBe(403);
    expect(write.body.error).toContain('FB_ADMIN_TOKEN');
    expect((await get('/console/api/fleet', {}, readOnly.httpPort)).status).toBe(200);
  });
});

/** An event stream read in the background: its events by name. */
function listen(path: string, port = collector.httpPort) {
  const events: { event: string; data: unknown }[] = [];
  let status = 0;
  let buffer = '';
  const req = request({ host: '127.0.0.1', port, path, headers: { accept: 'text/event-stream' } }, (res) => {
    status = res.statusCode ?? 0;
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) });
        end = buffer.indexOf('\n\n');
      }
    });
    res.on('error', () => {});
  });
  req.on('error', () => {});
  req.end();
  return { events, status: () => status, close: () => req.destroy() };
}

describe('console: live updates', () => {
  it('pushes the fleet and subscribed readings, and answers 503 beyond FB_CONSOLE_MAX_CLIENTS', async () => {
    const a = listen('/console/events?edge=gw-a&station=st2&variable=air_temperature');
    const fleet = await waitFor('a fleet event', () => a.events.find((e) => e.event === 'fleet'));
    expect((fleet.data as { edges: { id: string }[] }).edges.map((e) => e.id)).toEqual([
      'gw-a',
      'gw-b',
      'gw-iss',
      'gw-never',
    ]);
    const t0 = Date.now();
    const c = await mqtt.connectAsync((agents.get('gw-a') as EdgeAgentProcess).mqttUrl);
    await c.publishAsync('s/st2/t', '12.5', { qos: 1 });
    await c.endAsync();
    const readings = await waitFor('a readings event', () => a.events.find((e) => e.event === 'readings'));
    expect(readings.data).toMatchObject({ edge: 'gw-a', station: 'st2', variable: 'air_temperature' });
    expect((readings.data as { points: [number, number][] }).points.map((p) => p[1])).toEqual([12.5]);
    // The reading marks a window of `air`: its change is pushed too.
    const t1 = Date.now();
    const windows = await waitFor(
      "a datasets event with the reading's window",
      () =>
        a.events.find(
          (e) =>
            e.event === 'datasets' &&
            (e.data as { windows: { start: string; end: string }[] }).windows.some(
              (w) => Date.parse(w.end) > t0 && Date.parse(w.start) <= t1,
            ),
        ),
      60_000,
    );
    expect(windows.data).toMatchObject({ dataset: 'air' });

    const b = listen('/console/events');
    const c3 = listen('/console/events');
    await waitFor('three clients', async () =>
      (await collector.metrics())?.get('fb_cloud_console_clients') === 3 ? true : undefined,
    );
    const refused = await get('/console/events');
    expect(refused.status).toBe(503);
    expect((refused.body as { error: string }).error).toContain('FB_CONSOLE_MAX_CLIENTS=3');
    for (const l of [a, b, c3]) l.close();
    await waitFor('no clients', async () =>
      (await collector.metrics())?.get('fb_cloud_console_clients') === 0 ? true : undefined,
    );
    expect(
      (await collector.metrics())?.get('fb_cloud_console_clients_dropped_total{reason="full"}'),
    ).toBeGreaterThanOrEqual(1);
  });
});
