import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * One-time enrollments of edges. `edge add --url` seals what a Pi needs (its config and NATS seed)
 * with a random token and keeps only the sealed file, named by the token's SHA-256: the collector's
 * disk holds nothing usable without the token, and the token is shown once (in the install link).
 * `GET /edge/install/<token>` redeems it at most once (see enroll-route.ts).
 *
 * Layout, in `<identity dir>/enrollments/`:
 * - `<sha256(token) hex>.json`: a live enrollment (0600): edge id and expiry in clear, the rest
 *   AES-256-GCM with a key derived from the token (HKDF-SHA256, a random salt per file), the clear
 *   fields bound as additional data so that editing them breaks the seal.
 * - `<sha256(token) hex>.used`: a redeemed one, without the sealed part (edge id and time only), so a
 *   second request is told "already used" (410) rather than "unknown" (404).
 */

export const ENROLLMENTS_DIR = 'enrollments';
/** Where the collector serves install scripts; the token is the last segment. */
export const EDGE_INSTALL_PATH = '/edge/install';
/** `--token-ttl` unless given. */
export const DEFAULT_TOKEN_TTL = 'P7D';

/** 24 random bytes: 32 URL-safe characters, 192 bits. */
const TOKEN_BYTES = 24;
/** What the route accepts as a token before touching the disk (anything else is unknown). */
export const TOKEN_SHAPE = /^[A-Za-z0-9_-]{22,128}$/;
const HKDF_INFO = 'fieldbeam edge enrollment v1';
const FORMAT = 1;

/** What the Pi gets, sealed until the token is presented. */
export interface EnrollmentSecret {
  /** /etc/fieldbeam/edge.yaml as renderEdgeConfig writes it. */
  config: string;
  /** The edge's nkey seed (/etc/fieldbeam/edge.nk). */
  seed: string;
  /** The collector's URL as the Pi reaches it (`edge add --url`): the first-boot script downloads from it. */
  collectorUrl: string;
  /** The edge's NATS servers (as in the config). */
  natsServers: string[];
  kind: 'deb' | 'bundle';
}

interface EnrollmentFile {
  v: number;
  edge: string;
  created: string;
  expires: string;
  salt: string;
  iv: string;
  tag: string;
  sealed: string;
}

interface UsedFile {
  edge: string;
  used: string;
}

export const enrollmentsDir = (identityDir: string) => join(identityDir, ENROLLMENTS_DIR);

export function newEnrollmentToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Seconds are enough for an expiry a person reads. */
export const isoSeconds = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

function keyFor(token: string, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(token, 'utf8'), salt, HKDF_INFO, 32));
}

const additionalData = (f: Pick<EnrollmentFile, 'v' | 'edge' | 'created' | 'expires'>) =>
  Buffer.from(JSON.stringify([f.v, f.edge, f.created, f.expires]), 'utf8');

/** The file's text for `secret`, sealed with `token`. */
export function sealEnrollment(
  token: string,
  edge: string,
  secret: EnrollmentSecret,
  created: Date,
  expires: Date,
): string {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const head = { v: FORMAT, edge, created: isoSeconds(created), expires: isoSeconds(expires) };
  const cipher = createCipheriv('aes-256-gcm', keyFor(token, salt), iv);
  cipher.setAAD(additionalData(head));
  const sealed = Buffer.concat([cipher.update(JSON.stringify(secret), 'utf8'), cipher.final()]);
  const file: EnrollmentFile = {
    ...head,
    salt: salt.toString('base64'),
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    sealed: sealed.toString('base64'),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** The sealed part, or an Error saying why it cannot be opened (wrong token, edited, damaged). */
export function openEnrollment(
  token: string,
  text: string,
): { edge: string; expires: Date; secret: EnrollmentSecret } {
  const f = JSON.parse(text) as EnrollmentFile;
  if (f.v !== FORMAT || typeof f.edge !== 'string' || typeof f.expires !== 'string')
    throw new Error('not an enrollment file of this version');
  const decipher = createDecipheriv(
    'aes-256-gcm',
    keyFor(token, Buffer.from(f.salt, 'base64')),
    Buffer.from(f.iv, 'base64'),
  );
  decipher.setAAD(additionalData(f));
  decipher.setAuthTag(Buffer.from(f.tag, 'base64'));
  const plain = Buffer.concat([decipher.update(Buffer.from(f.sealed, 'base64')), decipher.final()]);
  return { edge: f.edge, expires: new Date(f.expires), secret: JSON.parse(plain.toString('utf8')) };
}

/** The edge id and expiry in clear (no token needed); undefined when the file is not an enrollment. */
function readHead(text: string): { edge: string; expires: Date } | undefined {
  try {
    const f = JSON.parse(text) as Partial<EnrollmentFile & UsedFile>;
    if (typeof f.edge !== 'string') return undefined;
    return { edge: f.edge, expires: new Date(f.expires ?? 0) };
  } catch {
    return undefined;
  }
}

export interface PreparedEnrollment {
  token: string;
  file: string;
  expires: Date;
  /** `<collector URL>/edge/install/<token>` */
  installUrl: string;
  /** Writes the file (and the folder, 0700). */
  commit(): void;
  /** Removes the file again (the registration it belongs to failed). */
  discard(): void;
}

/** The install link for `token`: the collector URL's base path kept, a trailing slash dropped. */
export function installUrl(collectorUrl: string, token: string): string {
  const u = new URL(collectorUrl);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}${EDGE_INSTALL_PATH}/${token}`;
}

/** A new enrollment for `edge`, computed in memory: `commit` writes it. */
export function prepareEnrollment(
  identityDir: string,
  edge: string,
  secret: EnrollmentSecret,
  opts: { ttlMs: number; now?: Date },
): PreparedEnrollment {
  const now = opts.now ?? new Date();
  const expires = new Date(now.getTime() + opts.ttlMs);
  const token = newEnrollmentToken();
  const dir = enrollmentsDir(identityDir);
  const file = join(dir, `${tokenHash(token)}.json`);
  const text = sealEnrollment(token, edge, secret, now, expires);
  let madeDir = false;
  return {
    token,
    file,
    expires,
    installUrl: installUrl(secret.collectorUrl, token),
    commit() {
      // 0700: the files are sealed, yet nobody else needs to list which edges have pending enrollments.
      madeDir = mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined;
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, text, { mode: 0o600 });
      renameSync(tmp, file);
    },
    discard() {
      rmSync(file, { force: true });
      if (madeDir) rmdirSync(dir);
    },
  };
}

/**
 * Removes every enrollment (live or used) of `edge` but the file `keep`; returns how many. After
 * `edge add --rotate` an earlier link would install a key that no longer works.
 */
export function removeEnrollments(identityDir: string, edge: string, keep?: string): number {
  const dir = enrollmentsDir(identityDir);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!/^[0-9a-f]{64}\.(json|used)$/.test(name) || join(dir, name) === keep) continue;
    let text: string;
    try {
      text = readFileSync(join(dir, name), 'utf8');
    } catch {
      continue;
    }
    if (readHead(text)?.edge !== edge) continue;
    rmSync(join(dir, name), { force: true });
    removed++;
  }
  return removed;
}

export type Redemption =
  | { outcome: 'redeemed'; edge: string; secret: EnrollmentSecret }
  | { outcome: 'unknown' }
  | { outcome: 'used'; edge: string }
  | { outcome: 'expired'; edge: string }
  | { outcome: 'damaged'; edge?: string; why: string };

const isNotFound = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * Reads and opens the enrollment for `token` without using it up: the route checks what it needs
 * (the release) before `claim`. A token of the wrong shape is unknown without touching the disk, and
 * nothing is ever created for a token that has no file, so guessing costs the collector nothing lasting.
 */
export async function findEnrollment(
  identityDir: string,
  token: string,
  now = new Date(),
): Promise<Redemption & { claim?: () => Promise<boolean> }> {
  if (!TOKEN_SHAPE.test(token)) return { outcome: 'unknown' };
  const dir = enrollmentsDir(identityDir);
  const hash = tokenHash(token);
  const live = join(dir, `${hash}.json`);
  const used = join(dir, `${hash}.used`);
  // The file names carry the token's hash: an error names the folder and the cause, not the file.
  const failed = (err: unknown) =>
    new Error(`cannot read the enrollments in ${dir}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  let text: string;
  try {
    text = await readFile(live, 'utf8');
  } catch (err) {
    if (!isNotFound(err)) throw failed(err);
    try {
      const u = readHead(await readFile(used, 'utf8'));
      return u ? { outcome: 'used', edge: u.edge } : { outcome: 'unknown' };
    } catch (e) {
      if (isNotFound(e)) return { outcome: 'unknown' };
      throw failed(e);
    }
  }
  const head = readHead(text);
  if (head && !(head.expires.getTime() > now.getTime())) {
    // Expired: the sealed part goes now, whoever asks (a concurrent request may have removed it).
    await rm(live, { force: true });
    return { outcome: 'expired', edge: head.edge };
  }
  let opened: ReturnType<typeof openEnrollment>;
  try {
    opened = openEnrollment(token, text);
  } catch (err) {
    return { outcome: 'damaged', ...(head ? { edge: head.edge } : {}), why: (err as Error).message };
  }
  return {
    outcome: 'redeemed',
    edge: opened.edge,
    secret: opened.secret,
    /**
     * Uses the token up: one atomic rename to the `.used` name, so of two requests at once exactly
     * one gets `true`, and a request arriving meanwhile finds the `.used` file (410, not 404). That
     * file is then replaced by one without the sealed part.
     */
    claim: async () => {
      try {
        await rename(live, used);
      } catch (err) {
        if (isNotFound(err)) return false;
        throw failed(err);
      }
      const record: UsedFile = { edge: opened.edge, used: isoSeconds(now) };
      const tmp = `${used}.${process.pid}.${randomBytes(4).toString('hex')}`;
      await writeFile(tmp, `${JSON.stringify(record)}\n`, { mode: 0o600 });
      await rename(tmp, used);
      return true;
    },
  };
}
