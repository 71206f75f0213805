import type { QueryParam } from './operations.js';
import {
  parseBbox,
  parseCursor,
  parseDatetime,
  parseFormat,
  parseLimit,
  parseNames,
  parsePoint,
  parseWithinKm,
} from './query-params.js';

/**
 * The query parameters of the read API, each its OpenAPI description beside the parser the handlers
 * use. `maxLimit` is the largest page (FB_API_MAX_LIMIT).
 */
export function readParams(maxLimit: number) {
  const limit: QueryParam<{ limit: number; reducedFrom?: number }> = {
    name: 'limit',
    description: `Page size. Above ${maxLimit} it is reduced to ${maxLimit} (the self link says so).`,
    schema: { type: 'integer', minimum: 1, maximum: maxLimit, default: Math.min(100, maxLimit) },
    example: '10',
    parse: (t) => parseLimit(t, maxLimit),
  };
  const bbox: QueryParam<[number, number, number, number] | undefined> = {
    name: 'bbox',
    description: 'minLon,minLat,maxLon,maxLat (WGS84 degrees); no antimeridian crossing.',
    schema: { type: 'array', minItems: 4, maxItems: 4, items: { type: 'number' } },
    example: '-180,-90,180,90',
    parse: parseBbox,
  };
  const datetime: QueryParam<{ from?: Date; to?: Date }> = {
    name: 'datetime',
    description:
      'An RFC 3339 instant, or an interval start/end with `..` (or nothing) for an open end; both ends included.',
    schema: { type: 'string' },
    example: '2000-01-01T00:00:00Z/..',
    parse: (t) => parseDatetime(t) ?? {},
  };
  const parameterName: QueryParam<string[] | undefined> = {
    name: 'parameter-name',
    description: 'Variables to return, comma-separated (1-100 names).',
    schema: { type: 'array', minItems: 1, maxItems: 100, items: { type: 'string', maxLength: 200 } },
    parse: parseNames,
  };
  const cursor: QueryParam<ReturnType<typeof parseCursor>> = {
    name: 'cursor',
    description: 'Where the next page starts: taken from the `next` link, never made by a client.',
    schema: { type: 'string' },
    parse: parseCursor,
  };
  const coords: QueryParam<{ lon: number; lat: number }> = {
    name: 'coords',
    description: 'EDR position: a WKT point, POINT(lon lat).',
    schema: { type: 'string', pattern: '^\\s*POINT\\s*\\(.*\\)\\s*$' },
    required: true,
    example: 'POINT(0 0)',
    parse: parsePoint,
  };
  const within: QueryParam<string | null> = {
    name: 'within',
    description: 'Radius around `coords` (default 1 km, at most 1000 km), in `within-units`.',
    schema: { type: 'number', minimum: 0 },
    parse: (t) => t,
  };
  const withinUnits: QueryParam<string | null> = {
    name: 'within-units',
    description: 'Unit of `within`: km (default), m or mi.',
    schema: { type: 'string', enum: ['km', 'm', 'mi'] },
    parse: (t) => t,
  };
  const format = <F extends string>(formats: readonly F[], what: string): QueryParam<F> => ({
    name: 'f',
    description: `Encoding: ${what}. Default ${formats[0]}.`,
    schema: { type: 'string', enum: [...formats], default: formats[0] },
    parse: (t) => parseFormat(t, formats),
  });
  return { limit, bbox, datetime, parameterName, cursor, coords, within, withinUnits, format };
}

/** `within` and `within-units` read together, once both are known valid on their own. */
export const withinKm = (within: string | null, units: string | null) => parseWithinKm(within, units, 1);
