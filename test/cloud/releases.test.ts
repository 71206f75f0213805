import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
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
} from '../harness/index.js';

/**
 * The collector's `GET /edge/releases/<name>` as its own process: the files of FB_RELEASES_DIR with
 * their type, length and ETag; nothing outside that folder, whatever the path says.
 */
const DEB = 'fieldbeam-edge_0.1.0_arm64.deb';
const BUNDLE = 'fieldbeam-edge-0.1.0-linux-arm64.tar.zst';
const SECRET = 'not-for-download-7f3a';

let nats: NatsServer;
let postgres: TestPostgres;
let dir: TempDir;
let releasesDir: string;
let withReleases: CollectorProcess;
let withoutReleases: CollectorProcess;
const files: Record<string, Buffer> = {};

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request with the path exactly as given (fetch would normalise `..` and friends away). */
function raw(port: number, path: string, opts: { method?: string; headers?: Record<string, string> } = {}) {
  return new Promise<Raw>((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path,
      method: opts.method ?? 'GET',
      headers: opts.headers,
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const errorOf = (r: Raw) => (JSON.parse(r.body.toString()) as { error: string }).error;

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
  dir = tempDir('fieldbeam-releases-');
  releasesDir = join(dir.path, 'releases');
  mkdirSync(join(releasesDir, 'old'), { recursive: true });
  // A few MB, so the response is streamed in many chunks.
  files[DEB] = randomBytes(3 * 1024 * 1024 + 17);
  files[BUNDLE] = randomBytes(2 * 1024 * 1024 + 5);
  files['release.json'] = Buffer.from(
    `${JSON.stringify({
      version: '0.1.0',
      deb: { file: DEB, sha256: sha(files[DEB]), bytes: files[DEB].length },
      bundle: { file: BUNDLE, sha256: sha(files[BUNDLE]), bytes: files[BUNDLE].length },
    })}\n`,
  );
  files.SHA256SUMS = Buffer.from(`${sha(files[DEB])}  ${DEB}\n`);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(releasesDir, name), content);
  // What must never come out: a dot file inside, and files beside and above the folder.
  writeFileSync(join(releasesDir, '.build-key'), SECRET);
  writeFileSync(join(dir.path, 'secret.txt'), SECRET);
  writeFileSync(join(dir.path, 'releases-secret.txt'), SECRET);
  const common = { natsUrl: nats.url, databaseUrl: postgres.url };
  withReleases = await startCollectorProcess({
    ...common,
    name: 'releases-on',
    dataDir: join(dir.path, 'c1'),
    env: { FB_RELEASES_DIR: releasesDir },
  });
  withoutReleases = await startCollectorProcess({
    ...common,
    name: 'releases-off',
    dataDir: join(dir.path, 'c2'),
  });
});

afterAll(async () => {
  await Promise.all([withReleases?.stop(), withoutReleases?.stop()]);
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

describe('GET /edge/releases/<name>', () => {
  it.each([
    ['release.json', 'application/json'],
    [DEB, 'application/vnd.debian.binary-package'],
    [BUNDLE, 'application/zstd'],
    ['SHA256SUMS', 'text/plain; charset=utf-8'],
  ])('serves %s whole, with its type, length and ETag', async (name, type) => {
    const want = files[name] as Buffer;
    const res = await fetch(`http://127.0.0.1:${withReleases.httpPort}/edge/releases/${name}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(type);
    expect(res.headers.get('content-length')).toBe(String(want.length));
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(res.headers.get('last-modified')).toBe(statSync(join(releasesDir, name)).mtime.toUTCString());
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.length).toBe(want.length);
    expect(sha(body)).toBe(sha(want));
  });

  it('the files match what release.json says (what the first-boot script checks)', async () => {
    const base = `http://127.0.0.1:${withReleases.httpPort}/edge/releases`;
    const release = (await (await fetch(`${base}/release.json`)).json()) as {
      deb: { file: string; sha256: string; bytes: number };
      bundle: { file: string; sha256: string; bytes: number };
    };
    for (const f of [release.deb, release.bundle]) {
      const body = Buffer.from(await (await fetch(`${base}/${f.file}`)).arrayBuffer());
      expect({ sha256: sha(body), bytes: body.length }).toEqual({ sha256: f.sha256, bytes: f.bytes });
    }
  });

  it('answers If-None-Match with 304 and no body; another tag gets the file', async () => {
    const port = withReleases.httpPort;
    const first = await raw(port, `/edge/releases/${DEB}`);
    const etag = first.headers.etag as string;
    expect(etag).toBeTruthy();
    const again = await raw(port, `/edge/releases/${DEB}`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers.etag).toBe(etag);
    const weakInList = await raw(port, `/edge/releases/${DEB}`, {
      headers: { 'if-none-match': `"other", W/${etag}` },
    });
    expect(weakInList.status).toBe(304);
    const stale = await raw(port, `/edge/releases/${DEB}`, { headers: { 'if-none-match': '"0-0"' } });
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(files[DEB]?.length);
  });

  it('HEAD gives the headers without the body', async () => {
    const res = await raw(withReleases.httpPort, `/edge/releases/${BUNDLE}`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe(String(files[BUNDLE]?.length));
    expect(res.body.length).toBe(0);
  });

  it('refuses names that are not plain file names of the folder (400), and nothing outside leaks', async () => {
    const port = withReleases.httpPort;
    const refused = [
      '/edge/releases/..%2fsecret.txt',
      '/edge/releases/%2e%2e%2fsecret.txt',
      '/edge/releases/%2E%2E%2Fsecret.txt',
      '/edge/releases/..%5csecret.txt',
      '/edge/releases/..%2f..%2f..%2f..%2fetc%2fpasswd',
      '/edge/releases/%2fetc%2fpasswd',
      '/edge/releases/old%2f..%2f..%2fsecret.txt',
      '/edge/releases/.build-key',
      '/edge/releases/%2ebuild-key',
      '/edge/releases/...',
      '/edge/releases/release.json%00',
      '/edge/releases/a%20b',
    ];
    for (const path of refused) {
      const res = await raw(port, path);
      expect(res.body.toString(), path).not.toContain(SECRET);
      expect(res.body.toString(), path).not.toContain('root:');
      expect(res.status, path).toBe(400);
      expect(errorOf(res), path).toMatch(/^release file name /);
    }
    // Paths the URL parser resolves before routing ("/edge/releases/../x" is "/edge/x"): no route at all.
    for (const path of [
      '/edge/releases/..',
      '/edge/releases/../secret.txt',
      '/edge/releases/%2e%2e/secret.txt',
      '/edge/releases/../../secret.txt',
      '/edge/releases/..%2f',
    ]) {
      const res = await raw(port, path);
      expect(res.body.toString(), path).not.toContain(SECRET);
      expect([400, 404], path).toContain(res.status);
    }
    // A sibling file whose name only starts like the folder's is not "inside" it either.
    const sibling = await raw(port, '/edge/releases/..%2freleases-secret.txt');
    expect(sibling.status).toBe(400);
  });

  it('404 with a JSON error for a missing file and for a folder', async () => {
    const port = withReleases.httpPort;
    const missing = await raw(port, '/edge/releases/fieldbeam-edge_9.9.9_arm64.deb');
    expect(missing.status).toBe(404);
    expect(missing.headers['content-type']).toBe('application/json');
    expect(errorOf(missing)).toBe('no release file fieldbeam-edge_9.9.9_arm64.deb on this collector');
    const folder = await raw(port, '/edge/releases/old');
    expect(folder.status).toBe(404);
    expect(errorOf(folder)).toMatch(/no release file old/);
  });

  it('404 saying so when FB_RELEASES_DIR is not set', async () => {
    const res = await raw(withoutReleases.httpPort, '/edge/releases/release.json');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toBe('application/json');
    expect(errorOf(res)).toMatch(/FB_RELEASES_DIR is not set/);
  });

  it('a client that goes away mid-file does not disturb the collector', async () => {
    const port = withReleases.httpPort;
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: `/edge/releases/${DEB}` });
      req.on('response', (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (err) =>
        (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(err),
      );
      req.end();
    });
    const after = await fetch(`http://127.0.0.1:${port}/edge/releases/release.json`);
    expect(after.status).toBe(200);
    expect((await withReleases.health())?.status).toBe(200);
    expect(withReleases.crashes).toEqual([]);
  });
});
