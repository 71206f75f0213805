import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type HttpApi, startHttpApi } from '../http-api.js';
import { runEdgeCommand } from '../identity/edge-command.js';
import { createCloudLogger } from '../logger.js';
import { createCloudMetrics } from '../metrics.js';
import { releaseRoutes } from '../releases/index.js';
import { type EnrollOutcome, enrollRoutes } from './enroll-route.js';
import { enrollmentsDir, tokenHash } from './enrollment.js';

/**
 * The install link end to end: `edge add --url` (the command itself) writes the enrollment; the
 * collector's HTTP server (startHttpApi with the collector's routes and logger) redeems it.
 */

let dir: string;
let api: HttpApi | undefined;
let logText: string;
let outcomes: EnrollOutcome[];
let now: Date | undefined;
const identity = () => join(dir, 'identity');
const releases = () => join(dir, 'releases');

function writeRelease(folder: string, version: string): string {
  mkdirSync(folder, { recursive: true });
  const deb = `fieldbeam-edge_${version}_arm64.deb`;
  const bytes = `package ${version}`;
  writeFileSync(join(folder, deb), bytes);
  const sha = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(
    join(folder, 'release.json'),
    JSON.stringify({
      version,
      deb: { file: deb, sha256: sha },
      bundle: { file: `fieldbeam-edge-${version}-linux-arm64.tar.zst`, sha256: 'b'.repeat(64) },
    }),
  );
  return sha;
}

/** Runs `edge add ID --url ...`; returns the printed output and the link's token. */
function edgeAdd(id: string, extra: string[] = []): { out: string; token: string; url: string } {
  const out = new PassThrough();
  const err = new PassThrough();
  const status = runEdgeCommand(
    [
      'add',
      id,
      '--url',
      'http://collector.lan:8080',
      '--nats',
      'nats://collector.lan:4222',
      '--out',
      join(dir, `${id}.user-data`),
      ...extra,
    ],
    { identityDir: identity(), releasesDir: releases(), httpHost: '0.0.0.0' },
    out,
    err,
  );
  const text = String(out.read() ?? '');
  expect(status, String(err.read() ?? '')).toBe(0);
  const url = /^one-line install \(on the Pi, once, until \S+\): curl -fsSL (\S+) \| sudo sh$/m.exec(
    text,
  )?.[1];
  expect(url).toMatch(/^http:\/\/collector\.lan:8080\/edge\/install\/[A-Za-z0-9_-]{32}$/);
  return { out: text, token: (url as string).split('/').pop() as string, url: url as string };
}

async function startCollectorHttp(opts: { releasesDir?: string; identityDir?: string } = {}) {
  const log = createCloudLogger(
    { LOG_LEVEL: 'debug', LOG_FORMAT: 'json' },
    {
      write: (t) => {
        logText += t;
      },
      tty: false,
      journal: false,
    },
  );
  const metrics = createCloudMetrics();
  api = await startHttpApi(
    {
      host: '127.0.0.1',
      port: 0,
      log,
      onError: (s) => metrics.httpErrors.inc({ status: String(s) }),
    },
    {
      ...releaseRoutes({ dir: releases() }),
      ...enrollRoutes({
        identityDir: opts.identityDir ?? identity(),
        releasesDir: 'releasesDir' in opts ? opts.releasesDir : releases(),
        log,
        onOutcome: (o) => {
          outcomes.push(o);
          metrics.edgeEnrollments.inc({ outcome: o });
        },
        now: () => now ?? new Date(),
      }),
    },
  );
  return metrics;
}

const get = (token: string, method = 'GET') =>
  fetch(`http://127.0.0.1:${api?.port}/edge/install/${token}`, { method });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fb-enroll-'));
  logText = '';
  outcomes = [];
  now = undefined;
  writeRelease(releases(), '1.0.0');
});
afterEach(async () => {
  await api?.close();
  api = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('GET /edge/install/<token>', () => {
  it('answers the install script once: the config, the seed and the first-boot script; then 410', async () => {
    const { token } = edgeAdd('gw-1');
    const enrollment = join(enrollmentsDir(identity()), `${tokenHash(token)}.json`);
    expect(statSync(enrollment).mode & 0o777).toBe(0o600);
    const sealed = readFileSync(enrollment, 'utf8');
    expect(JSON.parse(sealed)).toMatchObject({ edge: 'gw-1', expires: expect.any(String) });
    const metrics = await startCollectorHttp();

    const r = await get(token);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/x-shellscript');
    expect(r.headers.get('cache-control')).toBe('no-store');
    const script = await r.text();
    const seed = /^(SU[A-Z2-7]{56})$/m.exec(script)?.[1];
    expect(seed).toBeDefined();
    // Nothing on the collector's disk holds the seed or the config in clear, before or after.
    expect(sealed).not.toContain(seed);
    expect(sealed).not.toContain('mqtt');
    expect(script).toMatch(/^edge: gw-1$/m);
    expect(script).toContain('/usr/local/sbin/fieldbeam-firstboot');
    expect(script).toContain("URL='http://collector.lan:8080/edge/releases/fieldbeam-edge_1.0.0_arm64.deb'");
    expect(script.trimEnd().split('\n').pop()).toBe('fieldbeam_install whole');

    const again = await get(token);
    expect(again.status).toBe(410);
    expect(((await again.json()) as { error: string }).error).toMatch(
      /used already .*edge add gw-1 --rotate/,
    );
    const left = readdirSync(enrollmentsDir(identity()));
    expect(left).toEqual([`${tokenHash(token)}.used`]);
    const used = readFileSync(join(enrollmentsDir(identity()), left[0] as string), 'utf8');
    expect(used).not.toContain(seed);
    expect(JSON.parse(used)).toMatchObject({ edge: 'gw-1' });
    expect(outcomes).toEqual(['redeemed', 'used']);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/fb_cloud_edge_enrollments_total\{outcome="redeemed"\} 1/);
    expect(text).toMatch(/fb_cloud_edge_enrollments_total\{outcome="used"\} 1/);
  });

  it('of requests at once, exactly one gets the script', async () => {
    const { token } = edgeAdd('gw-2');
    await startCollectorHttp();
    const answers = await Promise.all(Array.from({ length: 12 }, () => get(token)));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 410)).toHaveLength(11);
    await Promise.all(answers.map((a) => a.arrayBuffer()));
  });

  it('refuses an expired link with 410 and removes its enrollment', async () => {
    const { token } = edgeAdd('gw-3', ['--token-ttl', 'PT1H']);
    await startCollectorHttp();
    now = new Date(Date.now() + 2 * 3_600_000);
    const r = await get(token);
    expect(r.status).toBe(410);
    expect(((await r.json()) as { error: string }).error).toMatch(/expired/);
    expect(readdirSync(enrollmentsDir(identity()))).toEqual([]);
    expect(outcomes).toEqual(['expired']);
    // Within its time the same kind of link works.
    now = undefined;
    expect((await get(edgeAdd('gw-4', ['--token-ttl', 'PT1H']).token)).status).toBe(200);
  });

  it('answers 404 to an unknown token and keeps nothing for a flood of them', async () => {
    edgeAdd('gw-5');
    await startCollectorHttp();
    const before = readdirSync(enrollmentsDir(identity())).sort();
    const tokens = [
      ...Array.from({ length: 200 }, () => randomBytes(24).toString('base64url')),
      'short',
      'not%20a%20token',
      '..',
      'x'.repeat(500),
    ];
    for (const t of tokens) {
      const r = await get(t);
      expect([404, 400]).toContain(r.status);
      await r.arrayBuffer();
    }
    expect(readdirSync(enrollmentsDir(identity())).sort()).toEqual(before);
    expect(outcomes.every((o) => o === 'unknown')).toBe(true);
    // Refusals of unknown tokens are counted, not logged.
    expect(logText).toBe('');
  });

  it('refuses an enrollment whose clear fields were edited (the seal breaks) and does not use it up', async () => {
    const { token } = edgeAdd('gw-6', ['--token-ttl', 'PT1H']);
    const file = join(enrollmentsDir(identity()), `${tokenHash(token)}.json`);
    const f = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...f, expires: '2099-01-01T00:00:00Z' }));
    await startCollectorHttp();
    const r = await get(token);
    expect(r.status).toBe(500);
    expect(((await r.json()) as { error: string }).error).toMatch(
      /cannot be opened .*edge add gw-6 --rotate/,
    );
    // A flipped byte of the sealed part is refused the same way.
    const flipped = `${f.sealed[0] === 'A' ? 'B' : 'A'}${f.sealed.slice(1)}`;
    writeFileSync(file, JSON.stringify({ ...f, sealed: flipped }));
    expect((await get(token)).status).toBe(500);
    expect(outcomes).toEqual(['damaged', 'damaged']);
    expect(readdirSync(enrollmentsDir(identity()))).toEqual([`${tokenHash(token)}.json`]);
  });

  it('answers 503 without a release and keeps the link usable', async () => {
    const { token } = edgeAdd('gw-7');
    await startCollectorHttp({ releasesDir: join(dir, 'none') });
    const r = await get(token);
    expect(r.status).toBe(503);
    expect(((await r.json()) as { error: string }).error).toMatch(/not used up/);
    await api?.close();
    await startCollectorHttp();
    expect((await get(token)).status).toBe(200);
    expect(outcomes).toEqual(['no_release', 'redeemed']);
  });

  it('refuses HEAD without using the link up', async () => {
    const { token } = edgeAdd('gw-8');
    await startCollectorHttp();
    const r = await get(token, 'HEAD');
    expect(r.status).toBe(405);
    expect((await get(token)).status).toBe(200);
  });

  it('never writes the token to the log, also when the route fails', async () => {
    const { token } = edgeAdd('gw-9');
    // An identity folder the route cannot read: the server logs the failure with the request's target.
    const broken = join(dir, 'broken');
    writeFileSync(broken, 'not a folder');
    await startCollectorHttp({ identityDir: broken });
    const r = await get(token);
    expect(r.status).toBe(500);
    await api?.close();
    await startCollectorHttp();
    expect((await get(token)).status).toBe(200);
    expect((await get(token)).status).toBe(410);
    const tamper = edgeAdd('gw-10').token;
    const file = join(enrollmentsDir(identity()), `${tokenHash(tamper)}.json`);
    writeFileSync(file, readFileSync(file, 'utf8').replace('"gw-10"', '"gw-11"'));
    expect((await get(tamper)).status).toBe(500);
    expect(logText).toContain('HTTP route failed');
    expect(logText).toContain('/edge/install/(redacted)');
    expect(logText).toContain('edge install link redeemed');
    expect(logText).toContain('used already');
    expect(logText).toContain('cannot be opened');
    expect(logText).not.toContain(token);
    expect(logText).not.toContain(tamper);
    expect(logText).not.toContain(tokenHash(token));
  });
});

describe('the install script', () => {
  async function script(): Promise<string> {
    const { token } = edgeAdd('gw-s');
    await startCollectorHttp();
    return (await get(token)).text();
  }

  it('passes dash -n and writes the config, the seed and the first-boot script it embeds', async () => {
    const text = await script();
    const syntax = spawnSync('dash', ['-n'], { input: text });
    expect(syntax.status, syntax.stderr.toString()).toBe(0);
    // The config inside is what the agent reads: valid YAML with the generated MQTT user.
    const config = /cat >\/etc\/fieldbeam\/edge\.yaml\.new <<'(\w+)'\n([\s\S]*?)\n\1\n/.exec(text)?.[2];
    const parsed = parse(config ?? '');
    expect(parsed.edge).toBe('gw-s');
    expect(parsed.nats.nkey_seed_file).toBe('/etc/fieldbeam/edge.nk');
    expect(parsed.mqtt.users[0].username).toBe('sensors');
    const firstBoot = /cat >\/usr\/local\/sbin\/fieldbeam-firstboot\.new <<'(\w+)'\n([\s\S]*?)\n\1\n/.exec(
      text,
    )?.[2];
    expect(firstBoot).toMatch(/^#!\/bin\/sh\n/);
    expect(firstBoot).toContain('sha256sum -c');
    expect(firstBoot).toContain('systemctl restart fieldbeam-edge.service');
    expect(spawnSync('dash', ['-n'], { input: firstBoot }).status).toBe(0);
  });

  it('runs nothing when the download is cut short; run whole, it checks for root first', async () => {
    const text = await script();
    const stubs = join(dir, 'stubs');
    mkdirSync(stubs);
    const calls = join(dir, 'calls');
    // Every command the script could run first logs its name; `id` says "not root", so the whole
    // script stops at its first check and writes nothing.
    for (const cmd of ['id', 'dpkg', 'uname', 'mkdir', 'cat', 'mv', 'chmod', 'curl', 'sh']) {
      writeFileSync(join(stubs, cmd), `#!/bin/dash\necho ${cmd} >>${calls}\necho 1000\n`);
      chmodSync(join(stubs, cmd), 0o755);
    }
    const bytes = Buffer.from(text);
    const cuts = new Set<number>();
    for (let i = 1; i < 40; i++) cuts.add(Math.floor((bytes.length * i) / 40));
    const lastLine = bytes.lastIndexOf('fieldbeam_install whole');
    for (let n = lastLine - 2; n < bytes.length - 1; n++) cuts.add(n);
    for (const n of cuts) {
      rmSync(calls, { force: true });
      const r = spawnSync('/usr/bin/dash', [], { input: bytes.subarray(0, n), env: { PATH: stubs } });
      let called = '';
      try {
        called = readFileSync(calls, 'utf8');
      } catch {}
      expect(called, `cut at ${n} of ${bytes.length}: ${r.stderr}`).toBe('');
    }
    rmSync(calls, { force: true });
    const whole = spawnSync('/usr/bin/dash', [], { input: bytes, env: { PATH: stubs } });
    expect(whole.status).toBe(1);
    expect(whole.stderr.toString()).toMatch(/run it as root/);
    expect(readFileSync(calls, 'utf8')).toBe('id\n');
  });
});
