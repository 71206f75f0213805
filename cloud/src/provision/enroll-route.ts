import { HttpError, type Route, type RouteContext } from '../http-api.js';
import { EDGE_INSTALL_PATH, findEnrollment } from './enrollment.js';
import { renderInstallScript } from './install-script.js';
import { readReleaseAsync } from './release.js';
import { renderFirstBootScript } from './user-data.js';

/**
 * `GET /edge/install/<token>`: the one-time install script of an enrolled edge (`edge add --url`),
 * from FB_IDENTITY_DIR/enrollments. The token is used up by the answer that carries the script; a
 * second request, or one racing it, gets 410, as does an expired link (whose file is removed then); a
 * token with no file is a 404 and leaves nothing behind. The first-boot script inside points at the
 * release the collector serves now (FB_RELEASES_DIR): without a release to point at, the answer is a
 * 503 and the link stays usable.
 *
 * The token is a secret: it never reaches the log (the HTTP server's log lines name the route with
 * the token redacted; this route logs the edge id only). Refusals of unknown tokens are counted, not
 * logged, so guessing costs a counter increment.
 */

export type EnrollOutcome = 'redeemed' | 'unknown' | 'used' | 'expired' | 'damaged' | 'no_release';

export interface EnrollLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface EnrollRouteOptions {
  /** FB_IDENTITY_DIR: where `edge add` writes `enrollments/`. */
  identityDir: string;
  /** FB_RELEASES_DIR: the release the first-boot script downloads (from `<edge add --url>/edge/releases/`). */
  releasesDir: string | undefined;
  log?: EnrollLog;
  /** Called once per request with what became of it (a metric counts them). */
  onOutcome?: (outcome: EnrollOutcome) => void;
  now?: () => Date;
}

const ROTATE = (edge: string) =>
  `on the collector, fieldbeam-cloud edge add ${edge} --rotate --url ... issues a new link`;

export function enrollRoutes(opts: EnrollRouteOptions): Record<string, Route> {
  return { [`${EDGE_INSTALL_PATH}/:token`]: (ctx) => serveInstall(opts, ctx) };
}

async function serveInstall(opts: EnrollRouteOptions, { req, res, params }: RouteContext): Promise<void> {
  const counted = (outcome: EnrollOutcome) => opts.onOutcome?.(outcome);
  // GET only: a HEAD (a link checker, a preview) must not use the link up, nor tell what it holds.
  if (req.method !== 'GET') {
    res.setHeader('allow', 'GET');
    throw new HttpError(405, 'an install link answers GET only (and works once)');
  }
  const found = await findEnrollment(opts.identityDir, params.token ?? '', opts.now?.());
  switch (found.outcome) {
    case 'unknown':
      counted('unknown');
      throw new HttpError(404, 'no such install link on this collector (mistyped, or replaced by --rotate)');
    case 'used':
      counted('used');
      opts.log?.warn({ edge: found.edge }, 'edge install link refused: used already');
      throw new HttpError(410, `this install link was used already (it works once); ${ROTATE(found.edge)}`);
    case 'expired':
      counted('expired');
      opts.log?.warn({ edge: found.edge }, 'edge install link refused: expired (its enrollment is removed)');
      throw new HttpError(410, `this install link has expired; ${ROTATE(found.edge)}`);
    case 'damaged': {
      counted('damaged');
      const edge = found.edge ?? '?';
      opts.log?.error(
        { edge, why: found.why },
        'edge install link refused: its enrollment file cannot be opened',
      );
      throw new HttpError(
        500,
        `the enrollment of this install link cannot be opened (edited or damaged); ${ROTATE(edge)}`,
      );
    }
  }
  const { edge, secret, claim } = found;
  let release: Awaited<ReturnType<typeof readReleaseAsync>>;
  try {
    if (!opts.releasesDir) throw new Error('FB_RELEASES_DIR is not set');
    release = await readReleaseAsync(opts.releasesDir, secret.kind);
  } catch (err) {
    counted('no_release');
    opts.log?.error({ edge, err: (err as Error).message }, 'edge install link: no edge release to install');
    throw new HttpError(
      503,
      'this collector has no edge release to install (its log says why); the link was not used up: try again later',
    );
  }
  const firstBootScript = renderFirstBootScript({
    edgeId: edge,
    collectorUrl: secret.collectorUrl,
    kind: secret.kind,
    release,
    nats: { servers: secret.natsServers, nkeySeed: secret.seed },
  });
  const script = renderInstallScript({
    edgeId: edge,
    config: secret.config,
    seed: secret.seed,
    firstBootScript,
  });
  if (!(await claim?.())) {
    // Another request took it between our read and our claim.
    counted('used');
    throw new HttpError(410, `this install link was used already (it works once); ${ROTATE(edge)}`);
  }
  counted('redeemed');
  opts.log?.info({ edge, release: release.version }, 'edge install link redeemed');
  res.writeHead(200, {
    'content-type': 'text/x-shellscript',
    'content-length': Buffer.byteLength(script),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(script);
}
