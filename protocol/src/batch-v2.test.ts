import { randomBytes } from 'node:crypto';
import { deflateRawSync, zstdCompressSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type BatchHead,
  batchV2Body,
  batchV2Limits,
  decodeBatchV2,
  encodeBatchV2,
  isBatchV2,
} from './batch-v2.js';
import golden from './golden-batches.json' with { type: 'json' };
import goldenTrace from './golden-batches-trace.json' with { type: 'json' };
import { ObservationBatch } from './messages.js';
import { observationId } from './observation-id.js';

const EDGE = 'gw-1';
const iso = fc.integer({ min: 0, max: 4_102_444_800_000 }).map((t) => new Date(t).toISOString());
const name = fc.string({ minLength: 1, maxLength: 40 });
/** Observations as the edge stores them (their JSON texts), ids made from their fields. */
const storedObservation = fc
  .record(
    {
      source: fc.constantFrom('mqtt', 'tlcp', 'http'),
      station: name,
      sensor: name,
      variable: name,
      value: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(null)),
      text: fc.string({ maxLength: 30 }),
      unit: fc.string({ maxLength: 10 }),
      time: iso,
      received: iso,
      lat: fc.double({ min: -90, max: 90, noNaN: true }),
      lon: fc.double({ min: -180, max: 180, noNaN: true }),
      alt: fc.double({ noNaN: true, noDefaultInfinity: true }),
      quality: fc.array(fc.string({ maxLength: 12 }), { maxLength: 4 }),
      trace: fc.constantFrom('4bf92f3577b34da6a3ce929d0e0e4736', '0af7651916cd43dd8448eb211c80319c'),
    },
    { requiredKeys: ['source', 'station', 'variable', 'value', 'unit', 'time', 'received'] },
  )
  .map((o) => JSON.stringify({ id: observationId(o), edge: EDGE, ...o }));
const head = (n: number): BatchHead => ({
  edge: EDGE,
  seq: [7, 6 + n],
  sent: '2026-12-01T00:00:00.000Z',
  buffer: { id: 'buf', start: 1 },
});

function decoded(data: Uint8Array) {
  const d = decodeBatchV2(data);
  if (!d.ok) throw new Error(d.reason);
  return d;
}

describe('protocol v2 batches', () => {
  it('round trip: decoding gives back the batch v1 would carry, with every id computed', () => {
    fc.assert(
      fc.property(
        fc.array(storedObservation, { minLength: 1, maxLength: 30 }),
        fc.constantFrom('zstd', 'deflate'),
        (rows, codec) => {
          const data = encodeBatchV2(head(rows.length), rows, { codec: codec as 'zstd' | 'deflate' });
          const d = decoded(data);
          expect(d.envelope).toEqual({
            v: 1,
            ...head(rows.length),
            observations: rows.map((r) => JSON.parse(r)),
          });
          expect(d.sentIds.size).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('times come back exactly, across days, years and the ends of the wire form', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 }),
        fc.array(fc.integer({ min: -3 * 86_400_000, max: 3 * 86_400_000 }), { minLength: 1, maxLength: 40 }),
        (base, offsets) => {
          const times = offsets
            .map((d) => base + d)
            .filter((t) => t >= -62_167_219_200_000 && t <= 253_402_300_799_999)
            .map((t) => new Date(t).toISOString());
          if (times.length === 0) return;
          const rows = times.map((time, i) => {
            const o = {
              source: 'mqtt',
              station: 's',
              variable: 'v',
              value: i,
              unit: '',
              time,
              received: time,
            };
            return JSON.stringify({ id: observationId(o), edge: EDGE, ...o });
          });
          const d = decoded(encodeBatchV2(head(rows.length), rows));
          expect(d.envelope.observations).toEqual(rows.map((r) => JSON.parse(r)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('an observation the columns cannot hold travels whole, its id checked by the receiver', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            storedObservation,
            fc.jsonValue().map((v) => JSON.stringify(v)),
          ),
          {
            minLength: 1,
            maxLength: 20,
          },
        ),
        (rows) => {
          const d = decoded(encodeBatchV2(head(rows.length), rows));
          const parsed = rows.map((r) => JSON.parse(r));
          expect(d.envelope.observations).toHaveLength(rows.length);
          for (const i of d.sentIds) expect(d.envelope.observations[i]).toEqual(parsed[i]);
        },
      ),
      { numRuns: 200 },
    );
    const odd = { ...JSON.parse(fc.sample(storedObservation, 1)[0] as string), extra: 1 };
    const wrongId = { ...odd, extra: undefined, id: 'f'.repeat(64) };
    const d = decoded(encodeBatchV2(head(2), [odd, JSON.stringify(wrongId)]));
    expect(d.sentIds).toEqual(new Set([0]));
    expect(d.envelope.observations[0]).toEqual(odd);
    // Times not in the wire form cannot be written as milliseconds: they travel as sent.
    const badTimes = [
      { ...wrongId, time: '2026-02-30T00:00:00.000Z' },
      { ...wrongId, received: '2026-11-30T12:00:00Z' },
    ];
    const t = decoded(encodeBatchV2(head(3), [...badTimes, JSON.stringify(wrongId)]));
    expect(t.sentIds).toEqual(new Set([0, 1]));
    expect(t.envelope.observations.slice(0, 2)).toEqual(badTimes);
    // A columnar observation's id is made from its fields: a wrong one cannot be carried.
    expect((d.envelope.observations[1] as { id: string }).id).not.toBe('f'.repeat(64));
  });

  it('golden vectors: the fixed batch, its v1 text and its v2 bytes', () => {
    expect(ObservationBatch.safeParse(golden.batch).success).toBe(true);
    const batch = golden.batch as ObservationBatch;
    expect(JSON.stringify(batch)).toBe(golden.v1);
    const { observations, v: _v, ...h } = batch;
    expect(batchV2Body(h, observations)).toBe(golden.v2Body);
    const zstd = Buffer.from(golden.v2Zstd, 'base64');
    const deflate = Buffer.from(golden.v2Deflate, 'base64');
    expect(decoded(zstd).envelope).toEqual(golden.batch);
    expect(decoded(deflate).envelope).toEqual(golden.batch);
    expect([...zstd.subarray(0, 3)]).toEqual([0xfb, 0x02, 1]);
    expect([...deflate.subarray(0, 3)]).toEqual([0xfb, 0x02, 2]);
    // The compressors' output for this input is stable in a given Node; if an upgrade changes it,
    // the decoding checks above still hold and the vectors are regenerated.
    expect(Buffer.from(encodeBatchV2(h, observations)).toString('base64')).toBe(golden.v2Zstd);
    expect(Buffer.from(encodeBatchV2(h, observations, { codec: 'deflate' })).toString('base64')).toBe(
      golden.v2Deflate,
    );
  });

  it('golden vectors with trace ids: a dictionary-encoded trace column, ids as without it', () => {
    expect(ObservationBatch.safeParse(goldenTrace.batch).success).toBe(true);
    const batch = goldenTrace.batch as ObservationBatch;
    expect(JSON.stringify(batch)).toBe(goldenTrace.v1);
    const { observations, v: _v, ...h } = batch;
    const body = batchV2Body(h, observations);
    expect(body).toBe(goldenTrace.v2Body);
    // Each trace-id once in the dictionary, however many readings share it; -1 for none.
    const parsed = JSON.parse(body) as { dict: string[]; trace: number[] };
    expect(parsed.dict.filter((w) => /^[0-9a-f]{32}$/.test(w))).toHaveLength(2);
    expect(parsed.trace).toEqual([5, 5, 9, -1]);
    for (const bytes of [goldenTrace.v2Zstd, goldenTrace.v2Deflate]) {
      expect(decoded(Buffer.from(bytes, 'base64')).envelope).toEqual(goldenTrace.batch);
    }
    // The trace is no part of the id: the same reading without it has the same id.
    for (const o of observations) {
      const { id, edge: _e, trace: _t, ...key } = o;
      expect(observationId(key)).toBe(id);
    }
    // Bodies without traces (written before the column existed) have no trace column.
    expect(golden.v2Body).not.toContain('"trace"');
  });

  it('a trace column that is not dictionary indexes is refused', () => {
    const body = JSON.parse(goldenTrace.v2Body) as Record<string, unknown>;
    for (const trace of [[5, 5, 99, -1], [5, 5], 'x']) {
      const packed = zstdCompressSync(Buffer.from(JSON.stringify({ ...body, trace })));
      const d = decodeBatchV2(Buffer.concat([Buffer.from([0xfb, 0x02, 1]), packed]));
      expect(d.ok).toBe(false);
      if (!d.ok) expect(d.reason).toMatch(/trace/);
    }
  });

  it('a v1 JSON batch never carries the v2 tag', () => {
    expect(isBatchV2(Buffer.from(golden.v1))).toBe(false);
    expect(isBatchV2(Buffer.from(golden.v2Zstd, 'base64'))).toBe(true);
  });

  it('a batch cut at maxRowBytes of incompressible rows fits maxBytes', () => {
    const rows: string[] = [];
    let bytes = 0;
    for (;;) {
      const o = {
        source: randomBytes(30).toString('base64'),
        station: randomBytes(30).toString('base64'),
        variable: randomBytes(30).toString('base64'),
        value: Math.random(),
        text: randomBytes(3000).toString('base64'),
        unit: randomBytes(20).toString('base64'),
        time: new Date(Math.floor(Math.random() * 4e12)).toISOString(),
        received: new Date(Math.floor(Math.random() * 4e12)).toISOString(),
      };
      const row = JSON.stringify({ id: observationId(o), edge: EDGE, ...o });
      if (bytes + row.length > batchV2Limits.maxRowBytes) break;
      bytes += row.length;
      rows.push(row);
    }
    for (const codec of ['zstd', 'deflate'] as const) {
      const data = encodeBatchV2(head(rows.length), rows, { codec });
      expect(data.byteLength).toBeLessThanOrEqual(batchV2Limits.maxBytes);
      expect(decoded(data).envelope.observations).toHaveLength(rows.length);
    }
  });
});

describe('protocol v2 batches: memory', () => {
  it('a small batch takes about its own size from the Buffer pool, not a 16 KiB output chunk per encode', () => {
    // Node's Buffer pool hands out slices of shared slabs; a probe allocation after each encode shows
    // which slab is current. 16 KiB per encode (zlib's default chunk) fills a slab every few batches.
    const rows = [JSON.stringify({ id: 'x', edge: EDGE, station: 's', variable: 'v', value: 1 })];
    const slabs = new Set<ArrayBufferLike>();
    for (let i = 0; i < 200; i++) {
      for (const codec of ['zstd', 'deflate'] as const) encodeBatchV2(head(1), rows, { codec });
      slabs.add(Buffer.allocUnsafe(1).buffer);
    }
    // 400 encodes of ~300 bytes: a few slabs; with 16 KiB each, over a hundred.
    expect(slabs.size).toBeLessThan(20);
  });
});

describe('protocol v2 batches: damaged and hostile input is refused with a reason', () => {
  const tag = (codec: number, body: Uint8Array) => Buffer.concat([Buffer.from([0xfb, 0x02, codec]), body]);
  const reason = (data: Uint8Array) => {
    const d = decodeBatchV2(data);
    expect(d.ok).toBe(false);
    return d.ok ? '' : d.reason;
  };

  it('decompression bombs: refused once the output passes maxDecodedBytes', () => {
    const zeros = Buffer.alloc(64 * 1024 * 1024);
    const zbomb = tag(1, zstdCompressSync(zeros));
    const dbomb = tag(2, deflateRawSync(zeros, { level: 9 }));
    expect(zbomb.byteLength).toBeLessThan(batchV2Limits.maxBytes);
    expect(dbomb.byteLength).toBeLessThan(batchV2Limits.maxBytes);
    expect(reason(zbomb)).toMatch(/decompresses to more than 2097152 bytes/);
    expect(reason(dbomb)).toMatch(/decompresses to more than 2097152 bytes/);
  });

  it('over the wire bound, unknown codec, truncated, garbage', () => {
    const good = Buffer.from(golden.v2Zstd, 'base64');
    expect(reason(Buffer.concat([good, Buffer.alloc(batchV2Limits.maxBytes)]))).toMatch(/over the limit/);
    expect(reason(tag(9, good.subarray(3)))).toMatch(/unknown codec 9/);
    expect(reason(good.subarray(0, 2))).toMatch(/unknown codec none/);
    for (let cut = 3; cut < good.length; cut += 7)
      expect(reason(good.subarray(0, cut))).toMatch(/v2 batch: /);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.constantFrom(1, 2), (bytes, codec) => {
        reason(tag(codec, bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('a well-compressed body with malformed columns', () => {
    const z = (body: unknown) => tag(1, zstdCompressSync(Buffer.from(JSON.stringify(body))));
    const ok = JSON.parse(golden.v2Body);
    expect(decodeBatchV2(z(ok)).ok).toBe(true);
    expect(reason(z([1]))).toMatch(/body is not an object/);
    expect(reason(tag(1, zstdCompressSync(Buffer.from([0xff, 0xfe]))))).toMatch(/not UTF-8 JSON/);
    expect(reason(z({ ...ok, v: 3 }))).toMatch(/version 3/);
    expect(reason(z({ ...ok, n: 0 }))).toMatch(/n must be/);
    expect(reason(z({ ...ok, n: batchV2Limits.maxObservations + 1 }))).toMatch(/n must be/);
    expect(reason(z({ ...ok, station: [0] }))).toMatch(/column station/);
    expect(reason(z({ ...ok, station: [0, 0, 0, 99] }))).toMatch(/station\[3\] is not an index/);
    expect(reason(z({ ...ok, source: [0, 0, 0, -1] }))).toMatch(
      /observation 3 lacks one of source, station, variable, unit/,
    );
    expect(reason(z({ ...ok, time: [0, 0, 0, 1e300] }))).toMatch(/time\[3\]/);
    expect(reason(z({ ...ok, time: [8e15, 8e15, 0, 0] }))).toMatch(/time\[1\] is outside/);
    expect(reason(z({ ...ok, dict: [1] }))).toMatch(/dict/);
    expect(reason(z({ ...ok, raw: [[4, {}]] }))).toMatch(/raw/);
    expect(reason(z({ ...ok, quality: [null, null, 'x', null] }))).toMatch(/quality\[2\]/);
    expect(reason(z({ ...ok, extra: 1 }))).toMatch(/unknown field extra/);
  });
});

describe('decodeObservationBatch', () => {
  it('reads v1 and v2 messages alike, checked whole', async () => {
    const { decodeObservationBatch } = await import('./batch-decode.js');
    const v1 = decodeObservationBatch(Buffer.from(golden.v1));
    const v2 = decodeObservationBatch(Buffer.from(golden.v2Zstd, 'base64'));
    expect(v1.ok).toBe(true);
    expect(v2).toEqual(v1);
    const { observations, v: _v, ...h } = golden.batch as ObservationBatch;
    const bad = decodeObservationBatch(encodeBatchV2(h, [...observations, { ...observations[0], extra: 1 }]));
    expect(bad).toMatchObject({ ok: false, reason: expect.stringMatching(/^observations\[4\]: schema/) });
  });
});
