import { readFileSync } from 'node:fs';
import {
  AUTO_REGISTER_DEFAULTS,
  AutoRegisterConfig,
  BATCH_ENCODINGS,
  batchLimits,
  batchV2Limits,
  interpolateEnv,
  isDuration,
  isSubjectToken,
  isTopicFilter,
  retypeReferences,
  SensorConfig,
} from '@fieldbeam/protocol';
import { CST, Lexer, parseDocument } from 'yaml';
import { z } from 'zod';
import { EDGE_KEY_RENAMES, renameKeys } from './config-renames.js';
import { EdgeConfigError } from './errors.js';
import { redactSecrets } from './redact.js';

const Port = z.number().int().min(0).max(65535);

const ACCEPTED_TIME_DEFAULTS = { max_age: 'P7D', max_future: 'PT10M' } as const;
const Duration = z.string().refine(isDuration, 'expected an ISO-8601 duration such as P7D or PT10M');
/** A span of sensor times around the edge's clock, e.g. `{ max_age: P7D, max_future: PT10M }`. */
const AcceptedTime = z
  .object({
    max_age: Duration.default(ACCEPTED_TIME_DEFAULTS.max_age),
    max_future: Duration.default(ACCEPTED_TIME_DEFAULTS.max_future),
  })
  .strict();

const MqttUser = z
  .object({
    username: z.string().min(1),
    password: z.string().min(8, 'use at least 8 characters'),
    /** Topic filters (MQTT wildcards) this user may publish to; default: everything. */
    publish: z.array(z.string().min(1)).default(['#']),
    /** Topic filters this user may subscribe to; default: nothing. */
    subscribe: z.array(z.string().min(1)).default([]),
  })
  .strict();
export type MqttUser = z.infer<typeof MqttUser>;

/** Bounds of the embedded broker against clients that never log in or fill its memory. */
const MQTT_DEFAULTS = {
  max_connect_bytes: 16 * 1024,
  max_pending_connections: 64,
  connect_timeout_ms: 10_000,
  max_retained: 1000,
  max_retained_bytes: 8 * 1024 * 1024,
  max_delivery_clients: 1000,
  max_retained_topics: 10_000,
} as const;

/** Bounds of the HTTP intake (`http_intake`). */
const HTTP_INTAKE_DEFAULTS = {
  max_body_bytes: 256 * 1024,
  max_concurrent: 16,
  body_timeout_ms: 10_000,
} as const;

const IntakeToken = z.string().min(16, 'use a token of at least 16 characters (e.g. openssl rand -hex 24)');
const ScopedIntakeToken = z
  .object({
    token: IntakeToken,
    topics: z
      .array(
        z
          .string()
          .refine(isTopicFilter, 'expected an MQTT topic filter (+ and # only as whole levels, # last)'),
      )
      .min(1, 'at least one topic filter (the plain string form allows every topic)'),
  })
  .strict();

// The sensor schema is shared with the collector's central configuration (`fieldbeam-cloud sensors`).
export { AutoRegisterConfig, SensorConfig } from '@fieldbeam/protocol';

export const EdgeConfigSchema = z
  .object({
    /** This agent's id: one NATS subject token. */
    edge: z.string().refine(isSubjectToken, 'edge id must be 1-64 of A-Z a-z 0-9 _ -'),
    /** Where the buffer file lives. */
    data_dir: z.string().default('/var/lib/fieldbeam'),
    nats: z
      .object({
        /**
         * The NATS servers (the nodes of a cluster: the client picks one and fails over). An entry may
         * itself be a comma-separated list (`${NATS_SERVERS}`), as the collector's NATS_URL is.
         */
        servers: z
          .array(z.string().min(1))
          .min(1)
          .transform((list) =>
            list
              .flatMap((s) => s.split(','))
              .map((s) => s.trim())
              .filter((s) => s.length > 0),
          )
          .refine((list) => list.length > 0, 'expected at least one server URL')
          .default(['nats://127.0.0.1:4222']),
        user: z.string().optional(),
        pass: z.string().optional(),
        /** This edge's NATS nkey seed (`SU...`), as issued by `fieldbeam-cloud edge add`; use `${ENV}`. */
        nkey_seed: z
          .string()
          .regex(/^SU[A-Z2-7]{56}$/, 'expected an nkey user seed (SU...)')
          .optional(),
        /** Or a file holding it (mode 0600). */
        nkey_seed_file: z.string().optional(),
        ack_timeout_ms: z.number().int().positive().default(5000),
        /**
         * How batches are written: `v2` (columns, zstd) or `v1` (JSON), for a collector older than v2
         * batches. The collector reads both.
         */
        encoding: z.enum(BATCH_ENCODINGS).default('v2'),
      })
      .strict()
      .default({ servers: ['nats://127.0.0.1:4222'], ack_timeout_ms: 5000, encoding: 'v2' }),
    mqtt: z
      .object({
        /** `embedded`: sensors connect to the agent's own broker; `external`: the agent subscribes to another broker. */
        mode: z.enum(['embedded', 'external']).default('embedded'),
        /** Default: all interfaces when users are configured, loopback only when not (as mosquitto 2). */
        host: z.string().optional(),
        port: Port.default(1883),
        /** Embedded broker accounts; with none, anyone who can reach the port may publish. */
        users: z.array(MqttUser).default([]),
        /** For `external` mode. */
        url: z.string().optional(),
        max_packet_bytes: z
          .number()
          .int()
          .positive()
          .default(256 * 1024),
        /** A message that decodes to more readings than this is rejected whole (a runaway payload). */
        max_readings_per_message: z.number().int().min(1).max(10_000).default(500),
        /**
         * Sensor times accepted, as ISO-8601 durations around the edge's clock; a reading timed outside
         * is stamped with its receipt time instead and flagged `time_out_of_range`.
         */
        accepted_time: AcceptedTime.default(ACCEPTED_TIME_DEFAULTS),
        /** Embedded broker: largest packet (CONNECT included) a client may send before its login is accepted. */
        max_connect_bytes: z
          .number()
          .int()
          .min(1024)
          .max(1024 * 1024)
          .default(MQTT_DEFAULTS.max_connect_bytes),
        /** Embedded broker: connections not yet logged in at once; more are closed at once. */
        max_pending_connections: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(MQTT_DEFAULTS.max_pending_connections),
        /** Embedded broker: a connection not logged in after this long is closed. */
        connect_timeout_ms: z.number().int().min(100).max(300_000).default(MQTT_DEFAULTS.connect_timeout_ms),
        /** Embedded broker: retained messages kept (topics), and their bytes in total. */
        max_retained: z.number().int().min(0).max(100_000).default(MQTT_DEFAULTS.max_retained),
        max_retained_bytes: z
          .number()
          .int()
          .min(0)
          .max(256 * 1024 * 1024)
          .default(MQTT_DEFAULTS.max_retained_bytes),
        /** Client ids whose recent QoS 1/2 deliveries are remembered to recognise re-sends (least recent forgotten). */
        max_delivery_clients: z
          .number()
          .int()
          .min(10)
          .max(100_000)
          .default(MQTT_DEFAULTS.max_delivery_clients),
        /**
         * External broker: topics whose last stored retained payload is remembered (a digest each, in the
         * buffer file), so the broker's replay of it on every subscribe is not stored again.
         */
        max_retained_topics: z
          .number()
          .int()
          .min(10)
          .max(1_000_000)
          .default(MQTT_DEFAULTS.max_retained_topics),
      })
      .strict()
      .default({
        mode: 'embedded',
        port: 1883,
        users: [],
        max_packet_bytes: 256 * 1024,
        max_readings_per_message: 500,
        accepted_time: ACCEPTED_TIME_DEFAULTS,
        ...MQTT_DEFAULTS,
      }),
    buffer: z
      .object({
        capacity_bytes: z
          .number()
          .int()
          .positive()
          .default(512 * 1024 * 1024),
        policy: z.enum(['block', 'drop_oldest']).default('block'),
        commit_window_ms: z.number().min(0).max(1000).default(2),
        synchronous: z.enum(['FULL', 'NORMAL']).default('FULL'),
        keep_rejects: z.number().int().nonnegative().default(1000),
        /** Share of capacity_bytes set aside for kept rejects (readings get the rest); oldest go first beyond it. */
        reject_share: z.number().min(0).max(0.5).default(0.05),
        /** Payload bytes kept per reject (its full length is recorded beside it). */
        reject_payload_bytes: z.number().int().min(0).max(65_536).default(4096),
      })
      .strict()
      .default({
        capacity_bytes: 512 * 1024 * 1024,
        policy: 'block',
        commit_window_ms: 2,
        synchronous: 'FULL',
        keep_rejects: 1000,
        reject_share: 0.05,
        reject_payload_bytes: 4096,
      }),
    forward: z
      .object({
        max_in_flight: z.number().int().min(1).max(1024).default(8),
        max_batch_observations: z.number().int().min(1).max(500).default(500),
        /**
         * Bytes of observations per batch message; the protocol's limit (256 KiB) less room for the
         * envelope is the most. Lower it for a nats-server with a smaller `max_payload`.
         */
        max_batch_bytes: z
          .number()
          .int()
          .min(4096)
          .max(batchLimits.maxBytes - 1024)
          .default(batchLimits.maxBytes - 1024),
        /**
         * Observations per batch with `nats.encoding: v2` (whose messages are bounded by the protocol's
         * v2 limits, not by `max_batch_bytes`); `max_batch_observations` bounds v1 batches.
         */
        v2_batch_observations: z.number().int().min(1).max(batchV2Limits.maxObservations).default(2000),
        /**
         * The buffer file and the forwarder (with a NATS connection of their own) run on a thread of
         * their own, so that intake and forwarding each have a core; false keeps one thread.
         */
        thread: z.boolean().default(true),
      })
      .strict()
      .default({
        max_in_flight: 8,
        max_batch_observations: 500,
        max_batch_bytes: batchLimits.maxBytes - 1024,
        v2_batch_observations: 2000,
        thread: true,
      }),
    iss: z
      .object({
        /** Take the International Space Station's live telemetry (Lightstreamer, adapter set ISSLIVE). */
        enabled: z.boolean().default(false),
        server_url: z.string().url().default('https://push.lightstreamer.com'),
        adapter_set: z.string().min(1).default('ISSLIVE'),
        /** Item ids; empty means the curated default set (70 items across the station's systems). */
        items: z.array(z.string().regex(/^[A-Za-z0-9_]+$/, 'item ids are letters, digits and _')).default([]),
      })
      .strict()
      .default({
        enabled: false,
        server_url: 'https://push.lightstreamer.com',
        adapter_set: 'ISSLIVE',
        items: [],
      }),
    http: z
      .object({ host: z.string().default('127.0.0.1'), port: Port.default(9464) })
      .strict()
      .default({ host: '127.0.0.1', port: 9464 }),
    /**
     * `POST /ingest/<topic>` on the `http` listener: readings over HTTP, each client with its own bearer
     * token (`${ENV}` keeps it out of the file). Off by default.
     */
    http_intake: z
      .object({
        enabled: z.boolean().default(false),
        /**
         * Per client: its token (any topic), or `{ token, topics }` limiting it to MQTT topic filters
         * (`+`, `#`); a topic outside them is a 403 (client-tokens.ts).
         */
        tokens: z.record(z.string(), z.union([IntakeToken, ScopedIntakeToken])).default({}),
        max_body_bytes: z
          .number()
          .int()
          .min(256)
          .max(16 * 1024 * 1024)
          .default(HTTP_INTAKE_DEFAULTS.max_body_bytes),
        /** Requests handled at once; more are answered 429. */
        max_concurrent: z.number().int().min(1).max(1024).default(HTTP_INTAKE_DEFAULTS.max_concurrent),
        /** A body not received in full this long after its headers is answered 408. */
        body_timeout_ms: z.number().int().min(100).max(60_000).default(HTTP_INTAKE_DEFAULTS.body_timeout_ms),
      })
      .strict()
      .superRefine((v, ctx) => {
        if (v.enabled && Object.keys(v.tokens).length === 0)
          ctx.addIssue({
            code: 'custom',
            path: ['tokens'],
            message: 'http_intake is enabled but has no client token: add tokens: { <client>: ${TOKEN_VAR} }',
          });
        const seen = new Map<string, string>();
        for (const [client, entry] of Object.entries(v.tokens)) {
          const token = typeof entry === 'string' ? entry : entry.token;
          // Client names label metrics and reject entries.
          if (!/^[A-Za-z0-9_.-]{1,64}$/.test(client))
            ctx.addIssue({
              code: 'custom',
              path: ['tokens', client],
              message: 'client names are 1-64 of A-Z a-z 0-9 _ . -',
            });
          const other = seen.get(token);
          if (other !== undefined)
            ctx.addIssue({
              code: 'custom',
              path: ['tokens', client],
              message: `the same token as client ${other}: give each client its own`,
            });
          seen.set(token, client);
        }
      })
      .default({ enabled: false, tokens: {}, ...HTTP_INTAKE_DEFAULTS }),
    /**
     * Give every MQTT message, HTTP intake request and ISS update a W3C trace-id (an HTTP request's own
     * `traceparent` when valid), carried by its readings to the collector. Off only for a collector
     * older than trace ids, which refuses them.
     */
    trace_ids: z.boolean().default(true),
    status_interval_ms: z.number().int().positive().default(10_000),
    /** How often the central sensor config (KV fb_sensors) is read; also at every (re)connect. */
    central_poll_ms: z.number().int().min(1000).max(600_000).default(5000),
    clock: z
      .object({
        /** `auto` (systemd-timesyncd / timedatectl), `none` (trust it), or `file:<path>` (synced while it exists). */
        sync_check: z
          .string()
          .regex(/^(auto|none|file:.+)$/, 'use auto, none or file:<path>')
          .default('auto'),
        check_interval_ms: z.number().int().positive().default(10_000),
      })
      .strict()
      .default({ sync_check: 'auto', check_interval_ms: 10_000 }),
    sensors: z.array(SensorConfig).default([]),
    auto_register: AutoRegisterConfig.default({
      ...AUTO_REGISTER_DEFAULTS,
      topics: [...AUTO_REGISTER_DEFAULTS.topics],
    }),
  })
  .strict();

export type EdgeConfig = Readonly<z.infer<typeof EdgeConfigSchema>>;

/**
 * Deeper than any valid config (sensors[].decoder.fields.<path>.variable is 6 levels): a document
 * nested further is refused before anything walks it recursively.
 */
const MAX_DEPTH = 32;

/**
 * `sensors[3].decoder.type`; a key that is not a plain name is quoted (`fields["PM2.5"]`), so every
 * path is unambiguous and none is empty (`(root)` for the document itself).
 */
function formatPath(path: readonly PropertyKey[]): string {
  const out = path.reduce<string>((s, k) => {
    if (typeof k === 'number') return `${s}[${k}]`;
    const key = String(k);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return `${s}[${JSON.stringify(key)}]`;
    return s ? `${s}.${key}` : key;
  }, '');
  return out || '(root)';
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** zod's issues as `<path>: <message>`; an unknown key is named in its own path. */
function describeIssue(issue: z.core.$ZodIssue): string[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${formatPath([...issue.path, k])}: unknown key`);
  }
  return [`${formatPath(issue.path)}: ${issue.message}`];
}

export interface ConfigLoadOptions {
  /**
   * Told once per load about each key written in an old spelling (`edge.yaml: sensors[0].decoder.tempUnit
   * is deprecated; write temperature_unit`). Default: a Node `DeprecationWarning` on stderr.
   */
  onWarning?: (message: string) => void;
  /** The file, for warnings (default `config`). */
  name?: string;
}

const emitDeprecation = (message: string) =>
  process.emitWarning(message, { type: 'DeprecationWarning', code: 'FIELDBEAM_CONFIG_KEY' });

/**
 * Validates a parsed config document: old key spellings renamed (see `EDGE_KEY_RENAMES`, each one
 * warned about), `${ENV}` interpolation, then the schema. Every problem is reported at once, each
 * with its path, in one `EdgeConfigError`; nothing else is thrown. The result is deeply frozen.
 */
export function parseEdgeConfig(
  doc: unknown,
  env: NodeJS.ProcessEnv = process.env,
  opts: ConfigLoadOptions = {},
): EdgeConfig {
  const problems: string[] = [];
  const renamed = renameKeys(doc ?? {}, EDGE_KEY_RENAMES);
  for (const c of renamed.conflicts)
    problems.push(`${formatPath(c.path)}: give only ${c.to} (the old spelling of the same key is given too)`);
  // `${NAME}` and `${NAME:-default}` (see protocol's env-interpolation); `port: ${PORT}` becomes the
  // number the schema wants, `pass: ${PASS}` stays text whatever PASS holds.
  const interpolated = interpolateEnv(renamed.doc, env, { maxDepth: MAX_DEPTH });
  for (const p of interpolated.problems) problems.push(`${formatPath(p.path)}: ${p.message}`);
  let parsed = EdgeConfigSchema.safeParse(interpolated.value);
  if (!parsed.success) {
    const retyped = retypeReferences(interpolated.value, parsed.error.issues, interpolated.typed);
    if (retyped !== undefined) parsed = EdgeConfigSchema.safeParse(retyped);
  }
  if (!parsed.success) problems.push(...parsed.error.issues.flatMap(describeIssue));
  if (problems.length > 0 || !parsed.success)
    throw new EdgeConfigError(
      problems,
      opts.name && opts.name !== 'config' ? `invalid edge config ${opts.name}` : undefined,
    );
  // Only for a config that loads: a refused one's errors come first, and would repeat the warnings.
  const warn = opts.onWarning ?? emitDeprecation;
  for (const r of renamed.renamed)
    warn(`${opts.name ?? 'config'}: ${formatPath(r.path)} is deprecated; write ${r.to}`);
  return deepFreeze(parsed.data);
}

/** A config file is a few KiB; far larger is a mistake (a log file, a binary). */
const MAX_CONFIG_BYTES = 1024 * 1024;
/** Bounds checked on the text before YAML composes it; its composer recurses once per nesting level. */
const MAX_INDENT = 256;
const MAX_FLOW_DEPTH = 64;
const MAX_LINE_INDICATORS = 64;

/**
 * Why a config text is refused before YAML parsing, if it is. The yaml composer recurses per level
 * of nesting and overflows the stack near 1,000 levels, after which this Node has been seen to
 * abort in a later parse. So the nesting is measured first with yaml's lexer, which does not
 * recurse and knows a `[` inside a string from one that opens a list: indentation, flow brackets
 * (`[[[...`), and block indicators on one line (`- - - x`). A real config nests about 6 levels.
 */
function textProblem(text: string): string | undefined {
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) return `larger than ${MAX_CONFIG_BYTES} bytes`;
  let line = 1;
  let flow = 0;
  let indicators = 0;
  let lineStart = true;
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token);
    if (type === 'newline') {
      line++;
      indicators = 0;
      lineStart = true;
      continue;
    }
    if (type === 'space' && lineStart && token.length > MAX_INDENT)
      return `line ${line}: indented more than ${MAX_INDENT} columns`;
    if (type === 'flow-seq-start' || type === 'flow-map-start') {
      if (++flow > MAX_FLOW_DEPTH) return `line ${line}: brackets nested more than ${MAX_FLOW_DEPTH} deep`;
    } else if (type === 'flow-seq-end' || type === 'flow-map-end') {
      flow = Math.max(0, flow - 1);
    } else if (type === 'seq-item-ind' || type === 'explicit-key-ind' || type === 'map-value-ind') {
      if (++indicators > MAX_LINE_INDICATORS)
        return `line ${line}: more than ${MAX_LINE_INDICATORS} nested collections on one line`;
    }
    lineStart = false;
  }
  return undefined;
}

/** Parses config text (YAML, of which JSON is a subset) and validates it; `name` is for messages. */
export function parseEdgeConfigText(
  text: string,
  env: NodeJS.ProcessEnv = process.env,
  name = 'config',
  opts: Omit<ConfigLoadOptions, 'name'> = {},
): EdgeConfig {
  const refused = textProblem(text);
  if (refused !== undefined) throw new EdgeConfigError([`(root): ${refused}`], `${name} refused`);
  let doc: unknown;
  try {
    // Warnings (an unknown `!tag`, ...) are problems too: nothing in a config needs them, and yaml
    // would otherwise print them on stderr and carry on with a guess.
    const parsed = parseDocument(text, { logLevel: 'silent' });
    const issues = [...parsed.errors, ...parsed.warnings];
    if (issues.length > 0)
      throw new EdgeConfigError(
        issues.map((e) => `(root): ${e.message}`),
        `${name} is not valid YAML`,
      );
    doc = parsed.toJS();
  } catch (err) {
    if (err instanceof EdgeConfigError) throw err;
    // toJS: an alias expanding past yaml's limit (a "billion laughs" document).
    throw new EdgeConfigError([`(root): ${(err as Error).message}`], `${name} is not valid YAML`, {
      cause: err,
    });
  }
  return parseEdgeConfig(doc, env, { ...opts, name });
}

export function loadEdgeConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  opts: Omit<ConfigLoadOptions, 'name'> = {},
): EdgeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new EdgeConfigError([`(root): ${(err as Error).message}`], `cannot read config ${file}`, {
      cause: err,
    });
  }
  return parseEdgeConfigText(text, env, file, opts);
}

/**
 * The config as JSON for people to read (`fieldbeam-edge check`): secrets, URL passwords included,
 * replaced by `(redacted)`, so the output can go into a ticket or a log.
 */
export function configForDisplay(config: EdgeConfig): string {
  return JSON.stringify(redactSecrets(config), null, 2);
}
