/**
 * Host-side steps of the Raspberry Pi emulation proof (test/pi/emulation.sh), run with tsx:
 *   provision        register the edge (nkey), write the nats-server authorization and the user-data
 *   apply-user-data  do what cloud-init does with that user-data on the Pi, into the arm64 rootfs
 *   publish          publish readings over MQTT with mqtt.js (QoS 1), count PUBACKs, sample the agent's RSS
 *   pg-count         wait until Postgres holds N observations of the edge
 *   buffer-rows      rows waiting in the agent's SQLite buffer file
 *   free-ports       N free loopback ports
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  addEdge,
  collectorSeed,
  type EdgeRelease,
  renderAuthorization,
  renderProvisioning,
} from '@fieldbeam/cloud';
import { fromSeed } from '@nats-io/nkeys';
import mqtt from 'mqtt';
import pg from 'pg';

const fromCloud = createRequire(new URL('../../cloud/package.json', import.meta.url));
const fromEdge = createRequire(new URL('../../edge/package.json', import.meta.url));
const yaml = fromCloud('yaml') as { parse(text: string): unknown };

const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function need(values: Record<string, unknown>, ...names: string[]): void {
  const missing = names.filter((n) => values[n] === undefined);
  if (missing.length) throw new Error(`missing --${missing.join(', --')}`);
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const a = s.address();
    return typeof a === 'object' && a ? a.port : 0;
  });
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/**
 * Registers the edge as `fieldbeam-cloud edge add` would, writes the nats-server authorization (plus a
 * password user for the collector process, which has no nkey setting yet) and renders the user-data.
 */
function provision(args: string[]): void {
  const { values: v } = parseArgs({
    args,
    options: {
      out: { type: 'string' },
      edge: { type: 'string' },
      'collector-url': { type: 'string' },
      release: { type: 'string' },
      'nats-url': { type: 'string' },
      'mqtt-port': { type: 'string' },
      'http-port': { type: 'string' },
      kind: { type: 'string', default: 'deb' },
      /** JSON list of more `sensors` entries (the benchmark's JSON sensor). */
      'extra-sensors': { type: 'string' },
    },
  });
  need(v, 'out', 'edge', 'collector-url', 'release', 'nats-url', 'mqtt-port', 'http-port');
  const dir = v.out as string;
  const edge = v.edge as string;
  const idDir = join(dir, 'identity');
  const added = addEdge(idDir, edge, { rotate: true });
  const collectorPassword = randomBytes(12).toString('hex');
  const collectorKey = fromSeed(new TextEncoder().encode(collectorSeed(idDir))).getPublicKey();
  const auth = renderAuthorization(
    [{ id: edge, publicKey: added.publicKey, created: new Date().toISOString() }],
    collectorKey,
  ).replace('users = [', `users = [\n    { user: "collector", password: "${collectorPassword}" }`);
  writeFileSync(join(dir, 'nats-auth.conf'), auth);
  const mqttPassword = randomBytes(9).toString('base64url');
  const release = JSON.parse(readFileSync(v.release as string, 'utf8')) as EdgeRelease;
  const p = renderProvisioning({
    edgeId: edge,
    collectorUrl: v['collector-url'] as string,
    kind: v.kind === 'bundle' ? 'bundle' : 'deb',
    release,
    nats: { servers: [v['nats-url'] as string], nkeySeed: added.seed },
    // Everything in the proof listens on loopback; on a Pi the broker takes 0.0.0.0 (users are set).
    mqtt: {
      host: '127.0.0.1',
      port: Number(v['mqtt-port']),
      users: [{ username: 'sensors', password: mqttPassword }],
    },
    http: { host: '127.0.0.1', port: Number(v['http-port']) },
    sensors: [
      {
        topic: 'sensors/+station/temperature',
        decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' },
      },
      ...(v['extra-sensors'] ? (JSON.parse(v['extra-sensors']) as unknown[]) : []),
    ],
  });
  writeFileSync(join(dir, 'user-data'), p.userData, { mode: 0o600 });
  out({
    userData: join(dir, 'user-data'),
    downloadUrl: p.downloadUrl,
    collectorUser: 'collector',
    collectorPassword,
    mqttUser: 'sensors',
    mqttPassword,
  });
}

interface WriteFile {
  path: string;
  content?: string;
  permissions?: string;
  owner?: string;
  encoding?: string;
  append?: boolean;
  defer?: boolean;
}

/**
 * What cloud-init's write_files and runcmd modules do, aimed at a rootfs: files written with their
 * mode (owner root; the first-boot script fixes the group), runcmd turned into a script for the chroot.
 * Keys it does not implement fail loudly instead of being skipped.
 */
function applyUserData(args: string[]): void {
  const { values: v } = parseArgs({
    args,
    options: { 'user-data': { type: 'string' }, root: { type: 'string' }, runcmd: { type: 'string' } },
  });
  need(v, 'user-data', 'root', 'runcmd');
  const text = readFileSync(v['user-data'] as string, 'utf8');
  if (!text.startsWith('#cloud-config\n')) throw new Error('user-data does not start with #cloud-config');
  const doc = yaml.parse(text) as Record<string, unknown>;
  const known = new Set(['write_files', 'runcmd', 'hostname']);
  const unknown = Object.keys(doc).filter((k) => !known.has(k));
  if (unknown.length) throw new Error(`user-data keys this emulation does not apply: ${unknown.join(', ')}`);
  const root = v.root as string;
  const written: string[] = [];
  for (const f of (doc.write_files ?? []) as WriteFile[]) {
    if (!f.path.startsWith('/')) throw new Error(`write_files path ${f.path} is not absolute`);
    if (f.encoding || f.append || f.defer)
      throw new Error(`write_files ${f.path}: encoding/append/defer not emulated`);
    if (f.owner && f.owner !== 'root:root')
      throw new Error(`write_files ${f.path}: owner ${f.owner} not emulated`);
    const target = join(root, f.path);
    mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
    const mode = Number.parseInt(f.permissions ?? '0644', 8);
    writeFileSync(target, f.content ?? '', { mode });
    chmodSync(target, mode);
    chownSync(target, 0, 0);
    written.push(`${f.path} ${f.permissions ?? '0644'}`);
  }
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const lines = ((doc.runcmd ?? []) as (string | string[])[]).map((c) =>
    Array.isArray(c) ? c.map(q).join(' ') : `sh -c ${q(c)}`,
  );
  writeFileSync(v.runcmd as string, `#!/bin/sh\n# cloud-init runcmd\nset -e\n${lines.join('\n')}\n`, {
    mode: 0o755,
  });
  out({ written, runcmd: lines, hostname: doc.hostname ?? null });
}

function vmRss(pid: number): { rssKb: number; hwmKb: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0);
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** QoS 1 readings through mqtt.js with a bounded window; the PUBACK means "in the agent's buffer". */
async function publish(args: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args,
    options: {
      port: { type: 'string' },
      user: { type: 'string' },
      pass: { type: 'string' },
      station: { type: 'string' },
      count: { type: 'string', default: '100' },
      window: { type: 'string', default: '32' },
      pid: { type: 'string' },
      'timeout-s': { type: 'string', default: '120' },
    },
  });
  need(v, 'port', 'user', 'pass', 'station');
  const count = Number(v.count);
  const window = Number(v.window);
  const pid = v.pid ? Number(v.pid) : undefined;
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${v.port}`, {
    username: v.user as string,
    password: v.pass as string,
    clientId: `pi-proof-${v.station}-${process.pid}`,
    reconnectPeriod: 0,
    connectTimeout: 30_000,
  });
  let peakRssKb = 0;
  const sampler = pid
    ? setInterval(() => {
        peakRssKb = Math.max(peakRssKb, vmRss(pid)?.rssKb ?? 0);
      }, 100)
    : undefined;
  const topic = `sensors/${v.station}/temperature`;
  const t0 = performance.now();
  let next = 0;
  let acked = 0;
  const deadline = Date.now() + Number(v['timeout-s']) * 1000;
  await new Promise<void>((resolve, reject) => {
    const guard = setInterval(() => {
      if (Date.now() > deadline) finish(new Error(`only ${acked}/${count} PUBACKs in ${v['timeout-s']} s`));
    }, 500);
    function finish(err?: Error) {
      clearInterval(guard);
      if (err) reject(err);
      else resolve();
    }
    const send = () => {
      while (next < count && next - acked < window) {
        const value = (20 + (next % 100) / 10).toFixed(1);
        next++;
        client.publishAsync(topic, value, { qos: 1 }).then(() => {
          acked++;
          if (acked === count) finish();
          else send();
        }, finish);
      }
    };
    if (count === 0) finish();
    else send();
  }).finally(() => {
    if (sampler) clearInterval(sampler);
  });
  const ms = performance.now() - t0;
  await client.endAsync();
  const mem = pid ? vmRss(pid) : undefined;
  out({
    station: v.station,
    acked,
    ms: Math.round(ms),
    perSecond: Math.round((acked * 1000) / ms),
    ...(mem ? { rssKb: Math.max(peakRssKb, mem.rssKb), hwmKb: mem.hwmKb } : {}),
  });
  process.exit(0);
}

/** Polls Postgres until the edge has at least --count observations (or times out, exit 1). */
async function pgCount(args: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args,
    options: {
      db: { type: 'string' },
      edge: { type: 'string' },
      count: { type: 'string' },
      station: { type: 'string' },
      'timeout-s': { type: 'string', default: '90' },
    },
  });
  need(v, 'db', 'edge', 'count');
  const want = Number(v.count);
  const pool = new pg.Pool({ connectionString: v.db as string, max: 1 });
  const t0 = Date.now();
  const deadline = t0 + Number(v['timeout-s']) * 1000;
  let have = 0;
  let stations: Record<string, number> = {};
  try {
    for (;;) {
      const r = await pool.query<{ station: string; n: string }>(
        `SELECT station, count(*) AS n FROM observations WHERE edge = $1 ${v.station ? 'AND station = $2' : ''} GROUP BY station`,
        v.station ? [v.edge, v.station] : [v.edge],
      );
      stations = Object.fromEntries(r.rows.map((row) => [row.station, Number(row.n)]));
      have = Object.values(stations).reduce((a, b) => a + b, 0);
      if (have >= want || Date.now() > deadline) break;
      await sleep(500);
    }
    const sample = await pool.query(
      `SELECT station, variable, value, unit, quality, time FROM observations WHERE edge = $1 ORDER BY ingested DESC LIMIT 1`,
      [v.edge],
    );
    out({ have, want, waitedMs: Date.now() - t0, stations, latest: sample.rows[0] ?? null });
  } finally {
    await pool.end();
  }
  process.exit(have >= want ? 0 : 1);
}

/** Rows in the buffer file's outbox (read with the host's better-sqlite3: the file format is portable). */
function bufferRows(args: string[]): void {
  const { values: v } = parseArgs({ args, options: { file: { type: 'string' } } });
  need(v, 'file');
  type Db = { prepare(sql: string): { get(): unknown }; close(): void };
  const Database = fromEdge('better-sqlite3') as new (file: string, opts: object) => Db;
  const db = new Database(v.file as string, { readonly: true, fileMustExist: true });
  try {
    const { n } = db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number };
    const { quick_check } = db.prepare('PRAGMA quick_check').get() as { quick_check: string };
    out({ rows: n, quickCheck: quick_check });
  } finally {
    db.close();
  }
}

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (a: string[]) => void | Promise<void>> = {
  provision,
  'apply-user-data': applyUserData,
  publish,
  'pg-count': pgCount,
  'buffer-rows': bufferRows,
  'free-ports': async (a) => {
    out(await freePorts(Number(a[0] ?? 1)));
  },
};
const run = command ? commands[command] : undefined;
if (!run) {
  process.stderr.write(`usage: pi-helper ${Object.keys(commands).join('|')} ...\n`);
  process.exit(2);
}
Promise.resolve(run(rest)).catch((err: Error) => {
  process.stderr.write(`pi-helper ${command}: ${err.message}\n`);
  process.exit(1);
});
