import { writeFileSync } from 'node:fs';
import { type IncomingHttpHeaders, request } from 'node:http';
import { join } from 'node:path';
import { type Observation, observationId } from '@fieldbeam/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CollectorProcess,
  type NatsServer,
  startCollectorProcess,
  startNatsServer,
  startPostgres,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';
import { publishObservations, reading } from './fixtures.js';

/**
 * The collector's HTTP guards against a real collector process over real sockets: the Host
 * allow-list (DNS rebinding), live-update slots per client address with a slot for the admin, the
 * login failure limit, CSV cells that a spreadsheet would run as formulas, and EDR locations without
 * a datetime. Clients of their own addresses come as through a reverse proxy on the collector's
 * machine: loopback peers with the address the proxy appends to X-Forwarded-For.
 */
const TOKEN = 'guards-admin-token-0123456789abcdef';
const PUBLIC_NAME = 'collector.example.org';
const DAY = 86_400_000;
const NEWEST = Date.parse('2026-03-01T12:00:00Z');
const FORMULA_STATION = '=HYPERLINK("http://evil.example","x")';

let nats: NatsServer;
let postgres: TestPostgres;
let dir: TempDir;
let collector: CollectorProcess;

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** A request from `from` (a loopback source address) with the Host header a browser would send. */
function call(
  path: string,
  opts: {
    from?: string;
    host?: string;
    method?: string;
    body?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: collector.httpPort,
        path,
        method: opts.method ?? 'GET',
        headers: {
          host: opts.host ?? `127.0.0.1:${collector.httpPort}`,
          ...(opts.from ? { 'x-forwarded-for': proxied(opts.from) } : {}),
          ...(opts.body ? { 'content-type': 'application/json' } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** An event stream held open from `from`: its status once the headers came, and whether it ended. */
function stream(from: string, cookie?: string, viaProxy = true) {
  let ended = false;
  const status = new Promise<number>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: collector.httpPort,
        path: '/console/events',
        headers: {
          accept: 'text/event-stream',
          ...(viaProxy ? { 'x-forwarded-for': proxied(from) } : {}),
          ...(cookie ? { cookie } : {}),
        },
      },
      (res) => {
        resolve(res.statusCode ?? 0);
        res.on('data', () => {});
        res.on('end', () => {
          ended = true;
        });
        res.on('close', () => {
          ended = true;
        });
      },
    );
    req.on('error', reject);
    req.end();
    streams.push(() => req.destroy());
  });
  return { status, ended: () => ended };
}
const streams: (() => void)[] = [];

/** X-Forwarded-For as a proxy sends it: what the client claimed (ignored), then the address it saw. */
const proxied = (client: string) => `203.0.113.66, ${client}`;

const login = (from: string, token: string) =>
  call('/console/login', { from, method: 'POST', body: JSON.stringify({ token }) });

function observations(): Observation[] {
  const out: Observation[] = [];
  // st-1 reports up to the newest reading; st-2 stopped 60 days before it.
  for (let t = NEWEST - 2 * DAY; t <= NEWEST; t += 6 * 3_600_000)
    out.push(reading({ edge: 'gw-g', station: 1, time: t, value: -1.5 }));
  out.push(reading({ edge: 'gw-g', station: 2, time: NEWEST - 60 * DAY, value: 3 }));
  const time = new Date(NEWEST - DAY).toISOString();
  for (const [station, text] of [
    [FORMULA_STATION, '+SUM(1;2)'],
    ['st-3', '@cmd'],
  ] as const)
    out.push({
      id: observationId({ source: 'mqtt', station, variable: 'weather', time, value: null, text }),
      source: 'mqtt',
      edge: 'gw-g',
      station,
      variable: 'weather',
      value: null,
      text,
      unit: '1',
      time,
      received: time,
    });
  return out;
}

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
  dir = tempDir();
  const datasetsFile = join(dir.path, 'datasets.yaml');
  writeFileSync(datasetsFile, 'datasets:\n  - name: all\n    window: P1D\n    grace: PT1S\n');
  collector = await startCollectorProcess({
    name: 'guards',
    natsUrl: nats.url,
    databaseUrl: postgres.url,
    dataDir: join(dir.path, 'c'),
    env: {
      FB_ADMIN_TOKEN: TOKEN,
      FB_DATASETS_FILE: datasetsFile,
      FB_HTTP_ALLOWED_HOSTS: PUBLIC_NAME,
      FB_CONSOLE_MAX_CLIENTS: '4',
      FB_CONSOLE_MAX_CLIENTS_PER_ADDRESS: '2',
    },
  });
  const all = observations();
  await publishObservations(nats.url, 'gw-g', all);
  await waitFor('the readings stored', async () => {
    const r = await call('/api/stats');
    return (JSON.parse(r.text) as { observations: number }).observations === all.length ? true : undefined;
  });
}, 120_000);

afterAll(async () => {
  for (const end of streams) end();
  await collector?.stop();
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

describe('Host allow-list (DNS rebinding)', () => {
  it('refuses the console and the API for a Host that is not the collector, naming the setting', async () => {
    for (const path of ['/console/api/fleet', '/collections', '/metrics', '/']) {
      const r = await call(path, { host: `evil.example:${collector.httpPort}` });
      expect(r.status, path).toBe(421);
      expect(JSON.parse(r.text).error).toContain('FB_HTTP_ALLOWED_HOSTS');
    }
    expect((await call('/console/api/fleet')).status).toBe(200);
    expect((await call('/console/api/fleet', { host: `localhost:${collector.httpPort}` })).status).toBe(200);
    expect((await call('/console/api/fleet', { host: `${PUBLIC_NAME}:${collector.httpPort}` })).status).toBe(
      200,
    );
    // Links are made from the Host the client used: only allowed names end up in them.
    const landing = JSON.parse((await call('/', { host: `${PUBLIC_NAME}:${collector.httpPort}` })).text) as {
      links: { href: string }[];
    };
    expect(landing.links[0]?.href).toContain(`http://${PUBLIC_NAME}:${collector.httpPort}/`);
  });

  it('answers /edge/ (install links, releases) whatever the name a Pi was given', async () => {
    const r = await call('/edge/install/abcdefghijklmnopqrstuvwxyz012345', { host: 'collector.lan:8080' });
    expect(r.status).toBe(404);
    expect(r.text).not.toContain('FB_HTTP_ALLOWED_HOSTS');
  });
});

describe('live-update slots', () => {
  it('bounds the streams of one address, and gives a logged-in admin a slot when all are taken', async () => {
    // This machine's own clients (no proxy) are bounded by FB_CONSOLE_MAX_CLIENTS only.
    const local = [
      stream('127.0.0.1', undefined, false),
      stream('127.0.0.1', undefined, false),
      stream('127.0.0.1', undefined, false),
    ];
    expect(await Promise.all(local.map((s) => s.status))).toEqual([200, 200, 200]);
    for (const end of streams.splice(0)) end();
    await waitFor('no clients', async () =>
      (await collector.metrics())?.get('fb_cloud_console_clients') === 0 ? true : undefined,
    );
    const a1 = stream('198.51.100.2');
    const a2 = stream('198.51.100.2');
    expect([await a1.status, await a2.status]).toEqual([200, 200]);
    const a3 = await call('/console/events', { from: '198.51.100.2' });
    expect(a3.status).toBe(503);
    expect(JSON.parse(a3.text).error).toContain('FB_CONSOLE_MAX_CLIENTS_PER_ADDRESS=2');
    // Another address still gets in, until the hub is full for anonymous clients.
    const b1 = stream('198.51.100.3');
    const b2 = stream('198.51.100.3');
    expect([await b1.status, await b2.status]).toEqual([200, 200]);
    const c = await call('/console/events', { from: '198.51.100.4' });
    expect(c.status).toBe(503);
    expect(JSON.parse(c.text).error).toContain('FB_CONSOLE_MAX_CLIENTS=4');
    // The operator logs in and gets a stream: an anonymous one is ended to make room.
    const session = await login('198.51.100.1', TOKEN);
    expect(session.status).toBe(200);
    const cookie = String(session.headers['set-cookie']).split(';')[0] as string;
    const admin = stream('198.51.100.2', cookie);
    expect(await admin.status).toBe(200);
    await waitFor('an anonymous stream ended', () =>
      [a1, a2, b1, b2].some((s) => s.ended()) ? true : undefined,
    );
    expect(admin.ended()).toBe(false);
    const metrics = await collector.metrics();
    expect(metrics?.get('fb_cloud_console_clients_dropped_total{reason="address"}')).toBe(1);
    expect(metrics?.get('fb_cloud_console_clients_dropped_total{reason="full"}')).toBe(1);
    expect(metrics?.get('fb_cloud_console_clients_dropped_total{reason="evicted"}')).toBe(1);
  });
});

describe('login failure limit', () => {
  it('answers 429 with Retry-After after 5 wrong tokens from one address, even for the right one, and not for others', async () => {
    for (let i = 0; i < 5; i++)
      expect((await login('198.51.100.9', 'wrong-token-wrong-token-wrong')).status).toBe(401);
    const limited = await login('198.51.100.9', 'wrong-token-wrong-token-wrong');
    expect(limited.status).toBe(429);
    const wait = Number(limited.headers['retry-after']);
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(60);
    expect(JSON.parse(limited.text).error).toContain('198.51.100.9');
    expect((await login('198.51.100.9', TOKEN)).status).toBe(429);
    expect((await login('198.51.100.10', TOKEN)).status).toBe(200);
  });
});

describe('read API', () => {
  it('f=csv prefixes text cells a spreadsheet would run as formulas, and leaves numbers alone', async () => {
    const r = await call('/collections/all/items?f=csv&limit=1000');
    expect(r.status).toBe(200);
    const lines = r.text.trimEnd().split('\r\n');
    expect(lines.some((l) => l.includes(`"'=HYPERLINK(""http://evil.example"",""x"")"`))).toBe(true);
    expect(lines.some((l) => l.includes(",'+SUM(1;2),"))).toBe(true);
    expect(lines.some((l) => l.includes(",'@cmd,"))).toBe(true);
    expect(lines.some((l) => l.includes(',-1.5,'))).toBe(true);
    const locations = await call('/collections/all/locations?f=csv&datetime=../..');
    expect(locations.text).toContain(`"'=HYPERLINK(`);
  });

  it('EDR locations without datetime read the 30 days up to the newest reading; a datetime reaches further', async () => {
    const names = async (query: string) => {
      const r = await call(`/collections/all/locations${query}`);
      expect(r.status).toBe(200);
      return (JSON.parse(r.text) as { features: { id: string }[] }).features.map((f) => f.id).sort();
    };
    expect(await names('')).toEqual(['st-1', 'st-3', FORMULA_STATION].sort());
    expect(await names('?datetime=../..')).toEqual(['st-1', 'st-2', 'st-3', FORMULA_STATION].sort());
    const api = JSON.parse((await call('/api')).text) as {
      paths: Record<string, { get: { parameters: { name?: string; description?: string }[] } }>;
    };
    const datetime = api.paths['/collections/{collectionId}/locations']?.get.parameters.find(
      (p) => p.name === 'datetime',
    );
    expect(datetime?.description).toContain('30 days');
  });
});
