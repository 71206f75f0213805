import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  fastCheckedFields,
  fastValidBatch,
  fastValidEnvelope,
  fastValidObservation,
  mayHoldUnstorableText,
} from './fast-validate.js';
import { BatchBuffer, ObservationBatch, ObservationBatchEnvelope } from './messages.js';
import { Observation, textProblem } from './observation.js';

const hex = fc.stringMatching(/^[0-9a-f]{64}$/);
const traceId = fc.stringMatching(/^[0-9a-f]{32}$/);
/** Trace ids valid and nearly so (all zero, upper case, short, a whole traceparent, not a string). */
const nearlyTrace = fc.oneof(
  traceId,
  fc.constantFrom(
    '0'.repeat(32),
    'A'.repeat(32),
    'a'.repeat(31),
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    7,
  ),
);
const iso = fc.integer({ min: 0, max: 4_102_444_800_000 }).map((t) => new Date(t).toISOString());
const nearlyIso = fc.oneof(
  iso,
  fc.constantFrom(
    '2026-11-30T12:00:00Z',
    '2026-11-30 12:00:00.000Z',
    '',
    '2026-13-45T25:61:61.000Z',
    '2026-02-29T00:00:00.000Z',
    '2024-02-29T24:00:00.000Z',
  ),
);
/** Any UTF-16 code unit, so NUL and lone surrogates turn up. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const str = (max: number) =>
  fc.oneof(fc.string({ maxLength: max }), fc.string({ unit: codeUnit, maxLength: Math.min(max, 8) }));
const observation = (edge: string) =>
  fc.record(
    {
      id: fc.oneof(hex, fc.constantFrom('ABC', '0'.repeat(63))),
      source: str(210),
      edge: fc.oneof(fc.constant(edge), str(3)),
      station: str(210),
      sensor: str(210),
      variable: str(210),
      value: fc.oneof(fc.double(), fc.constant(null)),
      text: str(10),
      unit: str(70),
      time: nearlyIso,
      received: nearlyIso,
      lat: fc.double({ min: -100, max: 100 }),
      lon: fc.double({ min: -200, max: 200 }),
      alt: fc.double(),
      quality: fc.array(str(70), { maxLength: 18 }),
      trace: nearlyTrace,
      extra: fc.constant(1),
    },
    {
      requiredKeys: ['id', 'source', 'edge', 'station', 'variable', 'unit', 'time', 'received'],
    },
  );
/** A batch's buffer account, valid or nearly so. */
const bufferAccount = fc.record(
  {
    id: fc.oneof(
      fc.string({ minLength: 0, maxLength: 66 }),
      fc.stringMatching(/^[A-Za-z0-9._-]{1,66}$/),
      fc.constantFrom('ab\u0000cd', 'a b', 'a/b', 'é'),
    ),
    start: fc.integer({ min: -1, max: 3 }),
    dropped: fc.oneof(
      fc.array(fc.tuple(fc.integer({ min: -1, max: 5 }), fc.integer({ min: -1, max: 5 })), { maxLength: 3 }),
      fc.constant([[1, 2, 3]]),
      fc.constant(Array.from({ length: 65 }, () => [1, 1])),
    ),
    extra: fc.constant(1),
  },
  { requiredKeys: [] },
);
const batch = fc.string({ minLength: 0, maxLength: 3 }).chain((edge) =>
  fc.record(
    {
      v: fc.constantFrom(1, 2),
      edge: fc.constant(edge),
      seq: fc.tuple(fc.integer({ min: -1, max: 5 }), fc.integer({ min: -1, max: 5 })),
      sent: nearlyIso,
      buffer: fc.oneof(bufferAccount, fc.constant(null)),
      observations: fc.array(observation(edge), { maxLength: 4 }),
    },
    { requiredKeys: ['v', 'edge', 'seq', 'sent', 'observations'] },
  ),
);

/** Batches that are valid but for the odd field, so both checks have to look closely. */
const validObservation = (edge: string) =>
  fc.record(
    {
      id: hex,
      source: fc.string({ minLength: 1, maxLength: 200 }),
      edge: fc.constant(edge),
      station: fc.string({ minLength: 1, maxLength: 200 }),
      sensor: fc.string({ minLength: 1, maxLength: 200 }),
      variable: fc.string({ minLength: 1, maxLength: 200 }),
      value: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(null)),
      text: fc.oneof(str(4096), fc.constantFrom('hot\u0000x', '\ud800', '\udc00x', '\ud83d\ude00')),
      unit: str(64),
      time: iso,
      received: iso,
      lat: fc.double({ min: -90, max: 90, noNaN: true }),
      lon: fc.double({ min: -180, max: 180, noNaN: true }),
      alt: fc.double({ noNaN: true, noDefaultInfinity: true }),
      quality: fc.array(str(64), { maxLength: 16 }),
      trace: traceId,
    },
    { requiredKeys: ['id', 'source', 'edge', 'station', 'variable', 'value', 'unit', 'time', 'received'] },
  );
const validBatch = fc.string({ minLength: 1, maxLength: 20 }).chain((edge) =>
  fc.record({
    v: fc.constant(1),
    edge: fc.constant(edge),
    seq: fc.tuple(fc.nat(1000), fc.nat(1000)).map(([a, b]) => [Math.min(a, b), Math.max(a, b)]),
    sent: iso,
    buffer: fc.record(
      {
        id: fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/),
        start: fc.integer({ min: 1, max: 1000 }),
        dropped: fc.array(
          fc.tuple(fc.nat(1000), fc.nat(1000)).map(([a, b]) => [Math.min(a, b), Math.max(a, b)]),
          { maxLength: 4 },
        ),
      },
      { requiredKeys: ['id', 'start'] },
    ),
    observations: fc.array(validObservation(edge), { minLength: 1, maxLength: 4 }),
  }),
);

/** One change at a schema bound or past it, so a check looser or stricter than the schema shows. */
const mutation = fc.oneof(
  fc.constantFrom(-90.0001, 90.0001, -90, 90).map((lat) => ({ lat })),
  fc.constantFrom(-180.0001, 180.0001, -180, 180).map((lon) => ({ lon })),
  fc.constantFrom('', 'x'.repeat(200), 'x'.repeat(201)).map((station) => ({ station })),
  fc.constantFrom('', 'x'.repeat(200), 'x'.repeat(201)).map((sensor) => ({ sensor })),
  fc.constantFrom('', 'x'.repeat(200), 'x'.repeat(201)).map((source) => ({ source })),
  fc.constantFrom('', 'x'.repeat(200), 'x'.repeat(201)).map((variable) => ({ variable })),
  fc.constantFrom('x'.repeat(64), 'x'.repeat(65)).map((unit) => ({ unit })),
  fc.constantFrom('x'.repeat(4096), 'x'.repeat(4097)).map((text) => ({ text })),
  fc.constantFrom(16, 17).map((n) => ({ quality: Array.from({ length: n }, () => 'q') })),
  fc.constantFrom('q'.repeat(64), 'q'.repeat(65)).map((q) => ({ quality: [q] })),
  fc.constantFrom('A'.repeat(64), 'a'.repeat(63), 'g'.repeat(64)).map((id) => ({ id })),
  fc.constantFrom('1', true, {}, [1]).map((value) => ({ value })),
  fc
    .constantFrom('0'.repeat(32), 'f'.repeat(32), 'F'.repeat(32), 'f'.repeat(33), '')
    .map((trace) => ({ trace })),
  fc
    .constantFrom('2026-02-29T00:00:00.000Z', '2026-11-30T12:00:00Z', '2026-11-30T24:00:00.000Z')
    .map((time) => ({
      time,
    })),
  fc.constantFrom('2026-02-29T00:00:00.000Z', 'now').map((received) => ({ received })),
  fc.constantFrom('1', null).map((alt) => ({ alt })),
  fc.constant({ extra: 1 }),
  fc.constantFrom('id', 'source', 'station', 'variable', 'value', 'unit', 'time', 'received').map((k) => ({
    [k]: undefined,
  })),
);

describe('fast batch check', () => {
  it('agrees with the zod schema on batches that are valid or nearly so', () => {
    fc.assert(
      fc.property(validBatch, (b) => {
        const raw = JSON.parse(JSON.stringify(b));
        expect(fastValidBatch(raw)).toBe(ObservationBatch.safeParse(raw).success);
      }),
      { numRuns: 2000 },
    );
  });

  it('never accepts what the zod schema rejects', () => {
    fc.assert(
      fc.property(batch, (b) => {
        // JSON round trip: ingest only ever sees what JSON.parse makes.
        const raw = JSON.parse(JSON.stringify(b));
        if (fastValidBatch(raw)) expect(ObservationBatch.safeParse(raw).success).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees with the Observation schema observation by observation, valid or not', () => {
    const cases = fc
      .string({ minLength: 1, maxLength: 20 })
      .chain((edge) => fc.tuple(fc.constant(edge), fc.oneof(validObservation(edge), observation(edge))));
    fc.assert(
      fc.property(cases, ([edge, o]) => {
        const raw = JSON.parse(JSON.stringify(o));
        const schema = Observation.safeParse(raw);
        const accepted = schema.success && schema.data.edge === edge;
        const fast = fastValidObservation(raw, edge);
        // Stricter than the schema at most, never looser.
        if (fast) expect(accepted).toBe(true);
        // Ingest skips the look at strings when the JSON text shows none Postgres refuses.
        if (!mayHoldUnstorableText(JSON.stringify(raw)))
          expect(fastValidObservation(raw, edge, false)).toBe(fast);
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(
        fc
          .string({ minLength: 1, maxLength: 20 })
          .chain((edge) => fc.tuple(fc.constant(edge), validObservation(edge))),
        ([edge, o]) => {
          const raw = JSON.parse(JSON.stringify(o));
          expect(fastValidObservation(raw, edge)).toBe(Observation.safeParse(raw).success);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('agrees with the Observation schema at and just past each of its bounds', () => {
    const cases = fc
      .string({ minLength: 1, maxLength: 20 })
      .chain((edge) => fc.tuple(fc.constant(edge), validObservation(edge), mutation));
    fc.assert(
      fc.property(cases, ([edge, o, change]) => {
        const raw = JSON.parse(JSON.stringify({ ...o, ...change }));
        expect(fastValidObservation(raw, edge)).toBe(Observation.safeParse(raw).success);
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees with the envelope schema, valid or not', () => {
    fc.assert(
      fc.property(validBatch, (b) => {
        const raw = JSON.parse(JSON.stringify(b));
        expect(fastValidEnvelope(raw)).toBe(ObservationBatchEnvelope.safeParse(raw).success);
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(batch, (b) => {
        const raw = JSON.parse(JSON.stringify(b));
        if (fastValidEnvelope(raw)) expect(ObservationBatchEnvelope.safeParse(raw).success).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('knows exactly the fields of the schemas it mirrors', () => {
    const sorted = (keys: readonly string[]) => [...keys].sort();
    expect(sorted(fastCheckedFields.observation)).toEqual(sorted(Object.keys(Observation.shape)));
    expect(sorted(fastCheckedFields.batch)).toEqual(sorted(Object.keys(ObservationBatchEnvelope.shape)));
    expect(sorted(fastCheckedFields.buffer)).toEqual(sorted(Object.keys(BatchBuffer.shape)));
  });

  it('accepts the ordinary batch', () => {
    const o = {
      id: 'a'.repeat(64),
      source: 'mqtt',
      edge: 'gw-1',
      station: 'st-1',
      variable: 'air_temperature',
      value: 21.5,
      unit: 'degC',
      time: '2026-11-30T12:00:00.000Z',
      received: '2026-11-30T12:00:00.010Z',
      lat: 46.2,
      lon: 7.3,
      quality: ['edge_time'],
    };
    const b = {
      v: 1,
      edge: 'gw-1',
      seq: [1, 2],
      sent: '2026-11-30T12:00:01.000Z',
      observations: [o, { ...o, value: null }],
    };
    expect(ObservationBatch.safeParse(b).success).toBe(true);
    expect(fastValidBatch(b)).toBe(true);
    expect(fastValidBatch({ ...b, observations: [{ ...o, lat: 91 }] })).toBe(false);
    expect(fastValidBatch({ ...b, observations: [{ ...o, edge: 'gw-2' }] })).toBe(false);
    expect(fastValidBatch({ ...b, observations: [{ ...o, value: undefined }] })).toBe(false);
  });

  it('refuses NUL and lone surrogates in any string, as the schema does', () => {
    const o = {
      id: 'a'.repeat(64),
      source: 'mqtt',
      edge: 'gw-1',
      station: 'st-1',
      variable: 'state',
      value: null,
      text: 'hot\u0000x',
      unit: '',
      time: '2026-11-30T12:00:00.000Z',
      received: '2026-11-30T12:00:00.010Z',
    };
    const b = { v: 1, edge: 'gw-1', seq: [1, 1], sent: '2026-11-30T12:00:01.000Z', observations: [o] };
    expect(fastValidBatch(b)).toBe(false);
    expect(ObservationBatch.safeParse(b).success).toBe(false);
    expect(fastValidBatch({ ...b, observations: [{ ...o, text: undefined, station: '\udc00' }] })).toBe(
      false,
    );
    expect(fastValidBatch({ ...b, observations: [{ ...o, text: 'hot' }] })).toBe(true);
    expect(
      fastValidBatch({ ...b, observations: [{ ...o, text: 'hot', time: '2026-02-29T00:00:00.000Z' }] }),
    ).toBe(false);
  });

  it('sees every string Postgres would refuse in the JSON text alone', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: codeUnit, maxLength: 6 }), { maxLength: 4 }), (strings) => {
        const json = JSON.stringify({ strings });
        if (strings.some((t) => textProblem(t) !== undefined)) expect(mayHoldUnstorableText(json)).toBe(true);
      }),
      { numRuns: 3000 },
    );
    expect(mayHoldUnstorableText('{"text":"hot"}')).toBe(false);
  });
});
