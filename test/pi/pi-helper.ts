/**
 * Host-side steps of the Raspberry Pi emulation proof (test/pi/emulation.sh), run with tsx:
 *   apply-user-data  do what cloud-init does with a user-data file on the Pi, into the arm64 rootfs
 *   publish          publish readings over MQTT with mqtt.js (QoS 1), count PUBACKs, sample the agent's RSS
 *   pg-count         wait until Postgres holds N observations of the edge
 *   buffer-rows      rows waiting in the agent's SQLite buffer file
 *   free-ports       N free loopback ports
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import mqtt from 'mqtt';
import pg from 'pg';

const fromCloud = createRequire(new URL('../../cloud/package.json', import.meta.url));
const fromEdge = createRequire(new URL('../../edge/package.json', import.meta.url));
const yaml = fromCloud('yaml') as typeof import('yaml');

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

interface WriteFile {
  path: string;
  content?: string;
  permissions?: string;
  owner?: string;
  encoding?: string;
  append?: boolean;
  defer?: boolean;
}

interface UserSpec {
  name: string;
  groups?: string | string[];
  shell?: string;
  lock_passwd?: boolean;
  passwd?: string;
  sudo?: string | string[] | boolean;
}

/**
 * Keys cloud-init acts on that this emulation leaves alone, with why that does not change what the
 * proof shows (Raspberry Pi Imager writes most of them). Any other key fails the run instead of being
 * skipped.
 */
const NOT_APPLIED: Record<string, string> = {
  manage_resolv_conf: 'resolver setup; the chroot uses the host resolver',
  ssh_pwauth: 'sshd settings; the proof logs in by chroot',
  ssh_authorized_keys: 'sshd settings; the proof logs in by chroot',
  enable_ssh: 'sshd settings; the proof logs in by chroot',
  chpasswd: 'passwords; the proof logs in by chroot',
  locale: 'locale generation; the agent logs in C.UTF-8',
  keyboard: 'console keymap; no console in a chroot',
  apt: 'apt sources and settings; the .deb is installed from the collector, not a repository',
  packages: 'installs from a Debian mirror (Imager asks for avahi-daemon, mDNS); not what the proof shows',
  rpi: 'Raspberry Pi interfaces (SPI, I2C, serial); no Pi hardware under emulation',
  power_state: 'reboot after first boot; the proof starts the agent itself',
};

/**
 * What cloud-init does with user-data on first boot, aimed at a rootfs, as far as the proof needs: the
 * file read as cloud-init's YAML loader reads it (a key given twice keeps its LAST value, as PyYAML
 * does: a hand-merged file with two `runcmd:` keys loses the first list), then its modules in
 * cloud-init's order: write_files, hostname, /etc/hosts, users and groups (init stage); timezone,
 * runcmd written out as cloud-init's runcmd script (config stage); deferred write_files (final stage,
 * before the script runs). The script is cloud-init's: `#!/bin/sh`, a string entry as its own line, a
 * list entry shell-quoted, and no `set -e` (cloud-init goes on after a failing line), so a caller checks
 * what each entry did. Users and groups are made in the rootfs with useradd, as cloud-init's distro
 * code does. Keys in NOT_APPLIED are listed, not applied; any other key fails loudly.
 */
function applyUserData(args: string[]): void {
  const { values: v } = parseArgs({
    args,
    options: { 'user-data': { type: 'string' }, root: { type: 'string' }, runcmd: { type: 'string' } },
  });
  need(v, 'user-data', 'root', 'runcmd');
  const text = readFileSync(v['user-data'] as string, 'utf8');
  if (!text.startsWith('#cloud-config\n')) throw new Error('user-data does not start with #cloud-config');
  const parsed = yaml.parseDocument(text, { uniqueKeys: false });
  if (parsed.errors.length) throw new Error(`user-data: ${parsed.errors[0]?.message}`);
  const seen = new Set<string>();
  const duplicated: string[] = [];
  const top = parsed.contents as { items?: { key: { value?: unknown } }[] } | null;
  for (const item of top?.items ?? []) {
    const k = String(item.key?.value);
    if (seen.has(k)) duplicated.push(k);
    seen.add(k);
  }
  const doc = (parsed.toJS() ?? {}) as Record<string, unknown>;
  const applied = new Set([
    'write_files',
    'runcmd',
    'hostname',
    'fqdn',
    'preserve_hostname',
    'manage_etc_hosts',
    'users',
    'timezone',
  ]);
  const unknown = Object.keys(doc).filter((k) => !applied.has(k) && !(k in NOT_APPLIED));
  if (unknown.length) throw new Error(`user-data keys this emulation does not apply: ${unknown.join(', ')}`);
  const root = v.root as string;
  const inRoot = (cmd: string[]) =>
    execFileSync('chroot', [root, ...cmd], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
  const files = (doc.write_files ?? []) as WriteFile[];
  const written: string[] = [];
  const writeFile = (f: WriteFile) => {
    if (!f.path.startsWith('/')) throw new Error(`write_files path ${f.path} is not absolute`);
    const target = join(root, f.path);
    mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
    const mode = Number.parseInt(f.permissions ?? '0644', 8);
    let data: Buffer = Buffer.from(f.content ?? '', 'utf8');
    const enc = f.encoding ?? 'text/plain';
    if (['b64', 'base64'].includes(enc)) data = Buffer.from(f.content ?? '', 'base64');
    else if (['gz+b64', 'gzip+base64', 'gz+base64', 'gzip+b64'].includes(enc))
      data = gunzipSync(Buffer.from(f.content ?? '', 'base64'));
    else if (!['text/plain', 'text'].includes(enc)) throw new Error(`write_files ${f.path}: encoding ${enc}`);
    if (f.append) appendFileSync(target, data);
    else writeFileSync(target, data);
    chmodSync(target, mode);
    chownSync(target, 0, 0);
    if (f.owner && f.owner !== 'root:root') inRoot(['chown', f.owner, f.path]);
    written.push(`${f.path} ${f.permissions ?? '0644'}${f.defer ? ' (deferred)' : ''}`);
  };
  // init stage
  for (const f of files.filter((f) => !f.defer)) writeFile(f);
  const hostname = (doc.fqdn ?? doc.hostname) as string | undefined;
  if (hostname && doc.preserve_hostname !== true) {
    writeFileSync(join(root, 'etc/hostname'), `${String(hostname).split('.')[0]}\n`);
  }
  if (hostname && doc.manage_etc_hosts === true) {
    const short = String(hostname).split('.')[0];
    writeFileSync(
      join(root, 'etc/hosts'),
      `127.0.0.1 localhost\n127.0.1.1 ${hostname === short ? short : `${hostname} ${short}`}\n::1 localhost ip6-localhost ip6-loopback\n`,
    );
  }
  const users: string[] = [];
  for (const u of (doc.users ?? []) as (string | UserSpec)[]) {
    if (u === 'default') continue;
    if (typeof u === 'string') throw new Error(`users: "${u}" as a plain name is not emulated`);
    const groups = (Array.isArray(u.groups) ? u.groups : (u.groups ?? '').split(','))
      .map((g) => g.trim())
      .filter(Boolean);
    // cloud-init creates the groups a user is put in that do not exist yet (gpio, spi, i2c on Debian).
    for (const g of groups) {
      try {
        inRoot(['getent', 'group', g]);
      } catch {
        inRoot(['groupadd', g]);
      }
    }
    inRoot([
      'useradd',
      '--create-home',
      '--shell',
      u.shell ?? '/bin/sh',
      ...(groups.length ? ['--groups', groups.join(',')] : []),
      ...(u.passwd ? ['--password', u.passwd] : []),
      u.name,
    ]);
    if (u.lock_passwd !== false) inRoot(['passwd', '-l', u.name]);
    const sudo = u.sudo === true ? ['ALL=(ALL) NOPASSWD:ALL'] : u.sudo ? [u.sudo].flat() : [];
    if (sudo.length) {
      const f = join(root, 'etc/sudoers.d/90-cloud-init-users');
      appendFileSync(f, sudo.map((r) => `${u.name} ${r}\n`).join(''), { mode: 0o440 });
    }
    users.push(u.name);
  }
  // config stage
  if (typeof doc.timezone === 'string') {
    writeFileSync(join(root, 'etc/timezone'), `${doc.timezone}\n`);
  }
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const lines = ((doc.runcmd ?? []) as (string | string[])[]).map((c) =>
    Array.isArray(c) ? c.map((w) => q(String(w))).join(' ') : String(c),
  );
  writeFileSync(v.runcmd as string, `#!/bin/sh\n${lines.join('\n')}\n`, { mode: 0o700 });
  // final stage: deferred files, then the runcmd script (the caller runs it in the rootfs)
  for (const f of files.filter((f) => f.defer)) writeFile(f);
  out({
    written,
    users,
    runcmd: lines,
    hostname: hostname ?? null,
    duplicatedKeys: duplicated,
    notApplied: Object.keys(doc).filter((k) => k in NOT_APPLIED),
  });
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

/**
 * QoS 1 readings (Zigbee2MQTT-style, one temperature each) through mqtt.js with a bounded window; the
 * PUBACK means "in the agent's buffer".
 */
async function publish(args: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
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
  const client = await mqtt.connectAsync(`mqtt://${v.host}:${v.port}`, {
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
  // Zigbee2MQTT's default topic and payload: the agent edge add sets up auto-registers them.
  const topic = `zigbee2mqtt/${v.station}`;
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
        const value = JSON.stringify({ temperature: 20 + (next % 100) / 10 });
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
