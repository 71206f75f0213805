import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CollectorProcess, EdgeAgentProcess } from '../harness/index.js';
import { type RawAnswer, rawRequest } from './http-raw.js';
import { ADMIN_TOKEN, COLLECTOR_ROUTES, type HttpTargets, startHttpTargets } from './http-targets.js';

/**
 * Generated HTTP requests, written byte for byte to a real socket of a collector and of an edge agent
 * (each its own OS process): request lines with odd methods and targets (`//[`, stray `%`, `..`,
 * unicode, control characters, very long), headers and query strings aimed at the routes' parameters.
 * Whatever comes in, the process lives on, and every answer is a well-formed HTTP/1.1 response with a
 * 2xx, 3xx or 4xx status: input alone never causes a 5xx.
 *
 * The run is bounded and seeded (FB_FUZZ_SEED, FB_FUZZ_RUNS override); the seed and counts are
 * printed, and fast-check prints the seed and the shrunk request of a failure.
 */
const SEED = Number(process.env.FB_FUZZ_SEED ?? 20261205);
const RUNS = Number(process.env.FB_FUZZ_RUNS ?? 1000);
const HOST = '127.0.0.1';

let targets: HttpTargets;
let collector: CollectorProcess;
let edge: EdgeAgentProcess;

beforeAll(async () => {
  targets = await startHttpTargets('http-fuzz');
  ({ collector, edge } = targets);
}, 120_000);

afterAll(async () => {
  await targets?.close();
});

// ---- generators ------------------------------------------------------------------------------

const METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'OPTIONS',
  'PATCH',
  'TRACE',
  'CONNECT',
  'get',
  'BREW',
];
const method = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...METHODS) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 12 }) },
);

const ROUTES = COLLECTOR_ROUTES;

/** Values chosen to reach edge cases of the parameter parsers and of Postgres bind parameters. */
const hex64 = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 });
const cursor = fc
  .tuple(fc.oneof(fc.bigInt({ min: -(10n ** 22n), max: 10n ** 22n }), fc.integer()), hex64)
  .map(([t, id]) => Buffer.from(`${t}_${id}`).toString('base64url'));
const date = fc
  .tuple(
    fc.integer({ min: 0, max: 9999 }),
    fc.integer({ min: 0, max: 14 }),
    fc.integer({ min: 0, max: 33 }),
    fc.integer({ min: 0, max: 25 }),
    fc.integer({ min: 0, max: 61 }),
    fc.constantFrom('Z', '+00:00', '-99:00', '+23:59', ''),
  )
  .map(([y, mo, d, h, mi, z]) => {
    const p = (n: number, w = 2) => String(n).padStart(w, '0');
    return `${p(y, 4)}-${p(mo)}-${p(d)}T${p(h)}:${p(mi)}:00${z}`;
  });
const special = fc.constantFrom(
  'constructor',
  '__proto__',
  'toString',
  'hasOwnProperty',
  '99999999999999999999',
  '-1',
  '0',
  '1e400',
  '-0',
  'NaN',
  'Infinity',
  '0x10',
  '',
  '..',
  '/',
  'POINT(7 46)',
  'POINT(1e999 0)',
  '1,2,3,4',
  '-180,-90,180,90',
  '1,,3,4',
  '..%2F..%2Fetc%2Fpasswd',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '2026-02-30',
  '../2026-01-01',
  '2026-01-01/..',
  'km',
  'mi',
);
const value = fc.oneof(
  special,
  cursor,
  date,
  fc.double().map(String),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
);
const PARAMS = [
  'bbox',
  'datetime',
  'limit',
  'cursor',
  'coords',
  'within',
  'within-units',
  'parameter-name',
  'before',
  'window',
  'f',
  'station',
  'variable',
  'since',
  'topic',
];
const key = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...PARAMS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
);
/** Most queries well encoded (they reach the parsers); one in ten raw, with whatever bytes that gives. */
const query = fc
  .tuple(fc.array(fc.tuple(key, value), { maxLength: 5 }), fc.integer({ min: 0, max: 9 }))
  .map(([pairs, dice]) =>
    dice === 0 ? pairs.map(([k, v]) => `${k}=${v}`).join('&') : new URLSearchParams(pairs).toString(),
  );

const SEGMENTS = [
  '[',
  ']',
  '%',
  '%zz',
  '%00',
  '%2e%2e',
  '..',
  '.',
  '',
  'x:99999',
  '[::1]',
  '@',
  '~',
  ';',
  '\\',
];
const segment = fc.oneof(
  fc.constantFrom(...SEGMENTS),
  fc.constantFrom(...ROUTES.flatMap((r) => r.split('/')).filter(Boolean)),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: 'binary-ascii', maxLength: 12 }),
);
const target = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.tuple(fc.constantFrom(...ROUTES), query).map(([r, q]) => (q ? `${r}?${q}` : r)),
  },
  { weight: 3, arbitrary: fc.array(segment, { minLength: 1, maxLength: 6 }).map((s) => `/${s.join('/')}`) },
  { weight: 1, arbitrary: fc.constantFrom('//[', '//%', '//x:99999/', '*', 'http://[/', 'http://x/healthz') },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom('/', '/collections/minutely/items?parameter-name='),
        fc.integer({ min: 1, max: 40_000 }),
      )
      .map(([p, n]) => `${p}${'a'.repeat(n)}`),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
);

const HEADERS = [
  'Host',
  'Content-Length',
  'Transfer-Encoding',
  'Expect',
  'Connection',
  'Authorization',
  'Upgrade',
  'If-None-Match',
  'Accept',
  'Cookie',
];
const header = fc.tuple(
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...HEADERS) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 12 }) },
  ),
  fc.oneof(
    fc.constantFrom(
      'chunked',
      '100-continue',
      'close',
      'Upgrade',
      'websocket',
      'Bearer x',
      '*',
      '5',
      '-1',
      '99999999',
    ),
    fc.string({ unit: 'binary-ascii', maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
  ),
);

const asBytes = (r: {
  method: string;
  target: string;
  version: string;
  host: boolean;
  headers: [string, string][];
  body: string | undefined;
}) =>
  Buffer.from(
    `${r.method} ${r.target}${r.version ? ` ${r.version}` : ''}\r\n` +
      (r.host ? 'Host: x\r\n' : '') +
      r.headers.map(([n, v]) => `${n}: ${v}\r\n`).join('') +
      `\r\n${r.body ?? ''}`,
    'utf8',
  );

/** Anything goes: odd methods, versions, targets, header names and values, a stray body. */
const hostile = fc
  .record({
    method,
    target,
    version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9.9', ''),
    host: fc.boolean(),
    headers: fc.array(header, { maxLength: 6 }),
    body: fc.option(fc.string({ maxLength: 64 }), { nil: undefined }),
  })
  .map(asBytes);

/** Percent-encodes the UTF-8 bytes of `s` outside the unreserved set (lone surrogates included). */
const pctEncode = (s: string) =>
  [...Buffer.from(s, 'utf8')]
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).padStart(2, '0').toUpperCase()}`;
    })
    .join('');
const escapedPath = fc
  .array(segment, { minLength: 1, maxLength: 5 })
  .map((parts) => `/${parts.map(pctEncode).join('/')}`);
const validHeader = fc.oneof(
  fc.constantFrom<[string, string]>(
    ['Authorization', `Bearer ${ADMIN_TOKEN}`],
    ['Authorization', 'Bearer wrong'],
    ['If-None-Match', '*'],
    ['Accept', 'application/geo+json'],
    ['Connection', 'keep-alive'],
    ['Upgrade', 'websocket'],
    ['Content-Type', 'application/json'],
    ['Accept', 'text/html'],
    ['Origin', 'http://evil.example'],
    ['Cookie', 'fb_console=forged'],
  ),
  fc.tuple(
    fc.constantFrom('If-None-Match', 'Accept', 'Cookie', 'X-Forwarded-For', 'User-Agent', 'Host'),
    fc.string({ unit: 'grapheme-ascii', maxLength: 40 }).map((v) => v.trim()),
  ),
);
/**
 * Valid HTTP that gets past the parser to the routes: GET, HEAD or POST on a route (or a path made of
 * odd but escaped segments) with a generated query, and plausible headers.
 */
const wellFormed = fc
  .record({
    method: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST'),
    target: fc.oneof(
      {
        weight: 4,
        arbitrary: fc.tuple(fc.constantFrom(...ROUTES), query).map(([r, q]) => (q ? `${r}?${q}` : r)),
      },
      { weight: 1, arbitrary: fc.tuple(escapedPath, query).map(([r, q]) => (q ? `${r}?${q}` : r)) },
    ),
    version: fc.constant('HTTP/1.1'),
    host: fc.constant(true),
    headers: fc.array(validHeader, { maxLength: 4 }),
    body: fc.constant(undefined),
  })
  .map(asBytes);

/** One request as bytes: most of them valid (they reach the routes), the rest hostile. */
const request = fc.oneof({ weight: 3, arbitrary: wellFormed }, { weight: 2, arbitrary: hostile });

// ---- property ----------------------------------------------------------------------------------

/** Why an answer breaks the property, or undefined when it keeps it. */
function problem(answer: RawAnswer): string | undefined {
  if (answer.text === '') return 'no answer at all';
  if (!answer.wellFormed)
    return `not a well-formed HTTP/1.1 response: ${JSON.stringify(answer.text.slice(0, 200))}`;
  const finals = answer.statuses.filter((s) => s >= 200);
  if (finals.length === 0) return `no final status: ${answer.statuses}`;
  const bad = answer.statuses.find((s) => s >= 500 || s < 100);
  return bad === undefined ? undefined : `status ${bad}: ${JSON.stringify(answer.text.slice(0, 300))}`;
}

async function fuzz(name: string, port: () => number, alive: () => Promise<boolean>) {
  let cases = 0;
  let checked = 0;
  const byStatus = new Map<number, number>();
  const started = Date.now();
  try {
    await fc.assert(
      fc.asyncProperty(request, async (bytes) => {
        cases++;
        const answer = await rawRequest(HOST, port(), bytes);
        const final = answer.statuses.find((s) => s >= 200) ?? 0;
        byStatus.set(final, (byStatus.get(final) ?? 0) + 1);
        const why = problem(answer);
        if (why)
          throw new Error(`${why}\nrequest: ${JSON.stringify(bytes.toString('latin1').slice(0, 300))}`);
        // The process answered this one; every 50 cases also ask it whether it is still whole.
        if (cases % 50 === 0) {
          checked++;
          if (!(await alive())) throw new Error('no longer answers /healthz');
        }
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
  } finally {
    console.log(
      `http fuzz ${name}: ${cases} cases (seed ${SEED}, ${checked} health checks) in ${Date.now() - started} ms;`,
      `answers by status: ${JSON.stringify(Object.fromEntries([...byStatus].sort(([a], [b]) => a - b)))}`,
    );
  }
  expect(await alive()).toBe(true);
}

describe('HTTP fuzzing over a real socket', () => {
  it('the collector answers every generated request with a 2xx-4xx and lives on', async () => {
    await fuzz(
      'collector',
      () => collector.httpPort,
      async () => (await collector.health())?.status === 200,
    );
    expect(collector.crashes).toEqual([]);
  });

  it('the edge agent answers every generated request with a 2xx-4xx and lives on', async () => {
    await fuzz(
      'edge',
      () => edge.httpPort,
      async () => (await edge.status())?.ok === true,
    );
    expect(edge.crashes).toEqual([]);
  });
});
