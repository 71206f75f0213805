import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * The ISSLIVE item catalogue (public PUIs, from ISS-Mimic's `ISS_Public_Telemetry.xlsx`) and the
 * recorded value ranges the replay server's generator draws from.
 *
 * The JSON files live next to this module in `src/iss/` and are read from there by both the
 * sources and the built `dist/iss/*.js` (same depth, so `../../src/iss/` reaches them from either),
 * the way `@fieldbeam/protocol` ships `src/golden-ids.json`. An `import … with { type: 'json' }`
 * would be neater but needs `src/**\/*.json` in the edge project's `include`.
 */

const dataFile = (name: string) => new URL(`../../src/iss/${name}`, import.meta.url);

const CatalogueItem = z.object({
  id: z.string().regex(/^[A-Z0-9_]+$/),
  category: z.string(),
  description: z.string(),
  ops_name: z.string().nullable(),
  eng_name: z.string().nullable(),
  /** Raw engineering unit of the downlink; often not what `Value` carries (tlcp.md §8.3). */
  unit: z.string().nullable(),
  /** .NET format string (`{0:f2}`) or an enumeration (`0=OFF|1=ON`). */
  format: z.string(),
});
export type IssCatalogueItem = z.infer<typeof CatalogueItem>;

export interface IssCatalogue {
  readonly items: readonly IssCatalogueItem[];
  readonly byId: ReadonlyMap<string, IssCatalogueItem>;
}

let catalogue: IssCatalogue | undefined;

/** The catalogue, read and validated once. */
export function loadIssCatalogue(): IssCatalogue {
  if (catalogue === undefined) {
    const parsed = z
      .object({ items: z.array(CatalogueItem) })
      .parse(JSON.parse(readFileSync(dataFile('isslive-items.json'), 'utf8')));
    const items = Object.freeze(parsed.items.map((i) => Object.freeze(i)));
    // The source lists CSAMT000001 twice (MT position, then the worksite id that is probably
    // CSAMT000002); the first entry wins, as it does in the list the feed was built from.
    const byId = new Map<string, IssCatalogueItem>();
    for (const item of items) if (!byId.has(item.id)) byId.set(item.id, item);
    catalogue = Object.freeze({ items, byId });
  }
  return catalogue;
}

/** The numeric codes of an enumerated item (`0=OFF|1=ON` → [0, 1]), or undefined for a measured one. */
export function issEnumCodes(item: IssCatalogueItem): number[] | undefined {
  if (!/^\s*-?\d+\s*=/.test(item.format)) return undefined;
  const codes = item.format
    .split('|')
    .map((part) => /^\s*(-?\d+)\s*=/.exec(part)?.[1])
    .filter((c): c is string => c !== undefined)
    .map(Number);
  return codes.length > 0 ? codes : undefined;
}

let ranges: ReadonlyMap<string, readonly [number, number]> | undefined;

/** Recorded [min, max] of `Value` per item, where ISS-Mimic has a recording of it. */
export function loadIssRanges(): ReadonlyMap<string, readonly [number, number]> {
  if (ranges === undefined) {
    const parsed = z
      .object({ ranges: z.record(z.string(), z.tuple([z.number(), z.number()])) })
      .parse(JSON.parse(readFileSync(dataFile('isslive-ranges.json'), 'utf8')));
    ranges = new Map(Object.entries(parsed.ranges));
  }
  return ranges;
}
