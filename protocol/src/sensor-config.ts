/**
 * The sensor configuration of an edge, one schema wherever it is written: the edge's YAML
 * (`sensors`, `auto_register`), the collector's central KV bucket (`fb_sensors`), and
 * `fieldbeam-cloud sensors add`, which refuses what an edge would refuse.
 */
import { z } from 'zod';
import { isSubjectToken } from './subjects.js';
import { isTopicFilter, parseTopicPattern } from './topic-pattern.js';

/** The decoder families, each a payload convention of a firmware or a generic format. */
export const DECODER_FAMILIES = [
  'number',
  'json',
  'senml',
  'zigbee2mqtt',
  'tasmota',
  'shelly',
  'esphome',
] as const;
export type DecoderFamily = (typeof DECODER_FAMILIES)[number];

/** True when `timeZone` is an IANA zone this runtime knows (`Europe/Berlin`, `UTC`). */
export function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

const VariableUnit = z.object({ variable: z.string().min(1), unit: z.string() });
const TimeZone = z.string().refine(isTimeZone, 'expected an IANA time zone such as "Europe/Berlin" or "UTC"');
const TempUnit = z.enum(['C', 'F']);

/**
 * How a sensor's payloads are decoded (`sensors[].decoder`): keys in snake_case like the rest of the
 * config; the edge's decoders take them as their options.
 */
export const DecoderSpec = z.discriminatedUnion('type', [
  z.object({ type: z.literal('number'), variable: z.string().min(1), unit: z.string() }).strict(),
  z
    .object({
      type: z.literal('json'),
      fields: z.record(z.string(), VariableUnit).optional(),
      time: z.string().min(1).optional(),
      time_zone: TimeZone.optional(),
    })
    .strict(),
  z.object({ type: z.literal('senml') }).strict(),
  z
    .object({
      type: z.literal('zigbee2mqtt'),
      base_topic: z.string().min(1).optional(),
      units: z.record(z.string(), z.string()).optional(),
      time_zone: TimeZone.optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('tasmota'),
      time_zone: TimeZone.optional(),
      temperature_unit: TempUnit.optional(),
    })
    .strict(),
  z.object({ type: z.literal('shelly'), temperature_unit: TempUnit.optional() }).strict(),
  z
    .object({
      type: z.literal('esphome'),
      sensors: z
        .record(
          z.string(),
          z.object({ variable: z.string().min(1).optional(), unit: z.string().optional() }).strict(),
        )
        .optional(),
      learn_from_discovery: z.boolean().optional(),
    })
    .strict(),
]);
export type DecoderSpec = z.infer<typeof DecoderSpec>;

/** One configured sensor: the MQTT topics it covers and how their payloads become readings. */
export const SensorConfig = z
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

export const AUTO_REGISTER_DEFAULTS = {
  enabled: false,
  topics: ['#'],
  max_sensors: 100,
  decoder: 'auto',
} as const;

/**
 * Sensors made from topics no configured sensor matches (`auto_register`). `true` / `false` are
 * short for `{ enabled: ... }`.
 */
export const AutoRegisterConfig = z.preprocess(
  (v) => (typeof v === 'boolean' ? { enabled: v } : v),
  z
    .object({
      enabled: z.boolean().default(AUTO_REGISTER_DEFAULTS.enabled),
      /** Only unmatched topics under these MQTT filters are registered. */
      topics: z
        .array(
          z
            .string()
            .refine(isTopicFilter, 'expected an MQTT topic filter (+ and # only as whole levels, # last)'),
        )
        .min(1)
        .default([...AUTO_REGISTER_DEFAULTS.topics]),
      /** Bound on auto-registered sensors (one per topic); beyond it messages are counted and skipped. */
      max_sensors: z.number().int().min(1).max(10_000).default(AUTO_REGISTER_DEFAULTS.max_sensors),
      /** `auto` infers the family from topic and payload; a family name skips the inference. */
      decoder: z.enum(['auto', ...DECODER_FAMILIES]).default(AUTO_REGISTER_DEFAULTS.decoder),
      /** IANA zone for device times without a UTC offset (Tasmota's default `Time`). */
      time_zone: z
        .string()
        .refine(isTimeZone, 'expected an IANA time zone such as "Europe/Berlin" or "UTC"')
        .optional(),
    })
    .strict(),
);
export type AutoRegisterConfig = z.infer<typeof AutoRegisterConfig>;

/** Most sensors one central value may hold (an edge's status lists at most 200 too). */
export const MAX_CENTRAL_SENSORS = 500;

/**
 * A value of the central sensor bucket: the sensors for one edge (key `edge.<id>`) or for every edge
 * (key `all`), and optionally auto-registration settings. Sensors in snake_case, as in the YAML.
 */
export const CentralSensorConfig = z
  .object({
    sensors: z.array(SensorConfig).max(MAX_CENTRAL_SENSORS).default([]),
    auto_register: AutoRegisterConfig.optional(),
  })
  .strict();
export type CentralSensorConfig = z.infer<typeof CentralSensorConfig>;

/** The KV bucket of central sensor configuration and its keys. */
export const centralSensors = {
  bucket: 'fb_sensors',
  /** The JetStream stream behind the bucket. */
  stream: 'KV_fb_sensors',
  /** Fleet-wide defaults, applied by every edge under its own key. */
  allKey: 'all',
  edgeKey: (edge: string) => {
    if (!isSubjectToken(edge)) throw new Error(`edge id "${edge}" is not a valid subject token`);
    return `edge.${edge}`;
  },
  /** The NATS subject a key's values are stored under. */
  subject: (key: string) => `$KV.fb_sensors.${key}`,
} as const;
