import { availability, ReadingCollector, statusOutcome } from './collector.js';
import { classifyPlain, isObject, own, parseJson, utf8 } from './text.js';
import type { DecodeOutcome, Decoder } from './types.js';
import { CF } from './variables.js';

export interface EsphomeOptions {
  /** Per object_id: variable and unit as the node's YAML declares them. Wins over what discovery taught. */
  sensors?: Readonly<Record<string, { variable?: string; unit?: string }>>;
  /** Learn units from `homeassistant/.../config` messages this decoder sees (default true). */
  learnFromDiscovery?: boolean;
}

const FAMILY = 'esphome';

/** Discovery `device_class` -> CF name; the object_id is user-chosen and says nothing reliable. */
const CF_BY_DEVICE_CLASS: Readonly<Record<string, string>> = {
  temperature: CF.airTemperature,
  humidity: CF.relativeHumidity,
  pressure: CF.airPressure,
  atmospheric_pressure: CF.airPressure,
  pm1: CF.pm1,
  pm25: CF.pm2p5,
  pm10: CF.pm10,
  carbon_dioxide: CF.co2,
};

const COMPONENTS = new Set([
  'sensor',
  'binary_sensor',
  'text_sensor',
  'switch',
  'light',
  'fan',
  'cover',
  'lock',
  'number',
  'select',
  'text',
  'button',
  'valve',
  'event',
  'datetime',
  'date',
  'time',
  'update',
  'alarm_control_panel',
]);

/** Bound on remembered discovery entries, so a noisy broker cannot grow the agent's memory. */
const MAX_LEARNED = 4096;

interface Learned {
  unit?: string;
  variable?: string;
}

/**
 * ESPHome: `<prefix>/<component>/<object_id>/state` plain text (numbers, `ON`/`OFF`, text sensors
 * also under `sensor`), `<prefix>/status` `online`/`offline`. The state carries no unit: it comes
 * from `sensors` config or from the retained discovery config (`unit_of_measurement`,
 * `device_class`), which this decoder remembers per state topic when it sees it, and otherwise is
 * unknown (unit `''`, flagged `unit_unknown`). Discovery messages themselves are `ignored`.
 * Climate temperatures are always degC in ESPHome.
 */
export function esphomeDecoder(opts: EsphomeOptions = {}): Decoder {
  const learned = new Map<string, Learned>();
  const stateTopicOf = new Map<string, string>();
  const learn = opts.learnFromDiscovery ?? true;

  return ({ topic, payload }) => {
    const levels = topic.split('/');
    const n = levels.length;
    const last = levels[n - 1];
    if (levels[0] === 'homeassistant' || last === 'config') {
      if (learn) remember(topic, payload, learned, stateTopicOf);
      return { kind: 'ignored', reason: 'discovery config (its unit is remembered for the state topic)' };
    }
    const text = utf8(payload);
    if (text === undefined) return { kind: 'rejected', reason: 'payload is not valid UTF-8 text' };
    if (last === 'status' && n >= 2) return availabilityOf(text, levels.slice(0, -1).join('/'));
    if (last === 'command' || last === 'debug') return { kind: 'ignored', reason: `ESPHome ${last} topic` };
    const where = parseStateTopic(levels);
    if (where === undefined) {
      return {
        kind: 'rejected',
        reason: `"${topic}" is not an ESPHome <prefix>/<component>/<object_id>/state topic`,
      };
    }
    const s = classifyPlain(text);
    if (s.kind === 'other')
      return { kind: 'ignored', reason: `JSON state of a ${where.component} entity, not a sensor reading` };
    const out = new ReadingCollector();
    const configured = own(opts.sensors, where.objectId);
    const known = learned.get(topic);
    const variable = configured?.variable ?? known?.variable ?? `${FAMILY}:${where.objectId}`;
    if (s.kind === 'none') out.skip(where.objectId, `no reading: ${s.shown}`);
    else if (s.kind === 'text') out.text(where.objectId, variable, s.text);
    else out.number(where.objectId, variable, s.value, configured?.unit ?? known?.unit ?? where.unit ?? '');
    return out.outcome(where.prefix);
  };
}

function parseStateTopic(
  levels: string[],
): { prefix: string; component: string; objectId: string; unit?: string } | undefined {
  const n = levels.length;
  if (levels[n - 1] !== 'state') return undefined;
  // climate publishes `<prefix>/climate/<id>/<attribute>/state`; its temperatures are degC.
  if (n >= 5 && levels[n - 4] === 'climate') {
    const attribute = levels[n - 2] ?? '';
    return {
      prefix: levels.slice(0, n - 4).join('/'),
      component: 'climate',
      objectId: `${levels[n - 3]}.${attribute}`,
      ...(attribute.includes('temperature') ? { unit: 'degC' } : {}),
    };
  }
  if (n < 4 || !COMPONENTS.has(levels[n - 3] ?? '')) return undefined;
  return {
    prefix: levels.slice(0, n - 3).join('/'),
    component: levels[n - 3] ?? '',
    objectId: levels[n - 2] ?? '',
  };
}

function availabilityOf(text: string, station: string): DecodeOutcome {
  const s = classifyPlain(text);
  if (s.kind === 'none') {
    const out = new ReadingCollector();
    out.skip('status', `no reading: ${s.shown}`);
    return out.outcome(station);
  }
  return statusOutcome(availability(text), station);
}

/**
 * Reads `state_topic`, `unit_of_measurement` and `device_class` (full or abbreviated keys, with `~`
 * expanded) from a discovery config. Some firmwares wrote the unit in Latin-1 (`°` as 0xB0), so
 * invalid UTF-8 falls back to Latin-1 here: the unit is the only text used.
 */
function remember(
  configTopic: string,
  payload: Uint8Array,
  learned: Map<string, Learned>,
  stateTopicOf: Map<string, string>,
): void {
  if (payload.length === 0) {
    const st = stateTopicOf.get(configTopic);
    if (st !== undefined) learned.delete(st);
    stateTopicOf.delete(configTopic);
    return;
  }
  const text = utf8(payload) ?? new TextDecoder('latin1').decode(payload);
  const parsed = parseJson(text);
  if (!parsed.ok || !isObject(parsed.value)) return;
  const cfg = parsed.value;
  const str = (...keys: string[]) => keys.map((k) => cfg[k]).find((x): x is string => typeof x === 'string');
  const base = str('~');
  let stateTopic = str('state_topic', 'stat_t');
  if (stateTopic === undefined) return;
  if (base !== undefined) stateTopic = stateTopic.replace(/^~|~$/, base);
  const unit = str('unit_of_measurement', 'unit_of_meas');
  const deviceClass = str('device_class', 'dev_cla');
  const entry: Learned = {};
  if (unit !== undefined) entry.unit = unit;
  const variable = deviceClass === undefined ? undefined : own(CF_BY_DEVICE_CLASS, deviceClass);
  if (variable !== undefined) entry.variable = variable;
  learned.delete(stateTopic);
  learned.set(stateTopic, entry);
  stateTopicOf.set(configTopic, stateTopic);
  // Maps iterate in insertion order: the first key is the least recently configured.
  while (learned.size > MAX_LEARNED) {
    const oldest = learned.keys().next().value;
    if (oldest === undefined) break;
    learned.delete(oldest);
  }
  while (stateTopicOf.size > MAX_LEARNED) {
    const oldest = stateTopicOf.keys().next().value;
    if (oldest === undefined) break;
    stateTopicOf.delete(oldest);
  }
}
