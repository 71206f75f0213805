import { createHash, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import type { DatasetDef } from '../datasets/dataset-config.js';
import { windowToRebuild } from '../datasets/rebuild.js';
import type { WindowStore } from '../datasets/window-store.js';
import { windowKey } from '../datasets/windows.js';
import { listDeadLetters } from '../db/dead-letters.js';
import { HttpError, type Route, sendJson } from '../http-api.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Wraps a route so that it needs `Authorization: Bearer <token>`. Without a configured token the
 * route is off (403), never open. Tokens are compared as SHA-256 digests in constant time, so the
 * answer time tells nothing about how much of a guess was right.
 */
export function requireToken(token: string | undefined, route: Route): Route {
  const expected = token === undefined ? undefined : digest(token);
  return (ctx) => {
    if (!expected) throw new HttpError(403, 'admin routes are off: set FB_ADMIN_TOKEN on the collector');
    const header = ctx.req.headers.authorization ?? '';
    const given = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    if (!given || !timingSafeEqual(digest(given), expected)) {
      ctx.res.setHeader('www-authenticate', 'Bearer realm="fieldbeam-admin"');
      throw new HttpError(
        401,
        given ? 'wrong admin token' : 'admin token required: Authorization: Bearer <FB_ADMIN_TOKEN>',
      );
    }
    return route(ctx);
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A payload as text when it is UTF-8, else base64, and never more than `max` bytes of it. */
function preview(
  payload: Buffer | null,
  max: number,
): { payload: string | null; encoding: 'utf8' | 'base64'; bytes: number } {
  if (!payload) return { payload: null, encoding: 'utf8', bytes: 0 };
  const head = payload.subarray(0, max);
  try {
    return { payload: utf8.decode(head), encoding: 'utf8', bytes: payload.length };
  } catch {
    return { payload: head.toString('base64'), encoding: 'base64', bytes: payload.length };
  }
}

/**
 * Operator routes under `/admin`, each behind the admin token:
 * - `GET /admin/dead-letters?limit=N&before=ID&source=S`: what ingest, the builder and exporters set
 *   aside, newest first, with the reason, its source and code;
 * - `POST /admin/datasets/:dataset/rebuild?window=TIME`: make a window due now (as `fieldbeam-cloud
 *   rebuild`); a running collector builds it.
 */
export function adminRoutes(deps: {
  pool: pg.Pool;
  windows: WindowStore;
  datasets: readonly DatasetDef[];
  token: string | undefined;
}): Record<string, Route> {
  const { pool, windows, datasets, token } = deps;
  return {
    '/admin/dead-letters': requireToken(token, async ({ res, query }) => {
      const limit = Number(query.get('limit') ?? 100);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        throw new HttpError(400, 'limit: an integer from 1 to 1000');
      }
      const before = query.get('before');
      if (before !== null && !/^\d{1,18}$/.test(before)) throw new HttpError(400, 'before: a dead-letter id');
      const rows = await listDeadLetters(pool, { limit, before, source: query.get('source') });
      sendJson(res, 200, {
        deadLetters: rows.map((r) => ({
          id: r.id,
          at: r.at.toISOString(),
          source: r.source,
          code: r.code,
          subject: r.subject,
          streamSeq: r.streamSeq,
          reason: r.reason,
          ...preview(r.payload, 4096),
        })),
      });
    }),
    'POST /admin/datasets/:dataset/rebuild': requireToken(token, async ({ res, params, query }) => {
      const window = query.get('window');
      if (!window)
        throw new HttpError(400, 'window: a time inside the window, e.g. ?window=2026-11-30T12:00:00Z');
      const target = windowToRebuild(datasets, params.dataset ?? '', window);
      if ('error' in target)
        throw new HttpError(target.error.startsWith('no dataset') ? 404 : 400, target.error);
      await windows.requestRebuild(target.def, target.start, `http:${new Date().toISOString()}`);
      sendJson(res, 202, { dataset: target.def.name, window: windowKey(target.start), due: 'now' });
    }),
  };
}
