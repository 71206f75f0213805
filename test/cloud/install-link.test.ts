import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  builtCli,
  type CollectorProcess,
  type NatsServer,
  readMetric,
  startCollectorProcess,
  startNatsServer,
  startPostgres,
  type TempDir,
  type TestPostgres,
  tempDir,
} from '../harness/index.js';

/**
 * The install link as a Pi owner uses it, against the collector as its own process: `fieldbeam-cloud
 * edge add --url` (the built CLI, same identity folder as the running collector, no restart) prints
 * the link; the collector answers the script once, then 410; the token is nowhere in its log.
 */

let nats: NatsServer;
let postgres: TestPostgres;
let dir: TempDir;
let collector: CollectorProcess;
const identityDir = () => join(dir.path, 'identity');
const releasesDir = () => join(dir.path, 'releases');

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
  dir = tempDir('fieldbeam-install-link-');
  mkdirSync(releasesDir());
  const deb = 'fieldbeam-edge_0.1.0_arm64.deb';
  const bytes = randomBytes(4096);
  writeFileSync(join(releasesDir(), deb), bytes);
  writeFileSync(
    join(releasesDir(), 'release.json'),
    JSON.stringify({
      version: '0.1.0',
      deb: { file: deb, sha256: createHash('sha256').update(bytes).digest('hex') },
      bundle: { file: 'fieldbeam-edge-0.1.0-linux-arm64.tar.zst', sha256: 'b'.repeat(64) },
    }),
  );
  collector = await startCollectorProcess({
    name: 'install-link',
    natsUrl: nats.url,
    databaseUrl: postgres.url,
    dataDir: join(dir.path, 'data'),
    logLevel: 'info',
    // No nkey for this test's NATS server: the collector.nk edge add creates is not used to connect.
    env: {
      FB_IDENTITY_DIR: identityDir(),
      FB_RELEASES_DIR: releasesDir(),
      NATS_USER: 'collector',
      NATS_PASS: 'x',
    },
  });
});

afterAll(async () => {
  await collector?.stop();
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

function edgeAdd(id: string, url = `http://127.0.0.1:${collector.httpPort}`): string {
  const r = spawnSync(
    process.execPath,
    [
      builtCli.cloud,
      'edge',
      'add',
      id,
      '--url',
      url,
      '--nats',
      nats.url,
      '--out',
      join(dir.path, `${id}.user-data`),
    ],
    {
      env: { ...process.env, FB_IDENTITY_DIR: identityDir(), FB_RELEASES_DIR: releasesDir() },
      encoding: 'utf8',
    },
  );
  expect(r.status, r.stderr).toBe(0);
  const link = /^one-line install \(on the Pi, once, until \S+\): curl -fsSL (\S+) \| sudo sh$/m.exec(
    r.stdout,
  )?.[1];
  expect(link).toBeDefined();
  return link as string;
}

describe('the install link against a running collector', () => {
  it('answers the script once, then 410; an unknown token 404; counted; the token is not logged', async () => {
    const link = edgeAdd('gw-link');
    const token = link.split('/').pop() as string;
    const first = await fetch(link);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('text/x-shellscript');
    expect(first.headers.get('cache-control')).toBe('no-store');
    const script = await first.text();
    expect(script).toMatch(/^edge: gw-link$/m);
    expect(script).toContain(`/edge/releases/fieldbeam-edge_0.1.0_arm64.deb`);
    expect(spawnSync('dash', ['-n'], { input: script }).status).toBe(0);

    const second = await fetch(link);
    expect(second.status).toBe(410);
    await second.arrayBuffer();
    const unknown = await fetch(link.replace(token, randomBytes(24).toString('base64url')));
    expect(unknown.status).toBe(404);
    await unknown.arrayBuffer();

    expect(
      await readMetric(collector.httpPort, 'fb_cloud_edge_enrollments_total', 'outcome="redeemed"'),
    ).toBe(1);
    expect(await readMetric(collector.httpPort, 'fb_cloud_edge_enrollments_total', 'outcome="used"')).toBe(1);
    expect(await readMetric(collector.httpPort, 'fb_cloud_edge_enrollments_total', 'outcome="unknown"')).toBe(
      1,
    );
    const log = collector.process?.output() ?? '';
    expect(log).toContain('edge install link redeemed');
    expect(log).not.toContain(token);
    expect(readdirSync(join(identityDir(), 'enrollments'))).toHaveLength(1);
  });

  it("answers the link and the release by the collector's public name, which the console refuses unless allowed", async () => {
    // The Pi resolves the name to the collector; here the request goes to its port with that Host.
    const name = `collector.example.org:${collector.httpPort}`;
    const byName = (path: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: collector.httpPort, path, headers: { host: name } },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => {
              text += d;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    const link = edgeAdd('gw-public', `http://${name}`);
    const script = await byName(new URL(link).pathname);
    expect(script.status).toBe(200);
    expect(script.text).toContain(`http://${name}/edge/releases/fieldbeam-edge_0.1.0_arm64.deb`);
    expect((await byName('/edge/releases/release.json')).status).toBe(200);
    // DNS rebinding guard: the console and the API are for the names the collector is told of.
    const fleet = await byName('/console/api/fleet');
    expect(fleet.status).toBe(421);
    expect(fleet.text).toContain('FB_HTTP_ALLOWED_HOSTS');
  });
});
