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

/** A batch with its `geometry` column added (WKB points from lon/lat), and the box of its points. */
function withGeometry(schema: Schema, batch: RecordBatch): { batch: RecordBatch; bbox: Bbox | null } {
  const { lon, lat } = lonLat(batch);
  const points = pointsWkb(lon, lat);
  return {
    batch: new RecordBatch(
      schema,
      makeData({
        type: new Struct(schema.fields),
        length: batch.numRows,
        children: [...batch.data.children, points.data],
      }),
    ),
    bbox: points.bbox,
  };
}

/** The schema as one encapsulated IPC message (what Arrow's Parquet writers keep in `ARROW:schema`). */
function schemaMessage(schema: Schema): Buffer {
  const stream = Buffer.from(tableToIPC(new Table(schema), 'stream'));
  // The stream's first message (continuation marker, length, flatbuffer); the end marker left off.
  return stream.subarray(0, 8 + stream.readInt32LE(4));
}

/** A batch with its geometry, as the IPC stream the Parquet writer takes, and the box of its points. */
export interface GeoBatch {
  ipc: Uint8Array;
  rows: number;
  bbox: Bbox | null;
}

/**
 * Encodes a batch for the Parquet writer. Serialised now: its schema's metadata is what it is at this
 * moment (the same for every batch of a window until the last has been read), whatever comes later.
 */
export function encodeGeoBatch(batch: RecordBatch): GeoBatch {
  const schema = geoSchema(batch.schema);
  const { batch: geo, bbox } = withGeometry(schema, batch);
  return { ipc: tableToIPC(new Table(schema, [geo]), 'stream'), rows: batch.numRows, bbox };
}

/**
 * GeoParquet written from record batches as they come (a window build's own, while it reads the
 * next slices), each batch with its geometry crossing into the wasm Parquet writer alone; the file's
 * bytes go to `out` as row groups fill. The writer takes its metadata when it starts, but a
 * window's bounding box and its value column's CF metadata are known only after the last batch:
 * `close` hands back the final `geo` and `ARROW:schema` values, which `setParquetKeyValues` puts in
 * the file's footer. Memory holds one batch waiting and the writer's row group.
 */
export class GeoParquetStream {
  /** A batch's IPC stream waiting for the writer to take it; null: the end. */
  private readonly queue: (Uint8Array | null)[] = [];
  private wake: (() => void) | undefined;
  private taken: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private failure: unknown;
  /** The box of the points written so far. */
  private seen: Bbox | null = null;
  rows = 0;

  /**
   * `bbox`, when the box is known before the rows (and the source schema is final): the file is
   * written with its final metadata and `close` returns nothing to put in the footer.
   */
  constructor(
    private readonly out: (chunk: Uint8Array) => void,
    private readonly bbox?: Bbox | null,
  ) {}

  /** Queues a batch; resolves once the writer has taken it (so batches do not pile up). */
  async write(batch: RecordBatch): Promise<void> {
    if (batch.numRows > 0) await this.writeEncoded(encodeGeoBatch(batch));
  }

  /** `write` of a batch already encoded (by another thread, say). */
  async writeEncoded(b: GeoBatch): Promise<void> {
    if (b.rows === 0) return;
    this.check();
    this.seen = unionBbox(this.seen, b.bbox);
    this.queue.push(b.ipc);
    this.rows += b.rows;
    if (!this.running) {
      this.running = this.run();
      // Its failure reaches the caller through write, close or abort, whichever comes next.
      this.running.catch(() => undefined);
    }
    this.wake?.();
    while (this.queue.length > 0 && this.failure === undefined) {
      await new Promise<void>((resolve) => {
        this.taken = resolve;
      });
    }
    this.check();
  }

  /**
   * Ends the file; `final` is the source schema as it stands after the last batch (the box is that
   * of the points written, unless given at the start). Returns the
   * key-value entries the footer must carry (see `setParquetKeyValues`), or none when the file was
   * written whole here (no batch had rows: an empty file with the final metadata).
   */
  async close(final: Schema): Promise<Map<string, string> | undefined> {
    const geo = geoMetadata(this.bbox === undefined ? this.seen : this.bbox);
    if (!this.running) {
      this.out(writeFile(new Table(geoSchema(final)), geo));
      return undefined;
    }
    this.queue.push(null);
    this.wake?.();
    await this.running;
    this.check();
    if (this.bbox !== undefined) return undefined;
    return new Map([
      ['geo', JSON.stringify(geo)],
      ['ARROW:schema', schemaMessage(geoSchema(final)).toString('base64')],
    ]);
  }

  /** Stops the writer (the build failed); the bytes written so far are of no use. */
  async abort(): Promise<void> {
    this.failure ??= new Error('aborted');
    this.queue.length = 0;
    this.queue.push(null);
    this.wake?.();
    await this.running?.catch(() => undefined);
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private async run(): Promise<void> {
    const input = new ReadableStream(
      {
        pull: async (controller) => {
          while (this.queue.length === 0) {
            await new Promise<void>((resolve) => {
              this.wake = resolve;
            });
          }
          const ipc = this.queue.shift() as Uint8Array | null;
          this.taken?.();
          if (ipc === null) {
            controller.close();
            return;
          }
          const one = WasmTable.fromIPCStream(ipc);
          for (const rb of one.recordBatches()) controller.enqueue(rb);
          one.free();
        },
      },
      { highWaterMark: 0 },
    );
    try {
      // Unless the box is known, provisional metadata: the final values go in the footer at the end.
      const output: ReadableStream<Uint8Array> = await transformParquetStream(
        input,
        writerProperties(geoMetadata(this.bbox ?? null)),
      );
      for await (const chunk of output as unknown as AsyncIterable<Uint8Array>) this.out(chunk);
    } catch (err) {
      this.failure ??= err;
      this.taken?.();
      throw err;
    }
  }
}

/**
 * A dataset's Arrow IPC file (at `path`) as GeoParquet 1.1: the same columns plus `geometry` (WKB
 * points from lon/lat, WGS84 = the default OGC:CRS84), the `geo` file metadata, ZSTD compression.
 *
 * Streamed batch by batch: the file is read a batch at a time (random access, its dictionaries from
 * the footer) and each batch goes alone (with its geometry) into the Parquet writer, which writes
 * row groups as they fill. The bounding box comes from the file's footer, where the build wrote it
 * (a file built before it was recorded there takes a first pass over its batches). Memory holds a
 * batch and a row group, whatever the window's rows.
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
  const head = await fileSchema(path);
  let bbox = bboxFromMetadata(head.metadata);
  if (bbox === undefined) {
    bbox = null;
    for await (const b of batches()) bbox = unionBbox(bbox, batchBbox(b));
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const parquet = new GeoParquetStream((chunk) => {
    chunks.push(chunk);
    size += chunk.byteLength;
  }, bbox);
  try {
    for await (const b of batches()) await parquet.write(b);
  } catch (err) {
    await parquet.abort();
    throw err;
  }
  await parquet.close(head);
  return { parquet: concat(chunks, size), rows: parquet.rows };
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
    source.batches.map((b) => withGeometry(schema, b).batch),
  );
  return { parquet: writeFile(out, geo), rows: source.numRows };
}

function writeFile(table: Table, geo: unknown): Uint8Array {
  const wasmTable = WasmTable.fromIPCStream(tableToIPC(table, 'stream'));
  return writeParquet(wasmTable, writerProperties(geo));
}
