import { tableToIPC } from 'apache-arrow';
import type pg from 'pg';
import { cfStandardName } from '../datasets/cf.js';
import type { DatasetDef } from '../datasets/dataset-config.js';
import type { WindowStore } from '../datasets/window-store.js';
import { parseWindowKey, windowKey } from '../datasets/windows.js';
import { arrowToGeoParquet, PARQUET_CONTENT_TYPE } from '../export/geoparquet.js';
import { HttpError, type Route, type RouteContext, sendJson } from '../http-api.js';
import type { ObjectStore } from '../storage/object-store.js';
import { version } from '../version.js';
import { COVJSON, CSV, csv, pointSeries } from './formats.js';
import { OPENAPI_MEDIA_TYPE, type Operation, openApiDocument, operation, routesOf } from './operations.js';
import { parseLimit, parseStationId } from './query-params.js';
import { readParams, withinKm } from './read-params.js';
import { type ItemQuery, itemsWhere, type RowSource, rowSourceOf, type SourceRow } from './row-sources.js';

/** Days of readings `…/locations` looks at without a datetime (counted back from the newest one). */
export const LOCATIONS_DEFAULT_DAYS = 30;

/** A row as a GeoJSON feature, as its dataset's kind names and describes it. */
function feature(source: RowSource, r: SourceRow) {
  return {
    type: 'Feature',
    id: source.featureId(r),
    geometry: r.lat === null || r.lon === null ? null : { type: 'Point', coordinates: [r.lon, r.lat] },
    properties: source.properties(r),
  };
}

const GEOJSON = 'application/geo+json';
const JSON_TYPE = 'application/json';
const ARROW = 'application/vnd.apache.arrow.file';

/** How much data the variables of a collection are looked up in (`parameter_names`). */
const VARIABLES_SPAN_MS = 7 * 24 * 3600_000;
/** How long a collection's variables are kept before they are looked up again. */
const VARIABLES_TTL_MS = 60_000;

/** A GeoParquet download's time range: both ends given. */
function closedRange(range: { from?: Date; to?: Date }): asserts range is { from: Date; to: Date } {
  if (!range.from || !range.to) {
    throw new HttpError(400, 'f=parquet: datetime must be a closed interval start/end');
  }
}

/** Where CF standard names are published, one URI each (the NERC vocabulary server). */
const CF_STANDARD_NAMES = 'https://vocab.nerc.ac.uk/standard_name/';

/** A duration in ms as ISO 8601 (PT10M, PT1H30M, PT0.5S). */
function formatDuration(ms: number): string {
  const h = Math.floor(ms / 3600_000);
  const m = Math.floor((ms % 3600_000) / 60_000);
  const sec = (ms % 60_000) / 1000;
  return `PT${h ? `${h}H` : ''}${m ? `${m}M` : ''}${sec || (!h && !m) ? `${sec}S` : ''}`;
}

/** A station id may hold any text; a header value may not (and a file name should not). */
const fileName = (name: string) => name.replace(/[^\w.-]/g, '_');

/** Where an empty GeoParquet download reads its no rows: any [t, t) is empty. */
const EMPTY_RANGE_AT = new Date(Date.UTC(2000, 0, 1));
/** GeoParquet downloads built at once (each in memory), and the wait a refused one is told. */
const MAX_PARQUET_BUILDS = 1;
const PARQUET_RETRY_AFTER_S = 5;

/**
 * A read API in the style of OGC API - Features (landing page, OpenAPI definition at `/api`,
 * conformance, collections, items and one item as GeoJSON or CSV with bbox/datetime/limit and `next`
 * links) and OGC API - EDR (`position`, `locations` as GeoJSON and CoverageJSON), over the
 * observations of each dataset, plus downloads of the built files of each window. Every operation
 * is declared once (operations.ts): the same declaration routes, validates and documents it.
 */
export function ogcApiRoutes(deps: {
  pool: pg.Pool;
  windows: WindowStore;
  store: ObjectStore;
  datasets: readonly DatasetDef[];
  maxLimit: number;
}): Record<string, Route> {
  const { pool, windows, store, datasets, maxLimit } = deps;
  /** A GeoParquet download holds at most this many rows (it is built in memory). */
  const maxParquetRows = maxLimit * 100;
  /**
   * GeoParquet downloads being built now. Each holds its rows in memory several times over (Arrow,
   * IPC, Parquet): one at a time bounds that whatever the number of clients; another is a 503.
   */
  let parquetBuilds = 0;
  const P = readParams(maxLimit);

  /**
   * The span `locations` reads without a datetime: LOCATIONS_DEFAULT_DAYS up to the collection's
   * newest reading (found from the time index, newest first), so a collection that stopped receiving
   * still lists its stations.
   */
  const recentSpan = async (def: DatasetDef): Promise<{ from: Date; to: Date }> => {
    const values: unknown[] = [];
    const r = await pool.query<{ newest: Date | null }>(
      `SELECT max(time) AS newest FROM observations ${itemsWhere(def, {}, values)}`,
      values,
    );
    const to = r.rows[0]?.newest ?? new Date();
    return { from: new Date(to.getTime() - LOCATIONS_DEFAULT_DAYS * 86_400_000), to };
  };
  const byName = new Map(datasets.map((d) => [d.name, d]));
  const datasetOf = (ctx: RouteContext) => {
    const def = byName.get(ctx.params.collectionId ?? '');
    if (!def) throw new HttpError(404, `no collection "${ctx.params.collectionId}"`);
    return def;
  };
  const selfOf = (ctx: RouteContext, def: DatasetDef) =>
    `${ctx.base}/collections/${encodeURIComponent(def.name)}`;

  const variables = new Map<string, { at: number; names: Promise<Record<string, unknown>> }>();
  /** The variables of a dataset with their units, from its latest week of data, cached a minute. */
  function parameterNames(def: DatasetDef, hi: Date | null): Promise<Record<string, unknown>> {
    const cached = variables.get(def.name);
    if (cached && Date.now() - cached.at < VARIABLES_TTL_MS) return cached.names;
    const names = (async () => {
      if (!hi) return {};
      const values: unknown[] = [];
      const where = itemsWhere(def, { from: new Date(hi.getTime() - VARIABLES_SPAN_MS) }, values);
      const r = await pool.query<{ variable: string; units: string[] }>(
        `SELECT variable, array_agg(DISTINCT unit ORDER BY unit) AS units FROM observations ${where}
         GROUP BY variable ORDER BY variable`,
        values,
      );
      // An aggregated dataset's variables come as statistics over its interval (in CoverageJSON
      // as <variable>_<statistic>); parameter-name still names the variable.
      const agg = def.aggregate;
      const stats = agg ? ` (${agg.stats.join(', ')} per ${formatDuration(agg.every)})` : '';
      return Object.fromEntries(
        r.rows.map((v) => {
          const standard = cfStandardName(v.variable);
          return [
            v.variable,
            {
              type: 'Parameter',
              id: v.variable,
              description: `${v.variable}${stats}`,
              unit: { symbol: v.units.join(' | ') },
              observedProperty: {
                id: standard ? `${CF_STANDARD_NAMES}${standard}/` : v.variable,
                label: standard ?? v.variable,
              },
              ...(agg
                ? { measurementType: { method: agg.stats.join(','), duration: formatDuration(agg.every) } }
                : {}),
            },
          ];
        }),
      );
    })();
    variables.set(def.name, { at: Date.now(), names });
    names.catch(() => variables.delete(def.name));
    return names;
  }

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
      parameter_names: await parameterNames(def, hi),
      output_formats: ['GeoJSON', 'CoverageJSON', 'CSV', 'GeoParquet'],
      data_queries: {
        position: { link: { href: `${self}/position`, rel: 'data' } },
        locations: { link: { href: `${self}/locations`, rel: 'data' } },
      },
      links: [
        { href: self, rel: 'self', type: JSON_TYPE },
        { href: `${self}/items`, rel: 'items', type: GEOJSON, title: 'Observations' },
        { href: `${self}/items?f=csv`, rel: 'items', type: CSV, title: 'Observations as CSV' },
        { href: `${self}/position`, rel: 'data', type: GEOJSON, title: 'Observations at a point (EDR)' },
        { href: `${self}/locations`, rel: 'data', type: GEOJSON, title: 'Stations (EDR locations)' },
        { href: `${self}/windows`, rel: 'related', type: JSON_TYPE, title: 'Built windows and files' },
      ],
    };
  }

  const sources = new Map(datasets.map((d) => [d.name, rowSourceOf(pool, d)]));
  const sourceOf = (def: DatasetDef) => sources.get(def.name) ?? rowSourceOf(pool, def);

  /** Whether a station has any raw row in the dataset (a cheap look, also for aggregated ones). */
  async function stationKnown(def: DatasetDef, station: string): Promise<boolean> {
    const values: unknown[] = [];
    const where = itemsWhere(def, { station }, values);
    return (await pool.query(`SELECT 1 FROM observations ${where} LIMIT 1`, values)).rows.length > 0;
  }

  /** `self` (saying when the limit was reduced) and `next` links of a page. */
  function pageLinks(
    ctx: RouteContext,
    self: string,
    type: string,
    source: RowSource,
    page: readonly SourceRow[],
    more: boolean,
    limit: { limit: number; reducedFrom?: number },
  ) {
    const query = ctx.query.size > 0 ? `?${ctx.query}` : '';
    const links: { href: string; rel: string; type: string; title?: string }[] = [
      {
        href: `${self}${query}`,
        rel: 'self',
        type,
        ...(limit.reducedFrom !== undefined
          ? { title: `limit ${limit.reducedFrom} reduced to ${limit.limit}, the largest page` }
          : {}),
      },
    ];
    const last = page.at(-1);
    if (more && last) {
      const next = new URLSearchParams(ctx.query);
      next.set('cursor', source.cursor(last));
      next.set('limit', String(limit.limit));
      links.push({ href: `${self}?${next}`, rel: 'next', type });
    }
    return links;
  }

  function sendCsv(
    ctx: RouteContext,
    name: string,
    body: string,
    links: readonly { href: string; rel: string }[],
  ) {
    // The paging links travel in a Link header (RFC 8288): CSV has no place for them.
    const link = links.map((l) => `<${l.href}>; rel="${l.rel}"`).join(', ');
    ctx.res
      .writeHead(200, {
        'content-type': CSV,
        'content-disposition': `inline; filename="${fileName(name)}.csv"`,
        ...(link ? { link } : {}),
      })
      .end(body);
  }

  /** A bounded time range of a dataset as one GeoParquet file, built in memory. */
  async function sendParquet(
    ctx: RouteContext,
    def: DatasetDef,
    range: { from?: Date; to?: Date },
    name = def.name,
  ) {
    closedRange(range);
    if (parquetBuilds >= MAX_PARQUET_BUILDS) {
      ctx.res.setHeader('retry-after', String(PARQUET_RETRY_AFTER_S));
      throw new HttpError(
        503,
        'f=parquet: another GeoParquet download is being built (one at a time); try again after Retry-After, or download the built windows (…/windows)',
      );
    }
    parquetBuilds++;
    try {
      await buildParquet(ctx, def, range, name);
    } finally {
      parquetBuilds--;
    }
  }

  async function buildParquet(
    ctx: RouteContext,
    def: DatasetDef,
    range: { from: Date; to: Date },
    name: string,
  ) {
    const values: unknown[] = [];
    const where = itemsWhere(def, { from: range.from, to: range.to }, values);
    const found = (
      await pool.query<{ n: string; lo: Date | null; hi: Date | null }>(
        `SELECT count(*) AS n, min(time) AS lo, max(time) AS hi
         FROM (SELECT time FROM observations ${where} LIMIT ${maxParquetRows + 1}) o`,
        values,
      )
    ).rows[0];
    if (Number(found?.n) > maxParquetRows) {
      throw new HttpError(
        400,
        `f=parquet: more than ${maxParquetRows} rows in that datetime; narrow it or download the built windows (…/windows)`,
      );
    }
    // The file is read over the rows' own extent: the reader quotes its bounds as text, and a
    // requested end such as year 0000 is no timestamp Postgres takes. No rows: an empty range.
    const from = found?.lo ?? EMPTY_RANGE_AT;
    const end = found?.hi ? new Date(found.hi.getTime() + 1) : EMPTY_RANGE_AT;
    const table = await sourceOf(def).table(
      def,
      from,
      end,
      new Map([
        ['dataset', def.name],
        ['from', range.from.toISOString()],
        ['to', range.to.toISOString()],
      ]),
    );
    const { parquet } = arrowToGeoParquet(tableToIPC(table, 'file'));
    const stamp = (d: Date) => d.toISOString().replace(/[:.]/g, '');
    ctx.res
      .writeHead(200, {
        'content-type': PARQUET_CONTENT_TYPE,
        'content-length': parquet.byteLength,
        'content-disposition': `attachment; filename="${fileName(name)}_${stamp(range.from)}_${stamp(range.to)}.parquet"`,
      })
      .end(parquet);
  }

  const ITEM_FORMATS = ['json', 'geojson', 'csv', 'parquet'] as const;
  const itemFormat = P.format(
    ITEM_FORMATS,
    'GeoJSON (json or geojson), csv, or parquet (GeoParquet of a closed datetime)',
  );
  const dataset = { collectionId: { description: 'A collection (dataset) id', schema: { type: 'string' } } };

  /** Items and position share their paging and encodings. */
  async function answerItems(
    ctx: RouteContext,
    def: DatasetDef,
    q: Omit<ItemQuery, 'limit'>,
    limit: { limit: number; reducedFrom?: number },
    f: (typeof ITEM_FORMATS)[number],
    path: string,
  ) {
    if (f === 'parquet') {
      if (q.bbox || q.near || q.variables || q.after) {
        throw new HttpError(
          400,
          'f=parquet: a whole time range only (datetime); drop bbox, coords, parameter-name and cursor',
        );
      }
      return sendParquet(ctx, def, { ...(q.from ? { from: q.from } : {}), ...(q.to ? { to: q.to } : {}) });
    }
    const source = sourceOf(def);
    const { page, more } = await source.rows({ ...q, limit: limit.limit });
    const self = `${selfOf(ctx, def)}/${path}`;
    if (f === 'csv') {
      return sendCsv(
        ctx,
        `${def.name}_${path}`,
        source.csv(page),
        pageLinks(ctx, self, CSV, source, page, more, limit),
      );
    }
    ctx.res.writeHead(200, { 'content-type': GEOJSON }).end(
      JSON.stringify({
        type: 'FeatureCollection',
        timeStamp: new Date().toISOString(),
        numberReturned: page.length,
        features: page.map((r) => feature(source, r)),
        links: pageLinks(ctx, self, GEOJSON, source, page, more, limit),
      }),
    );
  }

  const LOCATION_FORMATS = ['covjson', 'geojson', 'json', 'csv', 'parquet'] as const;
  const STATIONS_FORMATS = ['geojson', 'json', 'csv'] as const;

  const operations: Operation[] = [
    operation({
      path: '/',
      id: 'getLandingPage',
      summary: 'Landing page',
      tags: ['Capabilities'],
      query: {},
      produces: [JSON_TYPE],
      handle: (ctx) =>
        sendJson(ctx.res, 200, {
          title: 'Fieldbeam collector',
          description: 'Observations from Fieldbeam edge agents, as datasets in time windows.',
          links: [
            { href: `${ctx.base}/`, rel: 'self', type: JSON_TYPE, title: 'This document' },
            {
              href: `${ctx.base}/api`,
              rel: 'service-desc',
              type: OPENAPI_MEDIA_TYPE,
              title: 'The API definition',
            },
            { href: `${ctx.base}/conformance`, rel: 'conformance', type: JSON_TYPE },
            { href: `${ctx.base}/collections`, rel: 'data', type: JSON_TYPE },
            { href: `${ctx.base}/healthz`, rel: 'status', type: JSON_TYPE },
          ],
        }),
    }),
    operation({
      path: '/api',
      id: 'getApiDefinition',
      summary: 'This API definition (OpenAPI 3.0)',
      tags: ['Capabilities'],
      query: {},
      produces: [OPENAPI_MEDIA_TYPE],
      handle: (ctx) =>
        sendJson(ctx.res, 200, openApiDocument(operations, info, ctx.base), OPENAPI_MEDIA_TYPE),
    }),
    operation({
      path: '/conformance',
      id: 'getConformance',
      summary: 'Conformance classes this API implements',
      tags: ['Capabilities'],
      query: {},
      produces: [JSON_TYPE],
      handle: (ctx) =>
        sendJson(ctx.res, 200, {
          conformsTo: [
            'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core',
            'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson',
            'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30',
            'http://www.opengis.net/spec/ogcapi-edr-1/1.0/conf/core',
            'http://www.opengis.net/spec/ogcapi-edr-1/1.0/conf/geojson',
            'http://www.opengis.net/spec/ogcapi-edr-1/1.0/conf/covjson',
            'http://www.opengis.net/spec/ogcapi-edr-1/1.0/conf/oas30',
          ],
        }),
    }),
    operation({
      path: '/collections',
      id: 'getCollections',
      summary: 'The datasets, with their extents and variables',
      tags: ['Collections'],
      query: {},
      produces: [JSON_TYPE],
      handle: async (ctx) =>
        sendJson(ctx.res, 200, {
          collections: await Promise.all(datasets.map((d) => collection(d, ctx.base))),
          links: [{ href: `${ctx.base}/collections`, rel: 'self', type: JSON_TYPE }],
        }),
    }),
    operation({
      path: '/collections/:collectionId',
      id: 'describeCollection',
      summary: 'One dataset',
      tags: ['Collections'],
      pathParams: dataset,
      query: {},
      produces: [JSON_TYPE],
      statuses: [404],
      handle: async (ctx) => sendJson(ctx.res, 200, await collection(datasetOf(ctx), ctx.base)),
    }),
    operation({
      path: '/collections/:collectionId/items',
      id: 'getFeatures',
      summary: 'Observations, one feature each, in (time, id, edge) order',
      tags: ['Features'],
      pathParams: dataset,
      query: {
        bbox: P.bbox,
        datetime: P.datetime,
        names: P.parameterName,
        cursor: P.cursor,
        limit: P.limit,
        f: itemFormat,
      },
      produces: [GEOJSON, CSV, PARQUET_CONTENT_TYPE],
      statuses: [404],
      handle: async (ctx, q) => {
        const def = datasetOf(ctx);
        await answerItems(
          ctx,
          def,
          {
            ...q.datetime,
            ...(q.bbox ? { bbox: q.bbox } : {}),
            ...(q.cursor ? { after: q.cursor } : {}),
            ...(q.names ? { variables: q.names } : {}),
          },
          q.limit,
          q.f,
          'items',
        );
      },
    }),
    operation({
      path: '/collections/:collectionId/items/:featureId',
      id: 'getFeature',
      summary: 'One observation (or aggregated interval) by its feature id',
      tags: ['Features'],
      pathParams: {
        ...dataset,
        featureId: {
          description:
            'The `id` of a feature of the items: <time ms>_<observation id>_<edge>, or <time ms>_<interval id> in an aggregated dataset',
          schema: { type: 'string' },
        },
      },
      query: { f: P.format(['json', 'geojson'] as const, 'GeoJSON') },
      produces: [GEOJSON],
      statuses: [404],
      handle: async (ctx) => {
        const def = datasetOf(ctx);
        const source = sourceOf(def);
        const key = source.key(ctx.params.featureId ?? '');
        const { page } = await source.rows({ key, limit: 1 });
        const row = page[0];
        if (!row)
          throw new HttpError(404, `no feature "${ctx.params.featureId}" in collection "${def.name}"`);
        const items = `${selfOf(ctx, def)}/items`;
        ctx.res.writeHead(200, { 'content-type': GEOJSON }).end(
          JSON.stringify({
            ...feature(source, row),
            links: [
              { href: `${items}/${encodeURIComponent(source.featureId(row))}`, rel: 'self', type: GEOJSON },
              { href: selfOf(ctx, def), rel: 'collection', type: JSON_TYPE },
            ],
          }),
        );
      },
    }),
    operation({
      path: '/collections/:collectionId/position',
      id: 'getDataForPoint',
      summary: 'EDR position: observations within a distance of a point',
      tags: ['EDR'],
      pathParams: dataset,
      query: {
        coords: P.coords,
        within: P.within,
        withinUnits: P.withinUnits,
        datetime: P.datetime,
        names: P.parameterName,
        cursor: P.cursor,
        limit: P.limit,
        f: itemFormat,
      },
      produces: [GEOJSON, CSV],
      statuses: [404],
      handle: async (ctx, q) => {
        const def = datasetOf(ctx);
        const km = withinKm(q.within, q.withinUnits);
        if (q.f === 'parquet') throw new HttpError(400, 'f=parquet: use it on items with a datetime');
        await answerItems(
          ctx,
          def,
          {
            ...q.datetime,
            near: { ...q.coords, km },
            ...(q.cursor ? { after: q.cursor } : {}),
            ...(q.names ? { variables: q.names } : {}),
          },
          q.limit,
          q.f,
          'position',
        );
      },
    }),
    operation({
      path: '/collections/:collectionId/locations',
      id: 'listLocations',
      summary: 'EDR locations: the stations of a dataset, each at its latest known position',
      tags: ['EDR'],
      pathParams: dataset,
      query: {
        datetime: {
          ...P.datetime,
          description: `${P.datetime.description} Without it: the ${LOCATIONS_DEFAULT_DAYS} days up to the collection's newest reading.`,
        },
        f: P.format(STATIONS_FORMATS, 'GeoJSON (geojson or json) or csv'),
      },
      produces: [GEOJSON, CSV],
      statuses: [404],
      handle: async (ctx, q) => {
        const def = datasetOf(ctx);
        const values: unknown[] = [];
        // Stations are found by reading their rows: without a datetime, a bounded recent span, not all
        // of the collection's history.
        const range = ctx.query.has('datetime') ? q.datetime : await recentSpan(def);
        const where = itemsWhere(def, range, values);
        // The latest row with a position per station (a station never located keeps a null one).
        const r = await pool.query<{
          station: string;
          lon: number | null;
          lat: number | null;
          alt: number | null;
          first: Date;
          last: Date;
        }>(
          `SELECT DISTINCT ON (station COLLATE "C") station, lon, lat, alt,
             min(time) OVER (PARTITION BY station) AS first, max(time) OVER (PARTITION BY station) AS last
           FROM observations ${where}
           ORDER BY station COLLATE "C", (lat IS NULL OR lon IS NULL), time DESC LIMIT ${maxLimit}`,
          values,
        );
        const self = `${selfOf(ctx, def)}/locations`;
        if (q.f === 'csv') {
          return sendCsv(
            ctx,
            `${def.name}_locations`,
            csv(
              ['station', 'lon', 'lat', 'alt', 'first', 'last'],
              r.rows.map((s) => [s.station, s.lon, s.lat, s.alt, s.first, s.last]),
            ),
            [],
          );
        }
        ctx.res.writeHead(200, { 'content-type': GEOJSON }).end(
          JSON.stringify({
            type: 'FeatureCollection',
            numberReturned: r.rows.length,
            features: r.rows.map((s) => ({
              type: 'Feature',
              id: s.station,
              geometry:
                s.lat === null || s.lon === null ? null : { type: 'Point', coordinates: [s.lon, s.lat] },
              properties: {
                name: s.station,
                alt: s.alt,
                datetime: `${s.first.toISOString()}/${s.last.toISOString()}`,
              },
              links: [{ href: `${self}/${encodeURIComponent(s.station)}`, rel: 'data', type: COVJSON }],
            })),
            links: [
              { href: `${self}${ctx.query.size > 0 ? `?${ctx.query}` : ''}`, rel: 'self', type: GEOJSON },
            ],
          }),
        );
      },
    }),
    operation({
      path: '/collections/:collectionId/locations/:locationId',
      id: 'getLocation',
      summary: "EDR location: a station's time series (CoverageJSON PointSeries, GeoJSON, CSV or GeoParquet)",
      tags: ['EDR'],
      pathParams: {
        ...dataset,
        locationId: { description: 'A station id, as listed by …/locations', schema: { type: 'string' } },
      },
      query: {
        datetime: P.datetime,
        names: P.parameterName,
        cursor: P.cursor,
        limit: P.limit,
        f: P.format(LOCATION_FORMATS, 'CoverageJSON (covjson), GeoJSON (geojson or json), csv, or parquet'),
      },
      produces: [COVJSON, GEOJSON, CSV, PARQUET_CONTENT_TYPE],
      statuses: [404],
      handle: async (ctx, q) => {
        const def = datasetOf(ctx);
        const station = parseStationId(ctx.params.locationId ?? '');
        if (def.filter.stations && !def.filter.stations.includes(station)) {
          throw new HttpError(404, `no location "${station}" in collection "${def.name}"`);
        }
        const query = {
          ...q.datetime,
          station,
          ...(q.cursor ? { after: q.cursor } : {}),
          ...(q.names ? { variables: q.names } : {}),
        };
        const source = sourceOf(def);
        const known = () => stationKnown(def, station);
        const unknown = () => new HttpError(404, `no location "${station}" in collection "${def.name}"`);
        if (q.f === 'parquet') {
          closedRange(q.datetime);
          if (q.names || q.cursor) {
            throw new HttpError(
              400,
              'f=parquet: a whole time range only (datetime); drop parameter-name and cursor',
            );
          }
          // The station's rows are the dataset's with the station added to its filter.
          if (!(await known())) throw unknown();
          const only = { ...def, filter: { ...def.filter, stations: [station] } };
          return sendParquet(ctx, only, q.datetime, `${def.name}_${station}`);
        }
        const { page, more } = await source.rows({ ...query, limit: q.limit.limit });
        if (page.length === 0 && !q.cursor && !(await known())) throw unknown();

        const self = `${selfOf(ctx, def)}/locations/${encodeURIComponent(station)}`;
        if (q.f === 'csv') {
          return sendCsv(
            ctx,
            `${def.name}_${station}`,
            source.csv(page),
            pageLinks(ctx, self, CSV, source, page, more, q.limit),
          );
        }
        if (q.f === 'geojson' || q.f === 'json') {
          ctx.res.writeHead(200, { 'content-type': GEOJSON }).end(
            JSON.stringify({
              type: 'FeatureCollection',
              numberReturned: page.length,
              features: page.map((r) => feature(source, r)),
              links: pageLinks(ctx, self, GEOJSON, source, page, more, q.limit),
            }),
          );
          return;
        }
        const located = [...page].reverse().find((r) => r.lat !== null && r.lon !== null);
        ctx.res.writeHead(200, { 'content-type': COVJSON }).end(
          JSON.stringify({
            ...pointSeries(source.series(page), { lon: located?.lon ?? null, lat: located?.lat ?? null }),
            numberReturned: page.length,
            links: pageLinks(ctx, self, COVJSON, source, page, more, q.limit),
          }),
        );
      },
    }),
    operation({
      path: '/collections/:collectionId/windows',
      id: 'listWindows',
      summary: 'Built windows of a dataset',
      tags: ['Files'],
      pathParams: dataset,
      query: {
        limit: {
          ...P.limit,
          description: 'How many windows (at most 10000, default 1000; more is reduced to 10000).',
          schema: { type: 'integer', minimum: 1, maximum: 10_000, default: 1000 },
          parse: (t: string | null) => parseLimit(t, 10_000, 1000),
        },
      },
      produces: [JSON_TYPE],
      statuses: [404],
      handle: async (ctx, q) => {
        const def = datasetOf(ctx);
        const rows = await windows.windows({ dataset: def.name, limit: q.limit.limit });
        const self = `${selfOf(ctx, def)}/windows`;
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
    }),
    operation({
      path: '/collections/:collectionId/windows/:window',
      id: 'describeWindow',
      summary: "A window's built versions and their files",
      tags: ['Files'],
      pathParams: {
        ...dataset,
        window: { description: "The window's start, e.g. 2026-11-30T12:00:00Z", schema: { type: 'string' } },
      },
      query: {},
      produces: [JSON_TYPE],
      statuses: [404],
      handle: async (ctx) => {
        const def = datasetOf(ctx);
        const start = parseWindowKey(ctx.params.window ?? '');
        if (start === undefined)
          throw new HttpError(400, 'window: expected its start, e.g. 2026-11-30T12:00:00Z');
        const exported = await pool.query<{ exporter: string; version: number; key: string | null }>(
          'SELECT exporter, version, key FROM dataset_exports WHERE dataset = $1 AND window_start = $2',
          [def.name, new Date(start)],
        );
        const self = `${selfOf(ctx, def)}/windows/${windowKey(start)}`;
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
                type: ext === 'parquet' ? PARQUET_CONTENT_TYPE : ARROW,
              };
            }),
          };
        });
        if (versions.length === 0) throw new HttpError(404, `no built version of window ${windowKey(start)}`);
        sendJson(ctx.res, 200, { dataset: def.name, start: new Date(start).toISOString(), versions });
      },
    }),
    operation({
      path: '/collections/:collectionId/windows/:window/:file',
      id: 'getWindowFile',
      summary: 'A built file of a window: <version>.arrow or <version>.parquet',
      tags: ['Files'],
      pathParams: {
        ...dataset,
        window: { description: "The window's start", schema: { type: 'string' } },
        file: { description: '<version>.arrow or <version>.parquet', schema: { type: 'string' } },
      },
      query: {},
      produces: [ARROW, PARQUET_CONTENT_TYPE],
      statuses: [404],
      handle: async (ctx) => {
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
          'content-type': m[2] === 'parquet' ? PARQUET_CONTENT_TYPE : ARROW,
          'content-length': obj.size,
          'content-disposition': `attachment; filename="${def.name}_${windowKey(start).replace(/:/g, '')}_${m[1]}.${m[2]}"`,
        });
        obj.body.pipe(ctx.res);
      },
    }),
  ];
  const info = {
    title: 'Fieldbeam collector read API',
    version,
    description:
      'Observations of Fieldbeam datasets in the style of OGC API - Features and OGC API - EDR, with the built window files.',
  };
  return routesOf(operations);
}
