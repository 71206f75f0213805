/**
 * Property tests of the config loader: whatever document or text it is given, it returns a deeply
 * frozen config or throws one `EdgeConfigError` that lists every problem with its path, never
 * anything else; valid configs keep every value given and survive a YAML round trip unchanged.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseEdgeConfig, parseEdgeConfigText } from './config.js';
import { DECODER_FAMILIES } from './decode/registry.js';
import { EdgeConfigError } from './errors.js';

// ------------------------------------------------------------------ valid configs

/** Free text without `$`, so no `${...}` reference appears by accident. */
const text = (min = 0, max = 12) =>
  fc.string({ minLength: min, maxLength: max }).filter((s) => !s.includes('$'));
const word = fc.stringMatching(/^[a-z0-9]{1,6}$/);
const name = fc.stringMatching(/^[a-z_][a-z0-9_]{0,5}$/);
const zone = fc.constantFrom('UTC', 'Europe/Berlin', 'America/New_York');
const noNegZero = (n: number) => n + 0;

const topicPattern = fc
  .tuple(
    fc.array(
      fc.oneof(
        word,
        fc.constant('+'),
        name.map((n) => `+${n}`),
      ),
      { minLength: 1, maxLength: 4 },
    ),
    fc.option(
      fc.oneof(
        fc.constant('#'),
        name.map((n) => `#${n}`),
      ),
      { nil: undefined },
    ),
  )
  .map(([levels, rest]) => [...levels, ...(rest === undefined ? [] : [rest])].join('/'));

const topicFilter = fc
  .tuple(fc.array(fc.oneof(word, fc.constant('+')), { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([levels, hash]) => [...levels, ...(hash ? ['#'] : [])].join('/'));

const decoder = fc.oneof(
  fc.record({ type: fc.constant('number'), variable: text(1), unit: text() }),
  fc.record({ type: fc.constant('json'), time: text(1), time_zone: zone }, { requiredKeys: ['type'] }),
  fc.record({ type: fc.constant('senml') }),
  fc.record(
    { type: fc.constant('zigbee2mqtt'), base_topic: text(1), time_zone: zone },
    { requiredKeys: ['type'] },
  ),
  fc.record(
    { type: fc.constant('tasmota'), time_zone: zone, temperature_unit: fc.constantFrom('C', 'F') },
    { requiredKeys: ['type'] },
  ),
  fc.record(
    { type: fc.constant('shelly'), temperature_unit: fc.constantFrom('C', 'F') },
    { requiredKeys: ['type'] },
  ),
  fc.record({ type: fc.constant('esphome'), learn_from_discovery: fc.boolean() }, { requiredKeys: ['type'] }),
);

const sensor = fc
  .record(
    {
      topic: topicPattern,
      decoder,
      station: text(1),
      sensor: text(1),
      lat: fc.double({ min: -90, max: 90, noNaN: true }).map(noNegZero),
      lon: fc.double({ min: -180, max: 180, noNaN: true }).map(noNegZero),
      alt: fc.double({ min: -1e4, max: 1e5, noNaN: true }).map(noNegZero),
    },
    { requiredKeys: ['topic', 'decoder'] },
  )
  // Plain numbers and JSON do not name their device: such a sensor needs a station.
  .map((s) => (s.decoder.type === 'number' || s.decoder.type === 'json' ? { station: 'st', ...s } : s));

const user = fc.record(
  {
    username: text(1),
    password: text(8, 20),
    publish: fc.array(topicFilter, { maxLength: 2 }),
    subscribe: fc.array(topicFilter, { maxLength: 2 }),
  },
  { requiredKeys: ['username', 'password'] },
);

const autoRegister = fc.record(
  {
    enabled: fc.boolean(),
    topics: fc.array(topicFilter, { minLength: 1, maxLength: 3 }),
    max_sensors: fc.integer({ min: 1, max: 10_000 }),
    decoder: fc.constantFrom('auto', ...DECODER_FAMILIES),
    time_zone: zone,
  },
  { requiredKeys: [] },
);

const port = fc.integer({ min: 0, max: 65_535 });
const positive = fc.integer({ min: 1, max: 2 ** 40 });

const sections = {
  data_dir: text(1, 30),
  nats: fc.record(
    {
      // Server URLs as given: an entry with commas is a list of them (split, so not kept as one value).
      servers: fc.array(fc.stringMatching(/^nats:\/\/[a-z][a-z0-9.-]{0,20}:[1-9]\d{0,3}$/), {
        minLength: 1,
        maxLength: 3,
      }),
      user: text(),
      pass: text(),
      ack_timeout_ms: positive,
    },
    { requiredKeys: [] },
  ),
  mqtt: fc.record(
    {
      mode: fc.constantFrom('embedded', 'external'),
      host: text(1),
      port,
      users: fc.array(user, { maxLength: 3 }),
      url: text(),
      max_packet_bytes: positive,
    },
    { requiredKeys: [] },
  ),
  buffer: fc.record(
    {
      capacity_bytes: positive,
      policy: fc.constantFrom('block', 'drop_oldest'),
      commit_window_ms: fc.double({ min: 0, max: 1000, noNaN: true }).map(noNegZero),
      synchronous: fc.constantFrom('FULL', 'NORMAL'),
      keep_rejects: fc.nat(),
    },
    { requiredKeys: [] },
  ),
  forward: fc.record(
    {
      max_in_flight: fc.integer({ min: 1, max: 1024 }),
      max_batch_observations: fc.integer({ min: 1, max: 500 }),
    },
    { requiredKeys: [] },
  ),
  iss: fc.record(
    {
      enabled: fc.boolean(),
      server_url: fc.constantFrom('https://push.lightstreamer.com', 'http://127.0.0.1:8080/ls'),
      adapter_set: text(1),
      items: fc.array(fc.stringMatching(/^[A-Za-z0-9_]{1,12}$/), { maxLength: 3 }),
    },
    { requiredKeys: [] },
  ),
  http: fc.record({ host: text(1), port }, { requiredKeys: [] }),
  status_interval_ms: positive,
  clock: fc.record(
    {
      sync_check: fc.oneof(
        fc.constantFrom('auto', 'none'),
        text(1).map((p) => `file:${p}`),
      ),
      check_interval_ms: positive,
    },
    { requiredKeys: [] },
  ),
  sensors: fc.array(sensor, { maxLength: 5 }),
  auto_register: autoRegister,
};

const validConfig: fc.Arbitrary<Record<string, unknown>> = fc.record(
  { edge: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), ...sections },
  { requiredKeys: ['edge'] },
);

// ------------------------------------------------------------------ helpers

type Path = (string | number)[];

const show = (path: Path) =>
  path.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${k}` : k), '') || '(root)';

/** Every leaf (not an object or array) with its path. */
function leaves(v: unknown, path: Path = []): Path[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => leaves(x, [...path, i]));
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => leaves(x, [...path, k]));
  return [path];
}

/** Every object (not array) node with its path. */
function objects(v: unknown, path: Path = []): Path[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => objects(x, [...path, i]));
  if (v && typeof v === 'object')
    return [path, ...Object.entries(v).flatMap(([k, x]) => objects(x, [...path, k]))];
  return [];
}

function setAt(doc: unknown, path: Path, value: unknown): void {
  let node = doc as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
  node[path[path.length - 1] as string | number] = value;
}

function getAt(doc: unknown, path: Path): unknown {
  return path.reduce<unknown>((n, k) => (n as Record<string | number, unknown>)[k], doc);
}

function isDeepFrozen(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return true;
  return Object.isFrozen(v) && Object.values(v).every(isDeepFrozen);
}

/** Runs the loader; anything thrown must be an EdgeConfigError whose every problem is `<path>: <what>`. */
function attempt(run: () => unknown): { ok: true } | { ok: false; problems: readonly string[] } {
  try {
    run();
    return { ok: true };
  } catch (err) {
    expect(err).toBeInstanceOf(EdgeConfigError);
    const problems = (err as EdgeConfigError).problems;
    expect(problems.length).toBeGreaterThan(0);
    for (const p of problems) expect(p).toMatch(/^\S.*?: \S/s);
    expect((err as Error).message).toContain(problems[0]);
    return { ok: false, problems };
  }
}

/** The path a problem names: the text before its first `: ` (paths here hold no `: `). */
const pathOf = (problem: string) => problem.slice(0, problem.indexOf(': '));

/**
 * A problem covers a path when it names the path or a parent of it. A decoder whose `type` is wrong
 * cannot have its other fields checked (which fields would they be?): its `type` problem covers them.
 */
const covers = (problem: string, path: string) => {
  const p = pathOf(problem);
  if (path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`)) return true;
  return /\.decoder\.type$/.test(p) && path.startsWith(p.slice(0, -'type'.length));
};

const typeOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
const WRONG = [42, -1.5, 'text', true, null, [], {}, [1, 'a'], { a: 1 }];

// ------------------------------------------------------------------ properties

describe('config loader properties', () => {
  it('a valid config keeps every value given, is deeply frozen, and round-trips through YAML', () => {
    fc.assert(
      fc.property(validConfig, (doc) => {
        const cfg = parseEdgeConfig(doc, {});
        expect(cfg).toMatchObject(doc);
        expect(isDeepFrozen(cfg)).toBe(true);
        expect(parseEdgeConfig(structuredClone(cfg), {})).toEqual(cfg);
        expect(parseEdgeConfigText(stringify(cfg), {}, 'roundtrip.yaml')).toEqual(cfg);
      }),
    );
  });

  it('old spellings of renamed keys give the config the new ones do, with one warning each', () => {
    const OLD: Record<string, string> = {
      time_zone: 'timeZone',
      base_topic: 'baseTopic',
      learn_from_discovery: 'learnFromDiscovery',
    };
    fc.assert(
      fc.property(validConfig, (doc) => {
        const old = structuredClone(doc);
        let expected = 0;
        for (const s of (old.sensors ?? []) as { decoder: Record<string, unknown> }[]) {
          for (const [key, value] of Object.entries(s.decoder)) {
            const was =
              key === 'temperature_unit'
                ? s.decoder.type === 'tasmota'
                  ? 'tempUnit'
                  : 'temperatureUnit'
                : OLD[key];
            if (was === undefined) continue;
            delete s.decoder[key];
            s.decoder[was] = value;
            expected++;
          }
        }
        const warnings: string[] = [];
        expect(parseEdgeConfig(old, {}, { onWarning: (w) => warnings.push(w) })).toEqual(
          parseEdgeConfig(doc, {}),
        );
        expect(warnings).toHaveLength(expected);
      }),
    );
  });

  it.each(['nats', 'mqtt', 'buffer', 'forward', 'iss', 'http', 'clock', 'auto_register'])(
    'an empty %s section means its defaults, as leaving it out does',
    (section) => {
      expect(parseEdgeConfig({ edge: 'gw', [section]: {} }, {})).toEqual(parseEdgeConfig({ edge: 'gw' }, {}));
    },
  );

  it('wrong types anywhere: one error listing each, at the path or its parent', () => {
    const mutated = validConfig.chain((doc) => {
      const paths = leaves(doc);
      return fc
        .tuple(
          fc.uniqueArray(fc.integer({ min: 0, max: paths.length - 1 }), { minLength: 1, maxLength: 3 }),
          fc.array(fc.nat(), { minLength: 3, maxLength: 3 }),
        )
        .map(([picks, seeds]) => {
          const copy = structuredClone(doc);
          const changed = picks.map((i, n) => {
            const path = paths[i] as Path;
            const original = getAt(copy, path);
            const options = WRONG.filter((w) => typeOf(w) !== typeOf(original));
            setAt(copy, path, structuredClone(options[(seeds[n] ?? 0) % options.length]));
            return show(path);
          });
          return { copy, changed };
        });
    });
    fc.assert(
      fc.property(mutated, ({ copy, changed }) => {
        const r = attempt(() => parseEdgeConfig(copy, {}));
        expect(r.ok).toBe(false);
        if (r.ok) return;
        for (const path of changed)
          expect(
            r.problems.some((p) => covers(p, path)),
            `${path} in ${r.problems.join(' | ')}`,
          ).toBe(true);
      }),
    );
  });

  it('unknown keys anywhere: each named with its full path', () => {
    const withUnknown = validConfig.chain((doc) => {
      const nodes = objects(doc).filter((p) => {
        // Records (decoder unit and sensor maps) take any key; none are generated here.
        const last = p[p.length - 1];
        return last !== 'units' && last !== 'sensors_map';
      });
      return fc
        .tuple(
          fc.integer({ min: 0, max: nodes.length - 1 }),
          fc.stringMatching(/^x_[a-z]{1,6}$/),
          fc.jsonValue(),
        )
        .map(([i, key, value]) => {
          const copy = structuredClone(doc);
          const at = nodes[i] as Path;
          (getAt(copy, at) as Record<string, unknown>)[key] = value;
          return { copy, expected: `${show([...at, key])}: unknown key` };
        });
    });
    fc.assert(
      fc.property(withUnknown, ({ copy, expected }) => {
        const r = attempt(() => parseEdgeConfig(copy, {}));
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.problems).toContain(expected);
      }),
    );
  });

  it('${ENV}: set variables are substituted (an empty one leaves the value as it was), unset ones named with their path', () => {
    const withRefs = validConfig.chain((doc) => {
      const strings = leaves(doc).filter((p) => typeof getAt(doc, p) === 'string');
      if (strings.length === 0) return fc.constant(undefined);
      return fc
        .tuple(
          fc.uniqueArray(fc.integer({ min: 0, max: strings.length - 1 }), { minLength: 1, maxLength: 3 }),
          fc.nat(),
          fc.boolean(),
        )
        .map(([picks, cut, set]) => {
          const copy = structuredClone(doc);
          const refs = picks.map((i, n) => {
            const path = strings[i] as Path;
            const s = getAt(copy, path) as string;
            const at = cut % (s.length + 1);
            const variable = `FB_TEST_${n}`;
            setAt(copy, path, `${s.slice(0, at)}\${${variable}}${s.slice(at)}`);
            return { path: show(path), variable };
          });
          return { doc, copy, refs, set };
        });
    });
    fc.assert(
      fc.property(withRefs, (c) => {
        if (c === undefined) return;
        const env = Object.fromEntries(c.refs.map((r) => [r.variable, '']));
        if (c.set) {
          expect(parseEdgeConfig(c.copy, env)).toEqual(parseEdgeConfig(c.doc, {}));
          return;
        }
        const r = attempt(() => parseEdgeConfig(c.copy, {}));
        expect(r.ok).toBe(false);
        if (r.ok) return;
        for (const ref of c.refs)
          expect(r.problems).toContain(`${ref.path}: environment variable ${ref.variable} is not set`);
      }),
    );
  });

  it('bad ${...} forms are left as text; only ${NAME} is a reference', () => {
    for (const pass of ['${', '${}', '$NAME', '${1BAD}', '${A-B}', '$${X', '${X']) {
      expect(parseEdgeConfig({ edge: 'gw', nats: { pass } }, {}).nats.pass).toBe(pass);
    }
  });

  it('any document at all: a config or an EdgeConfigError, never another throw', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.jsonValue(), validConfig), (doc) => {
        attempt(() => parseEdgeConfig(doc, {}));
      }),
    );
  });

  it('any text, and valid YAML with bytes changed: a config or an EdgeConfigError', () => {
    const mangled = fc
      .tuple(
        validConfig,
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 }), fc.string({ maxLength: 3 })), { maxLength: 4 }),
      )
      .map(([doc, edits]) => {
        let s = stringify(doc);
        for (const [at, del, ins] of edits) {
          const i = at % (s.length + 1);
          s = s.slice(0, i) + ins + s.slice(i + del);
        }
        return s;
      });
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), mangled), (s) => {
        attempt(() => parseEdgeConfigText(s, {}, 'edge.yaml'));
      }),
    );
  });

  it('documents nested deeper than any config are refused with a problem, not a stack overflow', () => {
    fc.assert(
      fc.property(fc.integer({ min: 33, max: 20_000 }), fc.boolean(), (depth, arrays) => {
        let deep: unknown = 'leaf';
        for (let i = 0; i < depth; i++) deep = arrays ? [deep] : { k: deep };
        const r = attempt(() => parseEdgeConfig({ edge: 'gw', buffer: deep }, {}));
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.problems.join('\n')).toMatch(/nested more than 32 levels deep/);
      }),
      { numRuns: 20 },
    );
  });

  it.each([
    ['flow brackets', `edge: gw\nx: ${'['.repeat(5000)}`, /brackets nested more than 64/],
    ['flow brackets over many lines', `edge: gw\nx: ${'[\n'.repeat(3000)}`, /brackets nested more than 64/],
    ['compact block sequences', `edge: gw\nx: ${'- '.repeat(3000)}x`, /nested collections on one line/],
    [
      'indentation',
      `edge: gw\nx:\n${Array.from({ length: 300 }, (_, i) => `${' '.repeat(i + 1)}k:`).join('\n')}`,
      /indented more than 256 columns/,
    ],
    ['a self-referencing alias', 'edge: gw\nx: &a [*a]', /x(\[0\])+: nested more than 32 levels deep/],
    ['a huge file', `edge: gw\n# ${'x'.repeat(2 * 1024 * 1024)}`, /larger than 1048576 bytes/],
    ['alias expansion (billion laughs)', laughs(), /alias/i],
  ])('YAML text: %s is refused with a reason', (_, yaml, reason) => {
    const r = attempt(() => parseEdgeConfigText(yaml, {}, 'edge.yaml'));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.join('\n')).toMatch(reason);
    // The parser still works afterwards (a stack overflow inside it has been seen to break later parses).
    expect(parseEdgeConfigText('edge: gw\n', {}).edge).toBe('gw');
  });

  it('brackets inside strings do not count as nesting', () => {
    const pass = '['.repeat(100);
    const cfg = parseEdgeConfigText(`edge: gw\nnats:\n  pass: "${pass}"\n  user: x${'{'.repeat(80)}\n`, {});
    expect(cfg.nats.pass).toBe(pass);
    expect(cfg.nats.user).toBe(`x${'{'.repeat(80)}`);
  });

  it('a large valid config (5,000 sensors) loads', () => {
    const sensors = Array.from({ length: 5000 }, (_, i) => ({
      topic: `site/+station/s${i}`,
      decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' },
    }));
    const cfg = parseEdgeConfigText(stringify({ edge: 'gw', sensors }), {});
    expect(cfg.sensors).toHaveLength(5000);
  });
});

function laughs(): string {
  const lines = ['edge: gw', 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < 9; i++) {
    const prev = String.fromCharCode(97 + i - 1);
    const cur = String.fromCharCode(97 + i);
    lines.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(',')}]`);
  }
  return lines.join('\n');
}
