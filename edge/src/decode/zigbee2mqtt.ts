import { availability, ReadingCollector, statusOutcome } from './collector.js';
import { classify, classifyPlain, isObject, own, parseJson, utf8 } from './text.js';
import { readTime } from './time.js';
import type { DecodeOutcome, Decoder } from './types.js';
import { variableFor } from './variables.js';

export interface Zigbee2mqttOptions {
  /** Base topic (zigbee2mqtt `mqtt.base_topic`, may contain `/`). Default: the topic's first level. */
  baseTopic?: string;
  /** Unit per key where a device model differs from the defaults below, e.g. `{ voc: 'ug/m3' }`. */
  units?: Readonly<Record<string, string>>;
  /** IANA zone for a `last_seen` without offset (zigbee2mqtt always sends one; kept for symmetry). */
  timeZone?: string;
}

const FAMILY = 'zigbee2mqtt';

/**
 * Units per key as zigbee2mqtt's exposes define them (the payload carries none). `voc` and
 * `formaldehyd` take the Tuya air-quality overrides (ppb, ug/m3): those are the devices that send
 * these keys in practice; a model with the generic units (ug/m3, mg/m3) is configured via `units`.
 */
const UNITS: Readonly<Record<string, string>> = {
  temperature: 'degC',
  device_temperature: 'degC',
  local_temperature: 'degC',
  dew_point: 'degC',
  humidity: '%',
  soil_moisture: '%',
  battery: '%',
  pressure: 'hPa',
  illuminance: 'lx',
  illuminance_lux: 'lx',
  power: 'W',
  energy: 'kWh',
  consumption: 'kWh',
  produced_energy: 'kWh',
  current: 'A',
  linkquality: 'lqi',
  co2: 'ppm',
  eco2: 'ppm',
  voc: 'ppb',
  formaldehyd: 'ug/m3',
  pm25: 'ug/m3',
  pm10: 'ug/m3',
  pm1: 'ug/m3',
  power_outage_count: '1',
  noise: 'dB',
};

/** Keys that describe the message or the device, not a measurement. */
const METADATA = new Set(['last_seen', 'elapsed', 'device', 'update', 'update_available']);

/** Keys that say the device is mains-metered: its `temperature` is then the chip's, not the room's. */
const METERING = ['power', 'energy', 'consumption', 'current'];

/**
 * zigbee2mqtt: `<base>/<friendly name>` JSON state, `<base>/<name>/<key>` attribute output (plain
 * value; nested keys flattened with `-`), `<base>/<name>/availability` and `<base>/bridge/state`.
 * The friendly name may contain `/` and spaces, so a JSON-object payload means "state of the whole
 * rest of the topic", and a plain payload means "attribute = last level" (attributes are never objects).
 */
export function zigbee2mqttDecoder(opts: Zigbee2mqttOptions = {}): Decoder {
  return ({ topic, payload }) => {
    if (topic.startsWith('homeassistant/'))
      return { kind: 'ignored', reason: 'discovery config, not a reading' };
    const rest = afterBase(topic, opts.baseTopic);
    if (rest === undefined)
      return {
        kind: 'rejected',
        reason: `topic "${topic}" is not under ${opts.baseTopic ?? 'a base topic'}/`,
      };
    const text = utf8(payload);
    if (text === undefined) return { kind: 'rejected', reason: 'payload is not valid UTF-8 text' };
    const levels = rest.split('/');
    const last = levels[levels.length - 1] ?? '';

    if (rest === 'bridge/state') return availabilityOutcome(text, 'bridge');
    if (levels[0] === 'bridge') return { kind: 'ignored', reason: `zigbee2mqtt bridge message (${rest})` };
    if (last === 'availability' && levels.length > 1)
      return availabilityOutcome(text, levels.slice(0, -1).join('/'));
    if ((last === 'set' || last === 'get') && levels.length > 1)
      return { kind: 'ignored', reason: `command topic (${last})` };

    if (text.trim().startsWith('{')) {
      const parsed = parseJson(text);
      if (!parsed.ok) return { kind: 'rejected', reason: parsed.reason };
      if (!isObject(parsed.value)) return { kind: 'rejected', reason: 'expected a JSON object state' };
      return decodeState(parsed.value, rest, opts);
    }
    if (levels.length < 2) {
      return {
        kind: 'rejected',
        reason: `expected a JSON object state on ${topic}; a plain value needs <name>/<attribute>`,
      };
    }
    return decodeAttribute(last, text, levels.slice(0, -1).join('/'), opts);
  };
}

function afterBase(topic: string, base: string | undefined): string | undefined {
  if (base === undefined) {
    const slash = topic.indexOf('/');
    return slash > 0 && slash < topic.length - 1 ? topic.slice(slash + 1) : undefined;
  }
  return topic.startsWith(`${base}/`) && topic.length > base.length + 1
    ? topic.slice(base.length + 1)
    : undefined;
}

function availabilityOutcome(text: string, station: string): DecodeOutcome {
  const parsed = text.trim().startsWith('{') ? parseJson(text) : undefined;
  const word =
    parsed?.ok && isObject(parsed.value) && typeof parsed.value.state === 'string'
      ? parsed.value.state
      : text;
  if (classify(word).kind === 'none') {
    const out = new ReadingCollector();
    out.skip('availability', `no reading: ${JSON.stringify(word)}`);
    return out.outcome(station);
  }
  return statusOutcome(availability(word), station);
}

function decodeState(
  state: Record<string, unknown>,
  station: string,
  opts: Zigbee2mqttOptions,
): DecodeOutcome {
  const time = readTime(state.last_seen, { timeZone: opts.timeZone });
  const out = new ReadingCollector(time);
  const context = {
    mains: METERING.some((k) => k in state),
    battery: 'battery' in state,
  };
  for (const [key, raw] of Object.entries(state)) {
    if (METADATA.has(key)) continue;
    field(out, key, raw, context, opts);
  }
  return out.outcome(station);
}

function decodeAttribute(
  key: string,
  text: string,
  station: string,
  opts: Zigbee2mqttOptions,
): DecodeOutcome {
  // Flattened nested objects (`update-state`, `device-ieeeAddr`) are metadata in JSON form too.
  const root = key.split('-')[0] ?? key;
  if (METADATA.has(key) || METADATA.has(root))
    return { kind: 'ignored', reason: `metadata attribute "${key}"` };
  const s = classifyPlain(text);
  const out = new ReadingCollector();
  if (s.kind === 'other') return { kind: 'ignored', reason: `attribute "${key}" is not a single value` };
  if (s.kind === 'none') out.skip(key, `no reading: ${s.shown}`);
  else field(out, key, s.kind === 'number' ? s.value : s.text, { mains: false, battery: false }, opts);
  return out.outcome(station);
}

interface Context {
  /** The message also carries power/energy metering. */
  mains: boolean;
  /** The message also carries a battery percentage. */
  battery: boolean;
}

function field(
  out: ReadingCollector,
  key: string,
  raw: unknown,
  ctx: Context,
  opts: Zigbee2mqttOptions,
): void {
  const s = classify(raw);
  if (s.kind === 'other') return; // nested objects (color, update) and arrays are not readings
  if (s.kind === 'none') {
    out.skip(key, `no reading: ${s.shown}`);
    return;
  }
  if (s.kind === 'text') {
    out.text(key, `${FAMILY}:${key}`, s.text);
    return;
  }
  if (key === 'battery' && s.value < 0) {
    out.skip(key, `no reading: battery ${s.value}`);
    return;
  }
  const configured = own(opts.units, key);
  if ((key === 'voltage' || key === 'battery_voltage') && configured === undefined) {
    const mv = isMillivolts(key, s.value, ctx);
    out.number(key, `${FAMILY}:${mv ? 'battery_voltage' : 'voltage'}`, s.value, mv ? 'mV' : 'V');
    return;
  }
  out.number(key, variableOf(key, ctx), s.value, configured ?? own(UNITS, key) ?? '');
}

/**
 * zigbee2mqtt names battery voltage `voltage` in mV (the battery_voltage expose) and mains voltage
 * `voltage` in V on plugs. Metering in the same message means a plug (V); a battery percentage means
 * a battery device (mV); alone (partial update, attribute topic) the magnitude decides: no mains
 * supply reaches 1000 V and no working battery cell reads under 1000 mV.
 */
function isMillivolts(key: string, value: number, ctx: Context): boolean {
  if (key === 'battery_voltage') return value >= 100;
  if (ctx.mains) return false;
  if (ctx.battery) return true;
  return value >= 1000;
}

function variableOf(key: string, ctx: Context): string {
  // Legacy wall switches (QBKG12LM) report their chip temperature as `temperature` beside metering.
  if (key === 'temperature' && ctx.mains) return `${FAMILY}:device_temperature`;
  if (key === 'consumption') return `${FAMILY}:energy`;
  if (key === 'local_temperature') return variableFor(FAMILY, 'temperature');
  return variableFor(FAMILY, key);
}
