import { chmodSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Collector, createCollector, loadCloudConfig, migrate, PostgresServer } from '@fieldbeam/cloud';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type NatsServer, startNatsServer, type TempDir, tempDir } from '../harness/index.js';

// The collector's own embedded Postgres (no DATABASE_URL), started through createCollector: the
// superuser has a random password kept 0600 beside the data, the collector connects as a role that
// owns its tables and nothing more, and a folder from the fixed `postgres`/`postgres` days is migrated.

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const CREDENTIALS = 'fieldbeam-credentials.json';

let nats: NatsServer;
let parent: TempDir;

beforeAll(async () => {
  nats = await startNatsServer();
  parent = tempDir('fieldbeam-epg-');
  // Postgres runs as an unprivileged user (as root: `postgres`), which must reach the data folder.
  chmodSync(parent.path, 0o755);
});
afterAll(async () => {
  await nats?.close();
  parent?.remove();
});

async function startCollector(dataDir: string, port: number): Promise<Collector> {
  const config = loadCloudConfig({
    NATS_URL: nats.url,
    FB_DATA_DIR: dataDir,
    FB_EMBEDDED_PG_PORT: String(port),
    FB_HTTP_HOST: '127.0.0.1',
    FB_HTTP_PORT: '0',
    LOG_LEVEL: 'silent',
  });
  return createCollector(config, log);
}

/** Connects, runs `f`, disconnects. */
async function withClient<T>(config: pg.ClientConfig | string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client(config);
  c.on('error', () => {});
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

const login = (port: number, user: string, password: string, database = 'postgres') =>
  withClient({ host: '127.0.0.1', port, user, password, database }, (c) =>
    c.query<{ u: string }>('SELECT current_user AS u'),
  );

function readCredentials(pgDir: string) {
  return JSON.parse(readFileSync(join(pgDir, CREDENTIALS), 'utf8')) as {
    superuser: { user: string; password: string };
    owner: { user: string; password: string };
  };
}

/** What only a superuser could do, tried on the collector's own connection. */
async function expectNoSuperuserPowers(url: string): Promise<void> {
  await withClient(url, async (c) => {
    const me = await c.query<{ rolsuper: boolean }>(
      'SELECT rolsuper FROM pg_roles WHERE rolname = current_user',
    );
    expect(me.rows).toEqual([{ rolsuper: false }]);
    await expect(c.query("COPY (SELECT 1) TO PROGRAM 'true'")).rejects.toThrow(/permission denied/);
    await expect(c.query("SELECT pg_read_file('/etc/passwd')")).rejects.toThrow(/permission denied/);
    await expect(c.query('CREATE ROLE intruder SUPERUSER')).rejects.toThrow(/permission denied/);
  });
}

/** Migrations ran as the owner, which owns every table, sequence and function and can make partitions. */
async function expectOwnerOwnsSchema(url: string): Promise<void> {
  await withClient(url, async (c) => {
    const foreign = await c.query(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S', 'v') AND c.relowner <> current_user::regrole
       UNION ALL
       SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proowner <> current_user::regrole`,
    );
    expect(foreign.rows).toEqual([]);
    const db = await c.query(
      'SELECT 1 FROM pg_database WHERE datname = current_database() AND datdba = current_user::regrole',
    );
    expect(db.rowCount).toBe(1);
    // Partition creation (plpgsql, CREATE TABLE ... PARTITION OF) as the owner, for months nobody made yet.
    const made = await c.query<{ n: number }>(
      "SELECT fb_ensure_observation_partitions('2031-01-15T00:00:00Z', '2031-02-15T00:00:00Z') AS n",
    );
    expect(made.rows[0]?.n).toBe(2);
    // A later migration's kind of change works too.
    await c.query('ALTER TABLE dead_letters ADD COLUMN probe_column int');
    await c.query('ALTER TABLE dead_letters DROP COLUMN probe_column');
  });
}

function expectScramLoopbackOnly(pgDir: string): void {
  const rules = readFileSync(join(pgDir, 'pg_hba.conf'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  expect(rules.length).toBeGreaterThan(0);
  for (const rule of rules) {
    const f = rule.split(/\s+/);
    expect(f.at(-1), rule).toBe('scram-sha-256');
    expect(['local', 'host'], rule).toContain(f[0]);
    if (f[0] === 'host') expect(f[3], rule).toBe('127.0.0.1/32');
  }
}

describe('embedded Postgres credentials', () => {
  it('a new folder gets random passwords kept 0600, and the collector is no superuser', async () => {
    const dataDir = join(parent.path, 'fresh');
    const pgDir = join(dataDir, 'postgres');
    const port = await freePort();
    let collector = await startCollector(dataDir, port);
    const firstUrl = collector.databaseUrl;
    try {
      const file = statSync(join(pgDir, CREDENTIALS));
      expect(file.mode & 0o777).toBe(0o600);
      expect(file.uid).toBe(process.getuid?.());
      const creds = readCredentials(pgDir);
      expect(creds.superuser.password).toMatch(/^[0-9a-f]{64}$/);
      expect(creds.owner.password).toMatch(/^[0-9a-f]{64}$/);
      expect(creds.owner.password).not.toBe(creds.superuser.password);

      await expect(login(port, 'postgres', 'postgres')).rejects.toMatchObject({ code: '28P01' });
      await expect(login(port, 'fieldbeam', 'postgres')).rejects.toMatchObject({ code: '28P01' });
      expect((await login(port, 'postgres', creds.superuser.password)).rows).toEqual([{ u: 'postgres' }]);

      expect(new URL(firstUrl).username).toBe('fieldbeam');
      await expectNoSuperuserPowers(firstUrl);
      await expectOwnerOwnsSchema(firstUrl);
      expectScramLoopbackOnly(pgDir);
      await withClient(firstUrl, async (c) => {
        expect((await c.query('SHOW listen_addresses')).rows).toEqual([{ listen_addresses: '127.0.0.1' }]);
      });
    } finally {
      await collector.close();
    }

    // A restart reads the same passwords back.
    const before = readFileSync(join(pgDir, CREDENTIALS), 'utf8');
    collector = await startCollector(dataDir, port);
    try {
      expect(collector.databaseUrl).toBe(firstUrl);
      expect(readFileSync(join(pgDir, CREDENTIALS), 'utf8')).toBe(before);
      await expect(login(port, 'postgres', 'postgres')).rejects.toMatchObject({ code: '28P01' });
      await expectNoSuperuserPowers(collector.databaseUrl);
    } finally {
      await collector.close();
    }
  });

  it('migrates a folder made with the fixed postgres/postgres superuser, keeping its data', async () => {
    const dataDir = join(parent.path, 'legacy');
    const pgDir = join(dataDir, 'postgres');
    const port = await freePort();

    // The folder exactly as the collector used to make it: superuser postgres/postgres, cleartext
    // password auth, database and schema (migrations included) made by the superuser, and data in it.
    const old = new PostgresServer({
      databaseDir: pgDir,
      port,
      user: 'postgres',
      password: 'postgres',
      authMethod: 'password',
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    });
    await old.initialise();
    await old.start();
    try {
      const superUrl = `postgres://postgres:postgres@127.0.0.1:${port}`;
      await withClient(`${superUrl}/postgres`, (c) => c.query('CREATE DATABASE fieldbeam'));
      const pool = new pg.Pool({ connectionString: `${superUrl}/fieldbeam`, max: 2 });
      try {
        await migrate(pool);
        await pool.query(
          "SELECT fb_ensure_observation_partitions('2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z')",
        );
        await pool.query(
          `INSERT INTO observations (id, source, edge, station, variable, value, unit, time, received)
           VALUES ('old-1', 'mqtt', 'gw', 'st', 'air_temperature', 21.5, 'degC', '2026-11-03T00:00:00Z', '2026-11-03T00:00:00Z')`,
        );
        await pool.query("INSERT INTO dead_letters (subject, reason) VALUES ('fb.obs.gw', 'old')");
      } finally {
        await pool.end();
      }
    } finally {
      await old.stop();
    }

    const collector = await startCollector(dataDir, port);
    try {
      const file = statSync(join(pgDir, CREDENTIALS));
      expect(file.mode & 0o777).toBe(0o600);
      const creds = readCredentials(pgDir);
      await expect(login(port, 'postgres', 'postgres')).rejects.toMatchObject({ code: '28P01' });
      expect((await login(port, 'postgres', creds.superuser.password)).rows).toEqual([{ u: 'postgres' }]);
      expectScramLoopbackOnly(pgDir);

      await expectNoSuperuserPowers(collector.databaseUrl);
      await expectOwnerOwnsSchema(collector.databaseUrl);
      await withClient(collector.databaseUrl, async (c) => {
        const kept = await c.query("SELECT value FROM observations WHERE id = 'old-1'");
        expect(kept.rows).toEqual([{ value: 21.5 }]);
        // The bigserial's sequence moved with its table.
        await c.query("INSERT INTO dead_letters (subject, reason) VALUES ('fb.obs.gw', 'new')");
        const ids = await c.query('SELECT reason FROM dead_letters ORDER BY id');
        expect(ids.rows).toEqual([{ reason: 'old' }, { reason: 'new' }]);
      });
    } finally {
      await collector.close();
    }
  });
});
