import { Float64, makeData } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { BBOX_METADATA, bboxFromMetadata, bboxOf, unionBbox } from './bbox.js';

const floats = (values: number[], nulls: number[] = []) => {
  const bitmap = new Uint8Array(Math.ceil(values.length / 8)).fill(0xff);
  for (const i of nulls) bitmap[i >> 3] = (bitmap[i >> 3] ?? 0) & ~(1 << (i & 7));
  return makeData({
    type: new Float64(),
    length: values.length,
    nullCount: nulls.length,
    ...(nulls.length ? { nullBitmap: bitmap } : {}),
    data: Float64Array.from(values),
  });
};

describe('bounding box of points', () => {
  it('takes only rows where both coordinates are set', () => {
    const lon = floats([7, 100, 8, -3], [3]);
    const lat = floats([46, 0, 47, 10], [1]);
    expect(bboxOf(lon, lat)).toEqual([7, 46, 8, 47]);
    expect(bboxOf(floats([1], [0]), floats([1]))).toBeNull();
  });

  it('takes every row when neither column has a null, and gives none for no rows', () => {
    expect(bboxOf(floats([7, -3, 8]), floats([46, 10, 47]))).toEqual([-3, 10, 8, 47]);
    expect(bboxOf(floats([]), floats([]))).toBeNull();
  });

  it('joins boxes, an absent one leaving the other', () => {
    expect(unionBbox(null, [1, 2, 3, 4])).toEqual([1, 2, 3, 4]);
    expect(unionBbox([0, 5, 2, 6], [1, 2, 3, 4])).toEqual([0, 2, 3, 6]);
  });

  it('reads the box a file carries, and tells a file without points from one that says nothing', () => {
    expect(bboxFromMetadata(new Map([[BBOX_METADATA, '[7,46,8,47]']]))).toEqual([7, 46, 8, 47]);
    expect(bboxFromMetadata(new Map([[BBOX_METADATA, 'null']]))).toBeNull();
    expect(bboxFromMetadata(new Map())).toBeUndefined();
    expect(bboxFromMetadata(new Map([[BBOX_METADATA, '[1,2]']]))).toBeUndefined();
  });
});
