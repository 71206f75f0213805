import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EdgeAgentProcess,
  type NatsServer,
  startEdgeAgentProcess,
  startNatsServer,
  type TempDir,
  tempDir,
} from '../harness/index.js';
import { type RawAnswer, rawRequest } from './http-raw.js';

/**
 * Generated requests to the edge agent's HTTP intake (`POST /ingest/<topic>`), written byte for byte
 * to a real socket of an agent process: topics with odd levels and escapes, every credential form
 * (right, wrong, Basic, none, garbage), lying Content-Length and chunked framing, and bodies aimed at
 * each format (numbers, JSON, SenML, Sensor.Community, TTN uplinks) or at none. Whatever comes in, the
 * agent lives on, answers each request with a well-formed 2xx-4xx, and still stores a good reading.
 *
 * Bounded and seeded (FB_FUZZ_SEED, FB_FUZZ_RUNS override); fast-check prints a failure's shrunk request.
 */
const SEED = Number(process.env.FB_FUZZ_SEED ?? 20261206);
const RUNS = Number(process.env.FB_FUZZ_RUNS ?? 600);
const TOKEN = 'fuzz-client-token-0123456789';
const MAX_BODY = 16 * 1024;

let nats: NatsServer;
let dir: TempDir;
let edge: EdgeAgentProcess;

beforeAll(async () => {
  nats = await startNatsServer({ streams: true });
  dir = tempDir();
  edge = await startEdgeAgentProcess({
    dir: dir.path,
    config: {
      edge: 'gw-intake-fuzz',
      nats: { servers: [nats.url] },
      http_intake: {
        enabled: true,
        tokens: { fuzz: TOKEN },
        max_body_bytes: MAX_BODY,
        body_timeout_ms: 2000,
      },
      sensors: [
        { topic: 'n/+station', decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' } },
        { topic: 'j/+station', decoder: { type: 'json', time: 'time' } },
        { topic: 's/+station', decoder: { type: 'senml' } },
        { topic: 'sc/+station/#', decoder: { type: 'json' } },
        { topic: 'ttn/+station', decoder: { type: 'json' } },
      ],
    },
  });
}, 120_000);

afterAll(async () => {
  await edge?.stop();
  await nats?.close();
  dir?.remove();
});

/** Header values the parser takes (malformed HTTP itself is http-fuzz.test.ts's part): no control characters. */
const printable = (s: string) => [...s].filter((c) => c === '\t' || (c >= ' ' && c !== '\x7f')).join('');

// ---- generators ------------------------------------------------------------------------------

const level = fc.oneof(
  fc.constantFrom(
    'n',
    'j',
    's',
    'sc',
    'ttn',
    'x',
    '',
    '+',
    '#',
    '%2B',
    '%23',
    '%00',
    '%',
    '%zz',
    '%2F',
    '..',
    'é',
  ),
  fc.string({ unit: 'grapheme', maxLength: 10 }).map(encodeURIComponent),
  fc.string({ unit: 'binary-ascii', maxLength: 10 }),
);
const station = fc.oneof(
  fc.constantFrom('barn', 'roof-2', 'st.1'),
  fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/),
);
const target = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(fc.constantFrom('n', 'j', 's', 'sc', 'ttn'), station)
      .map(([p, st]) => `/ingest/${p}${p === 'ttn' || p === 'sc' ? '' : `/${st}`}`),
  },
  {
    weight: 8,
    arbitrary: fc.array(level, { minLength: 1, maxLength: 5 }).map((l) => `/ingest/${l.join('/')}`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('/ingest/', '/ingest', '/ingest//', '/ingest/n/a?x=1', '/ingest/%'),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 9000 }).map((n) => `/ingest/n/${'a'.repeat(n)}`) },
);
const method = fc.oneof(
  { weight: 8, arbitrary: fc.constant('POST') },
  { weight: 1, arbitrary: fc.constantFrom('GET', 'PUT', 'HEAD', 'OPTIONS', 'post', 'DELETE') },
);
const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
const authorization = fc.oneof(
  { weight: 6, arbitrary: fc.constant(`Bearer ${TOKEN}`) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      undefined,
      'Bearer',
      'Bearer ',
      `Bearer ${TOKEN}x`,
      `bearer ${TOKEN.slice(1)}`,
      basic(`x:${TOKEN}`),
      basic(TOKEN),
      basic(':'),
      'Basic !!!',
      `Token ${TOKEN}`,
      TOKEN,
    ),
  },
  {
    weight: 1,
    arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 60 }).map(printable),
  },
);
const num = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom('1e400', 'NaN', '-0', '0x10', '"12"', 'null'),
);
const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null');
const senml = fc
  .array(
    fc.record(
      {
        bn: fc.string({ maxLength: 8 }),
        n: fc.string({ maxLength: 8 }),
        u: fc.constantFrom('Cel', '%RH', 'V', 'x', ''),
        t: fc.oneof(fc.double(), fc.integer()),
        v: fc.oneof(fc.double(), fc.string({ maxLength: 4 })),
        vs: fc.string({ unit: 'binary', maxLength: 8 }),
      },
      { requiredKeys: [] },
    ),
    { maxLength: 8 },
  )
  .map((a) => JSON.stringify(a));
const sensorCommunity = fc
  .array(
    fc.record({
      value_type: fc.oneof(fc.constantFrom('SDS_P1', 'temperature', ''), fc.string()),
      value: fc.oneof(num.map(String), fc.string(), fc.constant(null)),
    }),
    {
      maxLength: 6,
    },
  )
  .map((values) => JSON.stringify({ esp8266id: '1', sensordatavalues: values }));
const ttn = fc
  .record(
    {
      end_device_ids: fc.oneof(
        fc.record({ device_id: fc.oneof(fc.constantFrom('dev-1', 'a/b', '', '#'), fc.string()) }),
        fc.jsonValue(),
      ),
      received_at: fc.oneof(
        fc.date({ noInvalidDate: false }).map((d) => (Number.isNaN(d.getTime()) ? 'x' : d.toISOString())),
        fc.string(),
      ),
      uplink_message: fc.oneof(
        fc.record(
          { decoded_payload: fc.jsonValue({ maxDepth: 2 }), received_at: fc.string() },
          { requiredKeys: [] },
        ),
        fc.jsonValue({ maxDepth: 1 }),
      ),
    },
    { requiredKeys: ['end_device_ids'] },
  )
  .map((v) => JSON.stringify(v));
const body = fc.oneof(
  { weight: 3, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).map(String) },
  num.map(String),
  json,
  senml,
  sensorCommunity,
  ttn,
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.integer({ min: MAX_BODY - 2, max: MAX_BODY + 2 }).map((n) => '1'.repeat(n)),
);
const extraHeader = fc.oneof(
  fc.constantFrom<[string, string]>(
    ['X-Sensor', 'esp8266-15505091'],
    ['X-Sensor', 'a/b'],
    ['X-Sensor', ''],
    ['X-Pin', '1'],
    ['X-Pin', 'x'],
    ['Content-Type', 'application/senml+json'],
    ['Expect', '100-continue'],
    ['Connection', 'close'],
  ),
  fc
    .tuple(
      fc.constantFrom('X-Sensor', 'X-Pin', 'Content-Type'),
      fc.string({ unit: 'binary-ascii', maxLength: 20 }),
    )
    .map(([n, v]): [string, string] => [n, printable(v)]),
);
/** How the body is framed: honest length, a lie either way, chunked (well or badly), none. */
const framing = fc.oneof(
  { weight: 12, arbitrary: fc.constant('length') },
  { weight: 1, arbitrary: fc.constantFrom('short', 'long', 'chunked', 'bad-chunk', 'none') },
);

const request = fc
  .record({ method, target, authorization, headers: fc.array(extraHeader, { maxLength: 3 }), body, framing })
  .map((r) => {
    const b = Buffer.from(r.body, 'utf8');
    const head = [
      `${r.method} ${r.target} HTTP/1.1`,
      'Host: x',
      'Connection: close',
      ...(r.authorization === undefined ? [] : [`Authorization: ${r.authorization}`]),
      ...r.headers.map(([n, v]) => `${n}: ${v}`),
    ];
    const frame = (h: string[], payload: Buffer) =>
      Buffer.concat([Buffer.from(`${h.join('\r\n')}\r\n\r\n`), payload]);
    switch (r.framing) {
      case 'length':
        return frame([...head, `Content-Length: ${b.length}`], b);
      case 'short':
        return frame([...head, `Content-Length: ${Math.max(0, b.length - 3)}`], b);
      case 'long':
        return frame([...head, `Content-Length: ${b.length + 7}`], b);
      case 'chunked':
        return frame(
          [...head, 'Transfer-Encoding: chunked'],
          Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n0\r\n\r\n')]),
        );
      case 'bad-chunk':
        return frame([...head, 'Transfer-Encoding: chunked'], Buffer.concat([Buffer.from('zz\r\n'), b]));
      default:
        return frame(head, Buffer.alloc(0));
    }
  });

function problem(answer: RawAnswer): string | undefined {
  if (answer.text === '') return 'no answer at all';
  if (!answer.wellFormed)
    return `not a well-formed HTTP/1.1 response: ${JSON.stringify(answer.text.slice(0, 200))}`;
  const bad = answer.statuses.find((s) => s >= 500 || s < 100);
  return bad === undefined ? undefined : `status ${bad}: ${JSON.stringify(answer.text.slice(0, 300))}`;
}

describe('HTTP intake fuzzing over a real socket', () => {
  it('answers every generated request with a 2xx-4xx, lives on, and still stores a good reading', async () => {
    let cases = 0;
    const byStatus = new Map<number, number>();
    const started = Date.now();
    try {
      await fc.assert(
        fc.asyncProperty(request, async (bytes) => {
          cases++;
          // A body shorter than its Content-Length waits for the body timeout (2 s): the answer comes then.
          const answer = await rawRequest(edge.host, edge.httpPort, bytes, 8000);
          const final = answer.statuses.find((s) => s >= 200) ?? 0;
          byStatus.set(final, (byStatus.get(final) ?? 0) + 1);
          const why = problem(answer);
          if (why)
            throw new Error(`${why}\nrequest: ${JSON.stringify(bytes.toString('latin1').slice(0, 400))}`);
          if (cases % 100 === 0 && (await edge.status())?.ok !== true)
            throw new Error('no longer answers /healthz');
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true },
      );
    } finally {
      console.log(
        `http intake fuzz: ${cases} cases (seed ${SEED}) in ${Date.now() - started} ms;`,
        `answers by status: ${JSON.stringify(Object.fromEntries([...byStatus].sort(([a], [b]) => a - b)))}`,
      );
    }
    expect(byStatus.get(201) ?? 0).toBeGreaterThan(0);
    expect(byStatus.get(400) ?? 0).toBeGreaterThan(0);
    const res = await fetch(`http://${edge.host}:${edge.httpPort}/ingest/n/after-fuzz`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: '20.5',
    });
    expect(res.status).toBe(201);
    expect(edge.crashes).toEqual([]);
  }, 600_000);
});
