import {
  Binary,
  type Data,
  Field,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableFromIPC,
  tableToIPC,
} from 'apache-arrow';
import { Compression, Table as WasmTable, WriterPropertiesBuilder, writeParquet } from 'parquet-wasm';

export const PARQUET_CONTENT_TYPE = 'application/vnd.apache.parquet';

/** WKB of 2D points (little endian, type 1) from lat/lon columns; null where either is missing. */
function pointsWkb(
  lon: Data,
  lat: Data,
): { data: Data<Binary>; bbox: [number, number, number, number] | null } {
  const n = lon.length;
  const xs = lon.values as Float64Array;
  const ys = lat.values as Float64Array;
  const valid = (d: Data, i: number) =>
    !d.nullBitmap || d.nullCount === 0 || ((d.nullBitmap[i >> 3] ?? 0) >> (i & 7)) & 1;
  const offsets = new Int32Array(n + 1);
  const bitmap = new Uint8Array((n + 7) >> 3);
  let count = 0;
  for (let i = 0; i < n; i++) if (valid(lon, i) && valid(lat, i)) count++;
  const bytes = new Uint8Array(count * 21);
  const view = new DataView(bytes.buffer);
  let p = 0;
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (let i = 0; i < n; i++) {
    offsets[i] = p;
    if (!(valid(lon, i) && valid(lat, i))) continue;
    const x = xs[i] as number;
    const y = ys[i] as number;
    bytes[p] = 1;
    view.setUint32(p + 1, 1, true);
    view.setFloat64(p + 5, x, true);
    view.setFloat64(p + 13, y, true);
    p += 21;
    bitmap[i >> 3] = (bitmap[i >> 3] ?? 0) | (1 << (i & 7));
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  offsets[n] = p;
  const data = makeData({
    type: new Binary(),
    length: n,
    nullCount: n - count,
    ...(count < n ? { nullBitmap: bitmap } : {}),
    valueOffsets: offsets,
    data: bytes,
  });
  return { data, bbox: count > 0 ? [minX, minY, maxX, maxY] : null };
}

/**
 * A dataset's Arrow IPC file as GeoParquet 1.1: the same columns plus `geometry` (WKB points from
 * lon/lat, WGS84 = the default OGC:CRS84), the `geo` file metadata, ZSTD compression.
 */
export function arrowToGeoParquet(arrowFile: Uint8Array): { parquet: Uint8Array; rows: number } {
  const source = tableFromIPC(arrowFile);
  const batches = source.batches.map((batch) => {
    const lon = batch.getChild('lon')?.data[0];
    const lat = batch.getChild('lat')?.data[0];
    if (!lon || !lat) throw new Error('dataset object has no lat/lon columns');
    return { batch, ...pointsWkb(lon, lat) };
  });
  let bbox: [number, number, number, number] | null = null;
  for (const b of batches) {
    if (!b.bbox) continue;
    bbox = bbox
      ? [
          Math.min(bbox[0], b.bbox[0]),
          Math.min(bbox[1], b.bbox[1]),
          Math.max(bbox[2], b.bbox[2]),
          Math.max(bbox[3], b.bbox[3]),
        ]
      : b.bbox;
  }
  const geo = {
    version: '1.1.0',
    primary_column: 'geometry',
    columns: {
      geometry: {
        encoding: 'WKB',
        geometry_types: ['Point'],
        ...(bbox ? { bbox } : {}),
      },
    },
  };
  const fields = [...source.schema.fields, new Field('geometry', new Binary(), true)];
  // `geo` goes into the file's key-value metadata through the writer; the Arrow schema's own
  // metadata (dataset, window, version) is carried over by the writer as well.
  const schema = new Schema(fields, source.schema.metadata);
  const out = new Table(
    schema,
    batches.map(
      (b) =>
        new RecordBatch(
          schema,
          makeData({
            type: new Struct(fields),
            length: b.batch.numRows,
            children: [...b.batch.data.children, b.data],
          }),
        ),
    ),
  );
  if (batches.length === 0) {
    // An empty window still gets a valid (empty) file.
    return { parquet: writeFile(new Table(schema), geo), rows: 0 };
  }
  return { parquet: writeFile(out, geo), rows: source.numRows };
}

function writeFile(table: Table, geo: unknown): Uint8Array {
  const wasmTable = WasmTable.fromIPCStream(tableToIPC(table, 'stream'));
  const props = new WriterPropertiesBuilder()
    .setCompression(Compression.ZSTD)
    .setKeyValueMetadata(new Map([['geo', JSON.stringify(geo)]]))
    .setCreatedBy('fieldbeam-cloud')
    .build();
  return writeParquet(wasmTable, props);
}
