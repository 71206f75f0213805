import { execFile } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { locatePostgresBinaries, PostgresServer, postgresOsUser, postgresPackage } from '@fieldbeam/cloud';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type TempDir, tempDir } from '../harness/index.js';

// A checkout under a private folder (root's home, mode 0700): Postgres runs as the system user
// `postgres`, which can enter neither the checkout's node_modules nor a data folder inside it.
// Runs as root, as the suite does (Postgres runs as this process's own user otherwise).

const execFileAsync = promisify(execFile);

let priv: TempDir;
let reachable: TempDir;
let user: { uid: number; gid: number };

beforeAll(async () => {
  expect(process.getuid?.(), 'this test runs as root, as the suite does').toBe(0);
  const u = await postgresOsUser();
  if (!u) throw new Error('no postgres user');
  user = u;
  priv = tempDir('fieldbeam-private-');
  expect(statSync(priv.path).mode & 0o777).toBe(0o700);
  reachable = tempDir('fieldbeam-pg-cache-');
  chmodSync(reachable.path, 0o755);
});
afterAll(() => {
  priv?.remove();
  reachable?.remove();
});

describe('embedded Postgres from a checkout in a private folder', () => {
  it('runs binaries the postgres user cannot reach from a copy in the cache, once', async () => {
    // The platform package as it would sit in the node_modules of a checkout in a private folder.
    const real = postgresPackage();
    const pkg = { root: join(priv.path, 'checkout', 'pg'), version: `0.0.0-test-${process.pid}` };
    mkdirSync(pkg.root, { recursive: true });
    cpSync(join(real.root, 'native'), join(pkg.root, 'native'), { recursive: true, verbatimSymlinks: true });
    const hidden = join(pkg.root, 'native', 'bin', 'initdb');
    await expect(execFileAsync(hidden, ['--version'], user)).rejects.toMatchObject({ code: 'EACCES' });

    const cache = join(reachable.path, 'postgres');
    const bins = await locatePostgresBinaries(user, pkg, cache);
    expect(bins.postgres.startsWith(`${cache}/`)).toBe(true);
    expect((await execFileAsync(bins.initdb, ['--version'], user)).stdout).toMatch(
      /^initdb \(PostgreSQL\) \d+/,
    );
    expect(statSync(cache).mode & 0o777).toBe(0o755);
    // A second start finds the copy.
    expect(await locatePostgresBinaries(user, pkg, cache)).toEqual(bins);

    // The copy is a whole installation: libraries and share found, a cluster starts and answers.
    const port = await freePort();
    const server = new PostgresServer({
      databaseDir: join(reachable.path, 'data'),
      port,
      user: 'postgres',
      password: 'secret-for-test',
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
      binaries: bins,
    });
    await server.initialise();
    await server.start();
    try {
      const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: 'secret-for-test' });
      await c.connect();
      try {
        expect((await c.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      } finally {
        await c.end();
      }
    } finally {
      await server.stop();
    }
  });

  it('refuses a data folder the postgres user cannot reach at once, naming the folder in the way', async () => {
    const dataDir = join(priv.path, 'checkout', '.data', 'postgres');
    const server = new PostgresServer({
      databaseDir: dataDir,
      port: await freePort(),
      user: 'postgres',
      password: 'x',
    });
    await expect(server.initialise()).rejects.toThrow(
      `cannot reach its data folder ${dataDir} (it may not enter ${priv.path}): put the data folder where`,
    );
    expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(false);
  });
});
