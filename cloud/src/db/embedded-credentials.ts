import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { CloudError, CloudErrorCode } from '../errors.js';

/** The embedded Postgres's bootstrap superuser (initdb's `--username`). */
export const EMBEDDED_SUPERUSER = 'postgres';
/** The role the collector connects as: owner of its database and tables, and nothing more. */
export const EMBEDDED_OWNER = 'fieldbeam';
/** Superuser password of every data folder made before the credentials file existed. */
export const LEGACY_SUPERUSER_PASSWORD = 'postgres';
/** Inside the Postgres data folder, mode 0600, owned by the collector's user. */
export const CREDENTIALS_FILE = 'fieldbeam-credentials.json';

export interface EmbeddedCredentials {
  readonly superuser: { readonly user: string; readonly password: string };
  readonly owner: { readonly user: string; readonly password: string };
}

/** 256 random bits as hex: no character needs escaping in a URL, a file or SQL. */
const newPassword = () => randomBytes(32).toString('hex');

export function newCredentials(): EmbeddedCredentials {
  return {
    superuser: { user: EMBEDDED_SUPERUSER, password: newPassword() },
    owner: { user: EMBEDDED_OWNER, password: newPassword() },
  };
}

export const credentialsPath = (pgDir: string) => join(pgDir, CREDENTIALS_FILE);

/** The credentials kept in `pgDir`, or undefined when there is no file yet. */
export function readCredentials(pgDir: string): EmbeddedCredentials | undefined {
  const file = credentialsPath(pgDir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CloudError(CloudErrorCode.DATABASE, `cannot read ${file}: ${(err as Error).message}`, false, {
      cause: err,
    });
  }
  const c = parseCredentials(text);
  if (!c) {
    throw new CloudError(
      CloudErrorCode.DATABASE,
      `${file} is not a valid credentials file (JSON with superuser and owner, each a user and a password): ` +
        'restore it from a backup of this folder',
      false,
    );
  }
  // A file loosened by hand (or by a restore) is tightened again: it holds the superuser's password.
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  return c;
}

function parseCredentials(text: string): EmbeddedCredentials | undefined {
  try {
    const v = JSON.parse(text) as Record<string, { user?: unknown; password?: unknown } | undefined>;
    const pick = (k: string) => {
      const e = v[k];
      return typeof e?.user === 'string' && typeof e.password === 'string' && e.password.length > 0
        ? { user: e.user, password: e.password }
        : undefined;
    };
    const superuser = pick('superuser');
    const owner = pick('owner');
    return superuser && owner ? { superuser, owner } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Writes the credentials atomically (temporary file, fsync, rename) with mode 0600 from the start, so
 * that no other local user can read them at any moment and a crash leaves the old file or the new one.
 */
export function writeCredentials(pgDir: string, c: EmbeddedCredentials): void {
  const file = credentialsPath(pgDir);
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(c, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600); // openSync's mode applies only when it creates the file
  renameSync(tmp, file);
}

/**
 * The SCRAM-SHA-256 verifier Postgres stores for `password` (RFC 5802/7677, Postgres's format). Sent
 * instead of the password in CREATE/ALTER ROLE, so that the plain password never appears in the
 * server's log, even with statement logging on or when the statement fails. Passwords here are ASCII
 * (hex), which SASLprep leaves as they are.
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const hmac = (key: Buffer, text: string) => createHmac('sha256', key).update(text).digest();
  const storedKey = createHash('sha256').update(hmac(salted, 'Client Key')).digest();
  const serverKey = hmac(salted, 'Server Key');
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
