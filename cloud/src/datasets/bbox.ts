import type { Data } from 'apache-arrow';

/** [minLon, minLat, maxLon, maxLat] of WGS84 points. */
export type Bbox = [number, number, number, number];

/**
 * The schema metadata key under which a dataset file carries the bounding box of its points (JSON),
 * written with the footer once every batch has been seen: the GeoParquet export needs it before its
 * first row group and reads it there instead of a pass over the file.
 */
export const BBOX_METADATA = 'fieldbeam:bbox';

const valid = (d: Data, i: number) =>
  !d.nullBitmap || d.nullCount === 0 || (((d.nullBitmap[i >> 3] ?? 0) >> (i & 7)) & 1) === 1;

/** The bounding box of the rows where both lon and lat are set (a pass over two float columns). */
export function bboxOf(lon: Data, lat: Data): Bbox | null {
  const xs = lon.values as Float64Array;
  const ys = lat.values as Float64Array;
  if (lon.length > 0 && !(lon.nullBitmap && lon.nullCount > 0) && !(lat.nullBitmap && lat.nullCount > 0)) {
    // No nulls (the common case): a plain pass, no bitmap look-up per row.
    let x0 = Infinity;
    let y0 = Infinity;
    let x1 = -Infinity;
    let y1 = -Infinity;
    for (let i = 0; i < lon.length; i++) {
      const x = xs[i] as number;
      const y = ys[i] as number;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    return [x0, y0, x1, y1];
  }
  let box: Bbox | null = null;
  for (let i = 0; i < lon.length; i++) {
    if (!(valid(lon, i) && valid(lat, i))) continue;
    const x = xs[i] as number;
    const y = ys[i] as number;
    if (!box) box = [x, y, x, y];
    else {
      if (x < box[0]) box[0] = x;
      if (y < box[1]) box[1] = y;
      if (x > box[2]) box[2] = x;
      if (y > box[3]) box[3] = y;
    }
  }
  return box;
}

export function unionBbox(a: Bbox | null, b: Bbox | null): Bbox | null {
  if (!a) return b;
  if (!b) return a;
  return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[2], b[2]), Math.max(a[3], b[3])];
}

/** The box a file's metadata gives: `null` for a file without points, undefined when it says nothing. */
export function bboxFromMetadata(metadata: ReadonlyMap<string, string>): Bbox | null | undefined {
  const text = metadata.get(BBOX_METADATA);
  if (text === undefined) return undefined;
  const v = JSON.parse(text) as unknown;
  if (v === null) return null;
  if (Array.isArray(v) && v.length === 4 && v.every((n) => typeof n === 'number' && Number.isFinite(n))) {
    return v as Bbox;
  }
  return undefined;
}
