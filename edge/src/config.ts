import { readFileSync } from 'node:fs';
import { isSubjectToken } from '@fieldbeam/protocol';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DecoderSpec } from './decode/registry.js';
import { EdgeError, EdgeErrorCode } from './errors.js';
import { parseTopicPattern } from './sources/topic-pattern.js';

const Port = z.number().int().min(0).max(65535);

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

const SensorConfig = z
  .object({
    /** MQTT topic pattern with named captures, e.g. `sensors/+station/temperature`. */
    topic: z
      .string()
      .min(1)
      .superRefine((t, ctx) => {
        try {
          parseTopicPattern(t);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      }),
    decoder: DecoderSpec,
    /** Fixed station id; otherwise the `station` capture of the topic. */
    station: z.string().min(1).optional(),
    /** Fixed sensor id; otherwise the `sensor` capture of the topic, if any. */
    sensor: z.string().min(1).optional(),
    lat: z.number().min(-90).max(90).optional(),
    lon: z.number().min(-180).max(180).optional(),
    alt: z.number().optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    // Firmware decoders name the device themselves; plain number and JSON payloads cannot.
    const namesItself = s.decoder.type !== 'number' && s.decoder.type !== 'json';
    if (!s.station && !namesItself && !/[+#]station\b/.test(s.topic)) {
      ctx.addIssue({
        code: 'custom',
        path: ['station'],
        message: 'set station, or capture it in the topic with +station',
      });
    }
  });
export type SensorConfig = z.infer<typeof SensorConfig>;

export const EdgeConfigSchema = z
  .object({
    /** This agent's id: one NATS subject token. */
    edge: z.string().refine(isSubjectToken, 'edge id must be 1-64 of A-Z a-z 0-9 _ -'),
    /** Where the buffer file lives. */
    data_dir: z.string().default('/var/lib/fieldbeam'),
    nats: z
      .object({
        servers: z.array(z.string().min(1)).min(1).default(['nats://127.0.0.1:4222']),
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
      })
      .strict()
      .default({ servers: ['nats://127.0.0.1:4222'], ack_timeout_ms: 5000 }),
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
      })
      .strict()
      .default({ mode: 'embedded', port: 1883, users: [], max_packet_bytes: 256 * 1024 }),
    buffer: z
      .object({
        capacity_bytes: z
          .number()
          .int()
          .positive()
          .default(256 * 1024 * 1024),
        policy: z.enum(['block', 'drop_oldest']).default('block'),
        commit_window_ms: z.number().min(0).max(1000).default(2),
        synchronous: z.enum(['FULL', 'NORMAL']).default('FULL'),
        keep_rejects: z.number().int().nonnegative().default(1000),
      })
      .strict()
      .default({
        capacity_bytes: 512 * 1024 * 1024,
        policy: 'block',
        commit_window_ms: 2,
        synchronous: 'FULL',
        keep_rejects: 1000,
      }),
    forward: z
      .object({
        max_in_flight: z.number().int().min(1).max(1024).default(8),
        max_batch_observations: z.number().int().min(1).max(500).default(500),
      })
      .strict()
      .default({ max_in_flight: 8, max_batch_observations: 500 }),
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
    status_interval_ms: z.number().int().positive().default(10_000),
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
  })
  .strict();

export type EdgeConfig = Readonly<z.infer<typeof EdgeConfigSchema>>;

/** Replaces `${NAME}` in every string with the environment variable; a missing one is an error with its path. */
function interpolate(value: unknown, env: NodeJS.ProcessEnv, path: string, problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined) problems.push(`${path || '(root)'}: environment variable ${name} is not set`);
      return v ?? '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, `${path}[${i}]`, problems));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, interpolate(v, env, path ? `${path}.${k}` : k, problems)]),
    );
  }
  return value;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${String(k)}` : String(k)),
    '',
  );
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Validates a parsed config document; every problem is reported at once, each with its path. */
export function parseEdgeConfig(doc: unknown, env: NodeJS.ProcessEnv = process.env): EdgeConfig {
  const problems: string[] = [];
  const interpolated = interpolate(doc ?? {}, env, '', problems);
  const parsed = EdgeConfigSchema.safeParse(interpolated);
  if (!parsed.success) {
    for (const i of parsed.error.issues) problems.push(`${formatPath(i.path) || '(root)'}: ${i.message}`);
  }
  if (problems.length > 0 || !parsed.success) {
    throw new EdgeError(
      EdgeErrorCode.CONFIG_INVALID,
      `invalid edge config:\n  ${problems.join('\n  ')}`,
      false,
    );
  }
  return deepFreeze(parsed.data);
}

export function loadEdgeConfig(file: string, env: NodeJS.ProcessEnv = process.env): EdgeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new EdgeError(
      EdgeErrorCode.CONFIG_INVALID,
      `cannot read config ${file}: ${(err as Error).message}`,
      false,
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new EdgeError(
      EdgeErrorCode.CONFIG_INVALID,
      `${file} is not valid YAML: ${(err as Error).message}`,
      false,
    );
  }
  return parseEdgeConfig(doc, env);
}
