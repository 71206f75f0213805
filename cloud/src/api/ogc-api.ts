import type pg from 'pg';
import type { DatasetDef } from '../datasets/dataset-config.js';
import type { WindowStore } from '../datasets/window-store.js';
import { parseWindowKey, windowKey } from '../datasets/windows.js';
import { HttpError, type Route, type RouteContext, sendJson } from '../http-api.js';
import type { ObjectStore } from '../storage/object-store.js';
import {
  encodeCursor,
  parseBbox,
  parseCursor,
  parseDatetime,
  parseLimit,
  parseNames,
  parsePoint,
  parseWithinKm,
} from './query-params.js';

const GEOJSON = 'application/geo+json';

/** The filter of an items or position query; every value ends up as a bind parameter. */
export interface ItemQuery {
  bbox?: [number, number, number, number];
  from?: Date;
  to?: Date;
  variables?: string[];
  near?: { lon: number; lat: number; km: number };
  after?: { time: Date; id: string; edge: string };
  limit: number;
}

interface ItemRow {
  id: string;
  time: Date;
  station: string;
  sensor: string | null;
  variable: string;
  value: number | null;
  text: string | null;
  unit: string;
  lat: number | null;
  lon: number | null;
  alt: number | null;
  quality: string[] | null;
  source: string;
  edge: string;
}

/** The SQL of a dataset's items, ordered by (time, id), parameterised throughout. */
export function itemsSql(def: DatasetDef, q: ItemQuery): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const p = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  const where: string[] = [];
  if (def.filter.sources) where.push(`source = ANY(${p(def.filter.sources)}::text[])`);
  if (def.filter.stations) where.push(`station = ANY(${p(def.filter.stations)}::text[])`);
  if (def.filter.variables) where.push(`variable = ANY(${p(def.filter.variables)}::text[])`);
  if (q.variables) where.push(`variable = ANY(${p(q.variables)}::text[])`);
  if (q.from) where.push(`time >= ${p(q.from)}`);
  if (q.to) where.push(`time <= ${p(q.to)}`);
  if (q.bbox) {
    where.push(
      `lon BETWEEN ${p(q.bbox[0])} AND ${p(q.bbox[2])} AND lat BETWEEN ${p(q.bbox[1])} AND ${p(q.bbox[3])}`,
    );
  }
  if (q.near) {
    // A box around the point narrows the rows, then the great-circle distance decides.
    const dLat = q.near.km / 111.2;
    const dLon = dLat / Math.max(0.01, Math.cos((q.near.lat * Math.PI) / 180));
    const lon = p(q.near.lon);
    const lat = p(q.near.lat);
    where.push(
      `lat BETWEEN ${lat}::float8 - ${p(dLat)} AND ${lat}::float8 + ${p(dLat)}` +
        ` AND lon BETWEEN ${lon}::float8 - ${p(dLon)} AND ${lon}::float8 + ${p(dLon)}` +
        ` AND 2 * 6371.0088 * asin(sqrt(power(sin(radians(lat - ${lat}::float8) / 2), 2) +` +
        ` cos(radians(${lat}::float8)) * cos(radians(lat)) * power(sin(radians(lon - ${lon}::float8) / 2), 2)))` +
        ` <= ${p(q.near.km)}`,
    );
  }
  if (q.after) {
    where.push(
      `(time, id, edge COLLATE "C") > (${p(q.after.time)}, ${p(q.after.id)}::text COLLATE "C", ${p(q.after.edge)}::text)`,
    );
  }
  const text = `SELECT id, time, station, sensor, variable, value, text, unit, lat, lon, alt, quality, source, edge
    FROM observations ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY time, id, edge COLLATE "C" LIMIT ${p(q.limit + 1)}`;
  return { text, values };
}

function feature(r: ItemRow) {
  return {
    type: 'Feature',
    id: r.id,
    geometry: r.lat === null || r.lon === null ? null : { type: 'Point', coordinates: [r.lon, r.lat] },
    properties: {
      time: r.time.toISOString(),
      station: r.station,
      sensor: r.sensor,
      variable: r.variable,
      value: r.value,
      text: r.text,
      unit: r.unit,
      alt: r.alt,
      quality: r.quality,
      source: r.source,
      edge: r.edge,
    },
  };
}

/**
 * A read API in the style of OGC API - Features (landing page, conformance, collections, items as
 * GeoJSON with bbox/datetime/limit and `next` links) and OGC API - EDR (`position`), over the
 * observations of each dataset, plus downloads of the built files of each window.
 */
export function ogcApiRoutes(deps: {
  pool: pg.Pool;
  windows: WindowStore;
  store: ObjectStore;
  datasets: readonly DatasetDef[];
  maxLimit: number;
}): Record<string, Route> {
  const { pool, windows, store, datasets, maxLimit } = deps;
  const byName = new Map(datasets.map((d) => [d.name, d]));
  const datasetOf = (ctx: RouteContext) => {
    const def = byName.get(ctx.params.dataset ?? '');
    if (!def) throw new HttpError(404, `no collection "${ctx.params.dataset}"`);
    return def;
  };

  async function collection(def: DatasetDef, base: string) {
    const r = await pool.query<{ lo: Date | null; hi: Date | null }>(
      'SELECT min(window_start) AS lo, max(window_end) AS hi FROM dataset_windows WHERE dataset = $1',
      [def.name],
    );
    const lo = r.rows[0]?.lo ?? null;
    const hi = r.rows[0]?.hi ?? null;
    const self = `${base}/collections/${encodeURIComponent(def.name)}`;
    return {
      id: def.name,
      title: def.title ?? def.name,
      description: def.description ?? '',
      itemType: 'feature',
      crs: ['http://www.opengis.net/def/crs/OGC/1.3/CRS84'],
      extent: {
        spatial: { bbox: [[-180, -90, 180, 90]], crs: 'http://www.opengis.net/def/crs/OGC/1.3/CRS84' },
        temporal: { interval: [[lo?.toISOString() ?? null, hi?.toISOString() ?? null]] },
      },
      data_queries: { position: { link: { href: `${self}/position`, rel: 'data' } } },
      links: [
        { href: self, rel: 'self', type: 'application/json' },
        { href: `${self}/items`, rel: 'items', type: GEOJSON, title: 'Observations' },
        { href: `${self}/position`, rel: 'data', type: GEOJSON, title: 'Observations at a point (EDR)' },
        {
          href: `${self}/windows`,
          rel: 'related',
          type: 'application/json',
          title: 'Built windows and files',
        },
      ],
    };
  }

  async function items(ctx: RouteContext, def: DatasetDef, q: ItemQuery, self: string) {
    const { text, values } = itemsSql(def, q);
    const rows = (await pool.query<ItemRow>(text, values)).rows;
    const more = rows.length > q.limit;
    const page = more ? rows.slice(0, q.limit) : rows;
    const links = [{ href: `${self}?${ctx.query}`, rel: 'self', type: GEOJSON }];
    const last = page.at(-1);
    if (more && last) {
      const next = new URLSearchParams(ctx.query);
      next.set('cursor', encodeCursor(last.time.getTime(), last.id, last.edge));
      next.set('limit', String(q.limit));
      links.push({ href: `${self}?${next}`, rel: 'next', type: GEOJSON });
    }
    ctx.res.writeHead(200, { 'content-type': GEOJSON }).end(
      JSON.stringify({
        type: 'FeatureCollection',
        timeStamp: new Date().toISOString(),
        numberReturned: page.length,
        features: page.map(feature),
        links,
      }),
    );
  }

  const timeRange = (ctx: RouteContext) => parseDatetime(ctx.query.get('datetime')) ?? {};

  return {
    '/': (ctx) =>
      sendJson(ctx.res, 200, {
        title: 'Fieldbeam collector',
        description: 'Observations from Fieldbeam edge agents, as datasets in time windows.',
        links: [
          { href: `${ctx.base}/`, rel: 'self', type: 'application/json' },
          { href: `${ctx.base}/conformance`, rel: 'conformance', type: 'application/json' },
          { href: `${ctx.base}/collections`, rel: 'data', type: 'application/json' },
          { href: `${ctx.base}/healthz`, rel: 'status', type: 'application/json' },
        ],
      }),
    '/conformance': (ctx) =>
      sendJson(ctx.res, 200, {
        conformsTo: [
          'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core',
          'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson',
          'http://www.opengis.net/spec/ogcapi-edr-1/1.0/conf/core',
          'http://www.opengis.net/spec/ogcapi-edr-1/1.0/conf/geojson',
        ],
      }),
    '/collections': async (ctx) =>
      sendJson(ctx.res, 200, {
        collections: await Promise.all(datasets.map((d) => collection(d, ctx.base))),
        links: [{ href: `${ctx.base}/collections`, rel: 'self', type: 'application/json' }],
      }),
    '/collections/:dataset': async (ctx) =>
      sendJson(ctx.res, 200, await collection(datasetOf(ctx), ctx.base)),
    '/collections/:dataset/items': async (ctx) => {
      const def = datasetOf(ctx);
      const bbox = parseBbox(ctx.query.get('bbox'));
      const after = parseCursor(ctx.query.get('cursor'));
      const variables = parseNames(ctx.query.get('parameter-name'));
      const q: ItemQuery = {
        ...timeRange(ctx),
        ...(bbox ? { bbox } : {}),
        ...(after ? { after } : {}),
        ...(variables ? { variables } : {}),
        limit: parseLimit(ctx.query.get('limit'), maxLimit),
      };
      await items(ctx, def, q, `${ctx.base}/collections/${encodeURIComponent(def.name)}/items`);
    },
    '/collections/:dataset/position': async (ctx) => {
      const def = datasetOf(ctx);
      const point = parsePoint(ctx.query.get('coords'));
      const km = parseWithinKm(ctx.query.get('within'), ctx.query.get('within-units'), 1);
      const after = parseCursor(ctx.query.get('cursor'));
      const variables = parseNames(ctx.query.get('parameter-name'));
      const q: ItemQuery = {
        ...timeRange(ctx),
        near: { ...point, km },
        ...(after ? { after } : {}),
        ...(variables ? { variables } : {}),
        limit: parseLimit(ctx.query.get('limit'), maxLimit),
      };
      await items(ctx, def, q, `${ctx.base}/collections/${encodeURIComponent(def.name)}/position`);
    },
    '/collections/:dataset/windows': async (ctx) => {
      const def = datasetOf(ctx);
      const limit = parseLimit(ctx.query.get('limit'), 10_000, 1000);
      const rows = await windows.windows({ dataset: def.name, limit });
      const self = `${ctx.base}/collections/${encodeURIComponent(def.name)}/windows`;
      sendJson(ctx.res, 200, {
        windows: rows.map((w) => ({
          start: w.windowStart.toISOString(),
          end: w.windowEnd.toISOString(),
          state: w.state,
          version: w.version,
          final: w.final,
          links: [{ href: `${self}/${windowKey(w.windowStart.getTime())}`, rel: 'item' }],
        })),
      });
    },
    '/collections/:dataset/windows/:window': async (ctx) => {
      const def = datasetOf(ctx);
      const start = parseWindowKey(ctx.params.window ?? '');
      if (start === undefined)
        throw new HttpError(400, 'window: expected its start, e.g. 2026-11-30T12:00:00Z');
      const exported = await pool.query<{ exporter: string; version: number; key: string | null }>(
        'SELECT exporter, version, key FROM dataset_exports WHERE dataset = $1 AND window_start = $2',
        [def.name, new Date(start)],
      );
      const self = `${ctx.base}/collections/${encodeURIComponent(def.name)}/windows/${windowKey(start)}`;
      const versions = (await windows.versions(def.name, new Date(start))).map((v) => {
        const files = exported.rows.filter((e) => e.version === v.version && e.key);
        return {
          version: v.version,
          rows: v.rows,
          sha256: v.sha256,
          provisional: v.provisional,
          builtAt: v.builtAt.toISOString(),
          links: files.map((f) => {
            const ext = f.key?.split('.').at(-1) ?? '';
            return {
              href: `${self}/${v.version}.${ext}`,
              rel: 'enclosure',
              type:
                ext === 'parquet' ? 'application/vnd.apache.parquet' : 'application/vnd.apache.arrow.file',
            };
          }),
        };
      });
      if (versions.length === 0) throw new HttpError(404, `no built version of window ${windowKey(start)}`);
      sendJson(ctx.res, 200, { dataset: def.name, start: new Date(start).toISOString(), versions });
    },
    '/collections/:dataset/windows/:window/:file': async (ctx) => {
      const def = datasetOf(ctx);
      const start = parseWindowKey(ctx.params.window ?? '');
      const m = /^(\d{1,9})\.(arrow|parquet)$/.exec(ctx.params.file ?? '');
      if (start === undefined || !m)
        throw new HttpError(400, 'expected .../windows/<start>/<version>.arrow|parquet');
      // Only what an exporter has recorded is served: a key is never built from the request.
      const r = await pool.query<{ key: string }>(
        `SELECT key FROM dataset_exports WHERE dataset = $1 AND window_start = $2 AND version = $3
           AND key LIKE $4 LIMIT 1`,
        [def.name, new Date(start), Number(m[1]), `%.${m[2]}`],
      );
      const key = r.rows[0]?.key;
      const obj = key ? await store.getStream(key) : undefined;
      if (!key || !obj) throw new HttpError(404, 'no such file');
      ctx.res.writeHead(200, {
        'content-type':
          m[2] === 'parquet' ? 'application/vnd.apache.parquet' : 'application/vnd.apache.arrow.file',
        'content-length': obj.size,
        'content-disposition': `attachment; filename="${def.name}_${windowKey(start).replace(/:/g, '')}_${m[1]}.${m[2]}"`,
      });
      obj.body.pipe(ctx.res);
    },
  };
}
