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
import { type Bbox, bboxFromMetadata, bboxOf, unionBbox } from '../datasets/bbox.js';

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

function lonLat(batch: RecordBatch): { lon: Data; lat: Data } {
  const lon = batch.getChild('lon')?.data[0];
  const lat = batch.getChild('lat')?.data[0];
  if (!lon || !lat) throw new Error('dataset object has no lat/lon columns');
  return { lon, lat };
}

/** The bounding box of the points of a batch. */
function batchBbox(batch: RecordBatch): Bbox | null {
  const { lon, lat } = lonLat(batch);
  return bboxOf(lon, lat);
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
  // The box from the file's footer, where the build wrote it; a file built before the box was
  // recorded there takes a first pass over its batches instead.
  const head = await fileSchema(path);
  let bbox = bboxFromMetadata(head.metadata);
  if (bbox === undefined) {
    bbox = null;
    for await (const b of batches()) bbox = unionBbox(bbox, batchBbox(b));
  }
  const geo = geoMetadata(bbox);
  const schema = geoSchema(head);
  const it = batches();
  // The first batch with rows, before the writer starts: a window without any gets an empty file.
  let first: RecordBatch | undefined;
  for (;;) {
    const next = await it.next();
    if (next.done) break;
    if (next.value.numRows > 0) {
      first = next.value;
      break;
    }
  }
  if (!first) return { parquet: writeFile(new Table(schema), geo), rows: 0 };
  let rows = 0;
  const input = new ReadableStream({
    async pull(controller) {
      for (;;) {
        const batch = first ?? (await it.next()).value;
        first = undefined;
        if (!batch) {
          controller.close();
          return;
        }
        if (batch.numRows === 0) continue;
        rows += batch.numRows;
        // The only way into the wasm writer is IPC: one batch (and its dictionaries) at a time.
        const one = WasmTable.fromIPCStream(
          tableToIPC(new Table(schema, [withGeometry(schema, batch)]), 'stream'),
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

/** The schema of an Arrow IPC file, from its footer (with the metadata written last). */
async function fileSchema(path: string): Promise<Schema> {
  const fh = await open(path, 'r');
  try {
    const reader = await RecordBatchReader.from(fh);
    await reader.open();
    return reader.schema;
  } finally {
    await fh.close();
  }
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
  for (const b of source.batches) bbox = unionBbox(bbox, batchBbox(b));
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
