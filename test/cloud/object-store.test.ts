import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { FolderObjectStore, type ObjectStore, S3ObjectStore } from '@fieldbeam/cloud';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type S3Server, startS3rver, type TempDir, tempDir } from '../harness/index.js';

/**
 * One contract, every adapter: the folder store and the S3 store (against s3rver on loopback) must
 * behave the same for everything the collector relies on.
 */
let s3: S3Server;
let dir: TempDir;
beforeAll(async () => {
  s3 = await startS3rver();
  dir = tempDir('fieldbeam-objects-');
});
afterAll(async () => {
  await s3?.close();
  dir?.remove();
});

const adapters: [string, () => ObjectStore][] = [
  ['folder', () => new FolderObjectStore(dir.path)],
  [
    's3',
    () =>
      new S3ObjectStore({
        bucket: s3.bucket,
        prefix: 'contract',
        endpoint: s3.endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      }),
  ],
];

const text = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString() : undefined);

describe.each(adapters)('object store contract: %s', (_name, make) => {
  let store: ObjectStore;
  beforeAll(() => {
    store = make();
  });
  afterAll(async () => {
    await store?.close();
  });

  it('round-trips bytes under keys with window-style segments', async () => {
    const key = 'datasets/temp/2026-11-30T12:00:00Z/1.arrow';
    await store.put(key, Buffer.from('hello'));
    expect(text(await store.get(key))).toBe('hello');
    expect(await store.head(key)).toEqual({ key, size: 5 });
  });

  it('says "none" for a missing object instead of throwing', async () => {
    expect(await store.get('datasets/nope/1.arrow')).toBeUndefined();
    expect(await store.head('datasets/nope/1.arrow')).toBeUndefined();
    expect(await store.getStream('datasets/nope/1.arrow')).toBeUndefined();
  });

  it('replaces an object that is put again', async () => {
    await store.put('replace/a.bin', Buffer.from('first version'));
    await store.put('replace/a.bin', Buffer.from('second'));
    expect(text(await store.get('replace/a.bin'))).toBe('second');
    expect((await store.head('replace/a.bin'))?.size).toBe(6);
  });

  it('keeps a 1 MiB object intact and streams it', async () => {
    const big = randomBytes(1024 * 1024);
    await store.put('big/blob.bin', big);
    expect(Buffer.compare(Buffer.from((await store.get('big/blob.bin')) ?? []), big)).toBe(0);
    const s = await store.getStream('big/blob.bin');
    expect(s?.size).toBe(big.length);
    const chunks: Buffer[] = [];
    for await (const c of s?.body ?? []) chunks.push(c as Buffer);
    expect(Buffer.compare(Buffer.concat(chunks), big)).toBe(0);
  });

  it('puts a file as it is read: small, and larger than an S3 part (a multipart upload)', async () => {
    // 8 MiB is the S3 store's part: 11 MiB goes in two parts, the last one short.
    for (const [name, size] of [
      ['small', 1000],
      ['large', 11 * 1024 * 1024 + 7],
    ] as const) {
      const bytes = randomBytes(size);
      const file = join(dir.path, `${name}-upload.bin`);
      writeFileSync(file, bytes);
      expect(store.putFile).toBeTypeOf('function');
      await store.putFile?.(`files/${name}.arrow`, file, 'application/vnd.apache.arrow.file');
      expect(await store.head(`files/${name}.arrow`)).toEqual({ key: `files/${name}.arrow`, size });
      expect(Buffer.compare(Buffer.from((await store.get(`files/${name}.arrow`)) ?? []), bytes)).toBe(0);
    }
    await expect(store.putFile?.('files/none.arrow', join(dir.path, 'missing.bin'))).rejects.toThrow(
      /ENOENT/,
    );
    expect(await store.head('files/none.arrow')).toBeUndefined();
  });

  it('lists by prefix, sorted, with sizes, and nothing outside the prefix', async () => {
    await store.put('list/x/2.arrow', Buffer.from('22'));
    await store.put('list/x/1.arrow', Buffer.from('1'));
    await store.put('list/x/10.parquet', Buffer.from('101010'));
    await store.put('list/y/1.arrow', Buffer.from('y'));
    expect(await store.list('list/x/')).toEqual([
      { key: 'list/x/1.arrow', size: 1 },
      { key: 'list/x/10.parquet', size: 6 },
      { key: 'list/x/2.arrow', size: 2 },
    ]);
    expect((await store.list('list/')).map((o) => o.key)).toHaveLength(4);
    expect(await store.list('list/none/')).toEqual([]);
  });

  it('deletes, and deleting a missing object is fine', async () => {
    await store.put('del/a', Buffer.from('a'));
    await store.delete('del/a');
    expect(await store.get('del/a')).toBeUndefined();
    await store.delete('del/a');
  });

  it('refuses keys that could escape its root', async () => {
    for (const key of ['../x', '/abs', 'a//b', 'a/../../b', '', 'a/./b', 'sp ace/\n']) {
      await expect(store.put(key, Buffer.from('x'))).rejects.toThrow(/invalid object key/);
    }
  });
});

describe('S3 store against a server that accepts connections and never answers', () => {
  it('fails each request after its timeout instead of hanging', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    const store = new S3ObjectStore({
      bucket: 'silent',
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      requestTimeoutMs: 500,
    });
    try {
      await expect(store.put('a/b', new Uint8Array([1]))).rejects.toThrow();
      await expect(store.get('a/b')).rejects.toThrow();
    } finally {
      await store.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  }, 60_000);
});
