import type { AutoRegisterConfig } from '../config.js';
import { createFamilyDecoders, type FamilyDecoders, inferReadings } from '../decode/infer.js';
import type { DecoderFamily } from '../decode/registry.js';
import type { DecodeInput, DecodeOutcome } from '../decode/types.js';
import type { SensorMatch } from './sensor-map.js';
import { compileTopicFilter } from './topic-pattern.js';

/** A sensor made from a topic no configured sensor matched: one topic, one decoder family. */
export interface AutoSensor {
  readonly topic: string;
  readonly family: DecoderFamily;
  /** The station of the message that registered it. */
  readonly station: string;
  /** ISO time of registration. */
  readonly since: string;
  /** The numeric variables the registering message carried (at most `MAX_LISTED_VARIABLES`). */
  readonly variables: readonly string[];
}

/** What `/healthz` and `fieldbeam-edge status` show. */
export interface AutoRegisterStatus {
  enabled: boolean;
  maxSensors: number;
  count: number;
  sensors: (AutoSensor & { messages: number; lastReadingMs: number | null })[];
}

export type AutoRegisterSkip = 'limit' | 'no_reading';

export interface AutoRegistryEvents {
  registered?(sensor: AutoSensor, count: number): void;
  /** A message on an unmatched topic under `auto_register.topics` that did not become a sensor. */
  skipped?(reason: AutoRegisterSkip, topic: string, detail: string): void;
  /** `max_sensors` was reached; fired once until a reload makes room again. */
  full?(maxSensors: number): void;
}

const MAX_LISTED_VARIABLES = 32;

interface Entry extends AutoSensor {
  messages: number;
  /** When its newest reading was received (epoch ms). */
  lastReadingMs: number | null;
}

/**
 * `auto_register`: turns messages on topics no configured sensor matches into sensors. A topic is
 * registered by the first of its messages from which `inferReadings` gets a number and a station;
 * from then on the topic is decoded by that family, like a configured sensor (its rejections are
 * recorded, its statuses ignored). Nothing is remembered about topics that were not registered, and
 * at most `max_sensors` topics are, so a flood of topics cannot grow memory: past the bound,
 * messages are counted (`skipped('limit')`) and left unmatched.
 *
 * Kept in memory only: after a restart, topics register again with their next message.
 * The caller routes configured sensors first, so they always win.
 */
export class AutoRegistry {
  private settings: AutoRegisterConfig;
  private inScope: ((topic: string) => boolean)[] = [];
  private decoders: FamilyDecoders;
  private readonly sensors = new Map<string, Entry>();
  private fullReported = false;

  constructor(
    settings: AutoRegisterConfig,
    private readonly events: AutoRegistryEvents = {},
    private readonly now: () => number = Date.now,
  ) {
    this.settings = settings;
    this.inScope = settings.topics.map(compileTopicFilter);
    this.decoders = createFamilyDecoders(timeZoneOf(settings));
  }

  get enabled(): boolean {
    return this.settings.enabled;
  }

  get size(): number {
    return this.sensors.size;
  }

  /** MQTT filters to subscribe to in external broker mode: the scope while enabled. */
  filters(): string[] {
    return this.settings.enabled ? [...this.settings.topics] : [];
  }

  /** A message on a topic that no configured sensor matches. */
  decode(topic: string, payload: Uint8Array, receivedMs: number): SensorMatch {
    const input: DecodeInput = { topic, payload, captures: {}, receivedMs };
    const known = this.sensors.get(topic);
    if (known) {
      known.messages++;
      const outcome = this.decoders[known.family](input);
      if (outcome.kind === 'readings' && outcome.readings.length > 0) known.lastReadingMs = receivedMs;
      return matchOf(outcome, known.station);
    }
    if (!this.settings.enabled || !this.inScope.some((f) => f(topic))) return { matched: false };
    if (this.sensors.size >= this.settings.max_sensors) {
      if (!this.fullReported) {
        this.fullReported = true;
        this.events.full?.(this.settings.max_sensors);
      }
      this.events.skipped?.(
        'limit',
        topic,
        `auto_register.max_sensors (${this.settings.max_sensors}) reached`,
      );
      return { matched: false };
    }
    const family = this.settings.decoder === 'auto' ? undefined : this.settings.decoder;
    const inferred = inferReadings(input, this.decoders, family);
    if (!inferred.ok) {
      this.events.skipped?.('no_reading', topic, inferred.reason);
      return { matched: false };
    }
    const variables = [
      ...new Set(inferred.outcome.readings.filter((r) => r.value !== null).map((r) => r.variable)),
    ].slice(0, MAX_LISTED_VARIABLES);
    const entry: Entry = {
      topic,
      family: inferred.family,
      station: inferred.station,
      since: new Date(this.now()).toISOString(),
      variables,
      messages: 1,
      lastReadingMs: receivedMs,
    };
    this.sensors.set(topic, entry);
    this.events.registered?.(entry, this.sensors.size);
    return matchOf(inferred.outcome, inferred.station);
  }

  /**
   * Applies new settings (SIGHUP). Auto-registered sensors are kept unless: auto_register is now off
   * (all are dropped), a configured sensor now matches their topic, their topic is outside the new
   * `topics`, or `decoder` now names another family. If more than the new `max_sensors` remain,
   * the most recently registered are dropped. Returns how many were kept and dropped.
   */
  reconfigure(
    settings: AutoRegisterConfig,
    configured: (topic: string) => boolean,
  ): { kept: number; dropped: number } {
    const zoneChanged = timeZoneOf(settings).timeZone !== timeZoneOf(this.settings).timeZone;
    this.settings = settings;
    this.inScope = settings.topics.map(compileTopicFilter);
    // Rebuilt only when their options change: the ESPHome decoder keeps the units discovery taught it.
    if (zoneChanged) this.decoders = createFamilyDecoders(timeZoneOf(settings));
    let dropped = 0;
    let kept = 0;
    for (const [topic, s] of this.sensors) {
      const keep =
        settings.enabled &&
        kept < settings.max_sensors &&
        !configured(topic) &&
        this.inScope.some((f) => f(topic)) &&
        (settings.decoder === 'auto' || settings.decoder === s.family);
      if (keep) kept++;
      else {
        this.sensors.delete(topic);
        dropped++;
      }
    }
    if (this.sensors.size < settings.max_sensors) this.fullReported = false;
    return { kept, dropped };
  }

  status(): AutoRegisterStatus {
    return {
      enabled: this.settings.enabled,
      maxSensors: this.settings.max_sensors,
      count: this.sensors.size,
      sensors: [...this.sensors.values()].map((s) => ({ ...s, variables: [...s.variables] })),
    };
  }
}

function timeZoneOf(settings: AutoRegisterConfig): { timeZone?: string } {
  return settings.time_zone === undefined ? {} : { timeZone: settings.time_zone };
}

function matchOf(outcome: DecodeOutcome, registeredStation: string): SensorMatch {
  if (outcome.kind !== 'readings') return { matched: true, outcome };
  return { matched: true, origin: { station: outcome.station ?? registeredStation }, outcome };
}
