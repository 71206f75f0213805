import {
  CentralSensorConfig,
  centralSensors,
  describeIssues,
  EdgeStatus,
  SensorConfig,
  streams,
  subjects,
} from '@fieldbeam/protocol';
import { jetstreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { CloudError, CloudErrorCode } from '../errors.js';

/** Revisions kept per key: `sensors list` shows the current one; the rest are for looking back with the nats CLI. */
const HISTORY = 10;
/** As the edge's bound on a value it reads (a list of 500 sensors is well under it). */
const MAX_VALUE_BYTES = 256 * 1024;
/** Tries of one change against concurrent writers before giving up. */
const MAX_TRIES = 5;

/**
 * Creates the central sensor bucket `fb_sensors` if it is missing (the collector at start, beside
 * its streams; the sensors commands too), and returns it. `replicas` (the collector's
 * FB_STREAM_REPLICAS) is also applied to an existing bucket, as ensureStreams does to the streams;
 * without it an existing bucket keeps its own.
 */
export async function ensureSensorBucket(nc: NatsConnection, replicas?: number): Promise<KV> {
  const kv = await new Kvm(nc).create(centralSensors.bucket, {
    history: HISTORY,
    maxValueSize: MAX_VALUE_BYTES,
    replicas: replicas ?? 1,
    // Edges read their keys with direct gets, which their permissions can limit to those keys.
    allow_direct: true,
    description: 'Fieldbeam central sensor config: key edge.<id> per edge, key all for every edge',
  });
  if (replicas !== undefined) {
    // Kvm.create leaves an existing bucket as it is: a server grown into a cluster needs the update.
    const jsm = await jetstreamManager(nc);
    const { config } = await jsm.streams.info(`KV_${centralSensors.bucket}`);
    if (config.num_replicas !== replicas)
      await jsm.streams.update(config.name, { ...config, num_replicas: replicas });
  }
  return kv;
}

/** Which key: one edge's, or the fleet-wide defaults. */
export type SensorTarget = { edge: string } | { all: true };

export function targetKey(target: SensorTarget): string {
  return 'edge' in target ? centralSensors.edgeKey(target.edge) : centralSensors.allKey;
}

export interface StoredSensors {
  value: CentralSensorConfig;
  /** The KV revision read or written; null when the key has never been written. */
  revision: number | null;
  /** Why the stored value is refused by the edges (they keep their last good one); `value` is then empty. */
  invalid?: string;
}

/** A sensor given on the command line checked as an edge checks it; the reason names the field. */
export function checkSensor(candidate: unknown): SensorConfig {
  const parsed = SensorConfig.safeParse(candidate);
  if (!parsed.success)
    throw new CloudError(
      CloudErrorCode.SENSOR_CONFIG_INVALID,
      `sensor refused (an edge would refuse it too): ${describeIssues(parsed.error.issues)}`,
      false,
    );
  return parsed.data;
}

/**
 * The central sensor configuration in the KV bucket, read and changed by the collector's host.
 * Every change is a read, an edit and a write conditional on the revision read (optimistic
 * concurrency): when another operator wrote in between, the edit is made again on their value, so
 * neither change is lost and neither operator overwrites the other.
 */
export class CentralSensorStore {
  constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection): Promise<CentralSensorStore> {
    return new CentralSensorStore(await ensureSensorBucket(nc));
  }

  async read(key: string): Promise<StoredSensors> {
    const entry = await this.kv.get(key);
    if (!entry) return { value: { sensors: [] }, revision: null };
    if (entry.operation !== 'PUT') return { value: { sensors: [] }, revision: entry.revision };
    const parsed = CentralSensorConfig.safeParse(safeJson(entry.string()));
    if (!parsed.success)
      return {
        value: { sensors: [] },
        revision: entry.revision,
        invalid: describeIssues(parsed.error.issues),
      };
    return { value: parsed.data, revision: entry.revision };
  }

  /**
   * Applies `edit` to the key's current value and writes the result if nobody wrote in between;
   * otherwise reads again and repeats. The result is checked with the edges' schema first.
   */
  async change(
    key: string,
    edit: (current: CentralSensorConfig) => CentralSensorConfig,
  ): Promise<{ before: StoredSensors; after: StoredSensors }> {
    for (let attempt = 1; ; attempt++) {
      const before = await this.read(key);
      if (before.invalid !== undefined)
        throw new CloudError(
          CloudErrorCode.SENSOR_CONFIG_INVALID,
          `${key} (revision ${before.revision}) is not a valid sensor config, and edges refuse it ` +
            `(${before.invalid}); nothing is built on it: empty it with sensors clear, then add the sensors again`,
          false,
        );
      const next = CentralSensorConfig.safeParse(edit(before.value));
      if (!next.success)
        throw new CloudError(
          CloudErrorCode.SENSOR_CONFIG_INVALID,
          `refused: ${describeIssues(next.error.issues)}`,
          false,
        );
      const bytes = JSON.stringify(next.data);
      try {
        const revision =
          before.revision === null
            ? await this.kv.create(key, bytes)
            : await this.kv.update(key, bytes, before.revision);
        return { before, after: { value: next.data, revision } };
      } catch (err) {
        if (!isWrongRevision(err)) throw err;
        if (attempt >= MAX_TRIES)
          throw new CloudError(
            CloudErrorCode.SENSOR_CONFIG_CONFLICT,
            `${key} kept changing while this change was made (${MAX_TRIES} tries); run the command again`,
            true,
            { cause: err },
          );
      }
    }
  }

  /** Empties the key whatever it holds (an invalid value too), conditional on the revision read. */
  async clear(key: string): Promise<StoredSensors> {
    for (let attempt = 1; ; attempt++) {
      const entry = await this.kv.get(key);
      const bytes = JSON.stringify({ sensors: [] });
      try {
        const revision = entry
          ? await this.kv.update(key, bytes, entry.revision)
          : await this.kv.create(key, bytes);
        return { value: { sensors: [] }, revision };
      } catch (err) {
        if (!isWrongRevision(err) || attempt >= MAX_TRIES) throw err;
      }
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The server refused a conditional write: the key's revision is no longer the one read. */
function isWrongRevision(err: unknown): boolean {
  const e = err as { message?: string; api_error?: { err_code?: number } };
  return e?.api_error?.err_code === 10071 || /wrong last sequence/i.test(e?.message ?? '');
}

/** The last heartbeat an edge sent (stream FB_STATUS keeps the last per subject), or undefined. */
export async function lastHeartbeat(nc: NatsConnection, edge: string): Promise<EdgeStatus | undefined> {
  const jsm = await jetstreamManager(nc);
  const msg = await jsm.streams
    .getMessage(streams.STATUS.name, { last_by_subj: subjects.edgeStatus(edge) })
    .catch((err: Error) => {
      // No collector has run yet (it creates the stream): no heartbeat either.
      if (/stream not found/i.test(err.message)) return null;
      throw err;
    });
  if (!msg) return undefined;
  const parsed = EdgeStatus.safeParse(safeJson(msg.string()));
  return parsed.success ? parsed.data : undefined;
}

/**
 * Central sensors for topics an edge auto-registered, as its last heartbeat lists them (origin
 * `auto`): the family it inferred and the station it found, fixed, so the readings keep their
 * station and variables once the sensor is configured. A topic not listed is an error naming those
 * that are.
 */
export function promotedSensors(
  status: EdgeStatus | undefined,
  edge: string,
  topics: readonly string[],
): SensorConfig[] {
  const auto = (status?.sensors ?? []).filter((s) => s.origin === 'auto');
  return topics.map((topic) => {
    const s = auto.find((a) => a.topic === topic);
    if (!s) {
      const known = auto.map((a) => a.topic);
      throw new CloudError(
        CloudErrorCode.SENSOR_CONFIG_INVALID,
        `${edge} reports no auto-registered sensor on ${topic} in its last heartbeat` +
          (known.length
            ? ` (it reports: ${known.join(', ')})`
            : status
              ? ' (it reports none)'
              : ' (no heartbeat from it yet)'),
        false,
      );
    }
    const family = s.decoder;
    // An auto-registered plain number is named after the topic's last level, without a unit.
    const decoder =
      family === 'number'
        ? { type: 'number', variable: `mqtt:${topic.split('/').pop() || 'value'}`, unit: '' }
        : { type: family };
    return checkSensor({ topic, decoder, ...(s.station !== undefined ? { station: s.station } : {}) });
  });
}
