import { open } from 'node:fs/promises';
import {
  Binary,
  type Data,
  Field,
  makeData,
  RecordBatch,
  RecordBatchReader,
  Schema,
  Struct,
  Table,
  tableFromIPC,
  tableToIPC,
} from 'apache-arrow';
import {
  Compression,
  transformParquetStream,
  Table as WasmTable,
  WriterPropertiesBuilder,
  writeParquet,
} from 'parquet-wasm';

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

type Bbox = [number, number, number, number];

function union(a: Bbox | null, b: Bbox | null): Bbox | null {
  if (!a) return b;
  if (!b) return a;
  return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[2], b[2]), Math.max(a[3], b[3])];
}

function lonLat(batch: RecordBatch): { lon: Data; lat: Data } {
  const lon = batch.getChild('lon')?.data[0];
  const lat = batch.getChild('lat')?.data[0];
  if (!lon || !lat) throw new Error('dataset object has no lat/lon columns');
  return { lon, lat };
}

/** The bounding box of the points of a batch (a pass over two float columns, nothing allocated). */
function bboxOf(batch: RecordBatch): Bbox | null {
  const { lon, lat } = lonLat(batch);
  const xs = lon.values as Float64Array;
  const ys = lat.values as Float64Array;
  const valid = (d: Data, i: number) =>
    !d.nullBitmap || d.nullCount === 0 || ((d.nullBitmap[i >> 3] ?? 0) >> (i & 7)) & 1;
  let box: Bbox | null = null;
  for (let i = 0; i < batch.numRows; i++) {
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

function geoMetadata(bbox: Bbox | null) {
  return {
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
}

function writerProperties(geo: unknown) {
  return new WriterPropertiesBuilder()
    .setCompression(Compression.ZSTD)
    .setKeyValueMetadata(new Map([['geo', JSON.stringify(geo)]]))
    .setCreatedBy('fieldbeam-cloud')
    .build();
}

/** The GeoParquet schema of a dataset schema: its columns plus `geometry`, its metadata kept. */
function geoSchema(source: Schema): Schema {
  return new Schema([...source.fields, new Field('geometry', new Binary(), true)], source.metadata);
}

/** A batch with its `geometry` column added (WKB points from lon/lat). */
function withGeometry(schema: Schema, batch: RecordBatch): RecordBatch {
  const { lon, lat } = lonLat(batch);
  return new RecordBatch(
    schema,
    makeData({
      type: new Struct(schema.fields),
      length: batch.numRows,
      children: [...batch.data.children, pointsWkb(lon, lat).data],
    }),
  );
}

/**
 * A dataset's Arrow IPC file (at `path`) as GeoParquet 1.1: the same columns plus `geometry` (WKB
 * points from lon/lat, WGS84 = the default OGC:CRS84), the `geo` file metadata, ZSTD compression.
 *
 * Streamed batch by batch: the file is read a batch at a time (random access, its dictionaries from
 * the footer), once to find the bounding box (the `geo` metadata is set before the first row group)
 * and once to write, each batch alone (with its geometry) crossing into the Parquet writer, which
 * writes row groups as they fill. Memory holds a batch and a row group, whatever the window's rows.
 */
export async function arrowFileToGeoParquet(path: string): Promise<{ parquet: Uint8Array; rows: number }> {
  const batches = async function* (): AsyncGenerator<RecordBatch> {
    const fh = await open(path, 'r');
    try {
      const reader = await RecordBatchReader.from(fh);
      for await (const b of reader as AsyncIterable<RecordBatch>) yield b;
    } finally {
      await fh.close();
    }
  };
  let bbox: Bbox | null = null;
  let rows = 0;
  let source: Schema | undefined;
  for await (const b of batches()) {
    source ??= b.schema;
    bbox = union(bbox, bboxOf(b));
    rows += b.numRows;
  }
  const geo = geoMetadata(bbox);
  if (rows === 0 || !source) {
    // An empty window still gets a valid (empty) file.
    const fh = await open(path, 'r');
    try {
      const reader = await RecordBatchReader.from(fh);
      await reader.open();
      return { parquet: writeFile(new Table(geoSchema(reader.schema)), geo), rows: 0 };
    } finally {
      await fh.close();
    }
  }
  const schema = geoSchema(source);
  const it = batches();
  const input = new ReadableStream({
    async pull(controller) {
      for (;;) {
        const next = await it.next();
        if (next.done) {
          controller.close();
          return;
        }
        if (next.value.numRows === 0) continue;
        // The only way into the wasm writer is IPC: one batch (and its dictionaries) at a time.
        const one = WasmTable.fromIPCStream(
          tableToIPC(new Table(schema, [withGeometry(schema, next.value)]), 'stream'),
        );
        for (const rb of one.recordBatches()) controller.enqueue(rb);
        one.free();
        return;
      }
    },
    async cancel() {
      await it.return(undefined);
    },
  });
  const output: ReadableStream<Uint8Array> = await transformParquetStream(input, writerProperties(geo));
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of output as unknown as AsyncIterable<Uint8Array>) {
    chunks.push(chunk);
    size += chunk.byteLength;
  }
  return { parquet: concat(chunks, size), rows };
}

function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(size);
  let p = 0;
  for (const c of chunks) {
    out.set(c, p);
    p += c.byteLength;
  }
  return out;
}

/**
 * The same as `arrowFileToGeoParquet`, synchronously and whole (for small tables, such as a read-API
 * response): the file is written in one call.
 */
export function arrowToGeoParquet(arrowFile: Uint8Array): { parquet: Uint8Array; rows: number } {
  const source = tableFromIPC(arrowFile);
  const schema = geoSchema(source.schema);
  let bbox: Bbox | null = null;
  for (const b of source.batches) bbox = union(bbox, bboxOf(b));
  const geo = geoMetadata(bbox);
  if (source.batches.length === 0) {
    // An empty window still gets a valid (empty) file.
    return { parquet: writeFile(new Table(schema), geo), rows: 0 };
  }
  const out = new Table(
    schema,
    source.batches.map((b) => withGeometry(schema, b)),
  );
  return { parquet: writeFile(out, geo), rows: source.numRows };
}

function writeFile(table: Table, geo: unknown): Uint8Array {
  const wasmTable = WasmTable.fromIPCStream(tableToIPC(table, 'stream'));
  return writeParquet(wasmTable, writerProperties(geo));
}
