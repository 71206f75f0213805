import { constants, type Stats } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { HttpError, type Route, type RouteContext } from '../http-api.js';
import { EDGE_RELEASES_PATH } from '../provision/user-data.js';

/**
 * `GET /edge/releases/<name>`: the edge agent's release files (`release.json`, the .deb, the .tar.zst
 * bundle, as deploy/pi/build.sh writes them) from the folder FB_RELEASES_DIR. The Pi's first-boot
 * script downloads from here. Only plain file names of that folder are served: a name with a `/`, a
 * `\`, `..` or a leading dot is refused (400); a missing file, a folder, or no FB_RELEASES_DIR is a 404.
 * Files are streamed with their length and an ETag (size and mtime); `If-None-Match` gives a 304.
 */

/** What a release file name may be: one path segment, no leading dot (the same set the provisioning uses). */
const PLAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;
const MAX_NAME = 255;

const CONTENT_TYPES: [suffix: string, type: string][] = [
  ['.json', 'application/json'],
  ['.deb', 'application/vnd.debian.binary-package'],
  ['.tar.zst', 'application/zstd'],
  ['.zst', 'application/zstd'],
  ['.tar.gz', 'application/gzip'],
  ['.txt', 'text/plain; charset=utf-8'],
  ['SHA256SUMS', 'text/plain; charset=utf-8'],
];

export function releaseContentType(name: string): string {
  return CONTENT_TYPES.find(([suffix]) => name.endsWith(suffix))?.[1] ?? 'application/octet-stream';
}

/** Why `name` is not a plain file name of the folder, or undefined when it is one. */
export function releaseNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > MAX_NAME) return 'must be 1-255 characters';
  if (name.includes('/') || name.includes('\\')) return 'must not contain a path separator';
  if (name.includes('..')) return 'must not contain ".."';
  if (name.startsWith('.')) return 'must not start with a dot';
  if (!PLAIN_NAME.test(name)) return 'may only contain A-Z a-z 0-9 . _ + ~ -';
  return undefined;
}

/** A strong validator from size and modification time (a rebuilt release gets a new one). */
export function releaseEtag(st: Pick<Stats, 'size' | 'mtimeMs'>): string {
  return `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
}

/** RFC 9110 If-None-Match (weak comparison): `*` or a list of entity tags. */
function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const bare = (t: string) => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => bare(t) === bare(etag));
}

const notFoundCodes = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG']);

export interface ReleaseRouteOptions {
  /** The folder (FB_RELEASES_DIR); undefined: every request is a 404 saying so. */
  dir: string | undefined;
}

/** The route table entry for the collector's HTTP API (see app.ts). */
export function releaseRoutes(opts: ReleaseRouteOptions): Record<string, Route> {
  const dir = opts.dir ? resolve(opts.dir) : undefined;
  return { [`${EDGE_RELEASES_PATH}/:name`]: (ctx) => serveRelease(dir, ctx) };
}

async function serveRelease(dir: string | undefined, { req, res, params }: RouteContext): Promise<void> {
  const name = params.name ?? '';
  const problem = releaseNameProblem(name);
  if (problem) throw new HttpError(400, `release file name ${JSON.stringify(name)} ${problem}`);
  if (!dir) {
    throw new HttpError(404, 'this collector serves no edge releases (FB_RELEASES_DIR is not set)');
  }
  const missing = () => new HttpError(404, `no release file ${name} on this collector`);
  let fh: FileHandle;
  let streaming = false;
  try {
    // O_NONBLOCK: a FIFO someone left in the folder must not hang the open; it is refused below.
    fh = await open(join(dir, name), constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if (notFoundCodes.has((err as NodeJS.ErrnoException).code ?? '')) throw missing();
    throw new HttpError(500, `cannot open release file ${name}: ${(err as NodeJS.ErrnoException).code}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw missing();
    const etag = releaseEtag(st);
    const headers = {
      etag,
      'last-modified': st.mtime.toUTCString(),
      // Names of a release may be reused by a rebuild: clients revalidate (cheap, with the ETag).
      'cache-control': 'no-cache',
    };
    if (matchesIfNoneMatch(req.headers['if-none-match'], etag)) {
      res.writeHead(304, headers).end();
      return;
    }
    res.writeHead(200, {
      ...headers,
      'content-type': releaseContentType(name),
      'content-length': st.size,
      'x-content-type-options': 'nosniff',
    });
    if (req.method === 'HEAD' || st.size === 0) {
      res.end();
      return;
    }
    // The stream owns the handle from here (autoClose), also when the client goes away mid-file.
    const stream = fh.createReadStream({ start: 0, end: st.size - 1 });
    streaming = true;
    await pipeline(stream, res);
  } finally {
    if (!streaming) await fh.close().catch(() => {});
  }
}
