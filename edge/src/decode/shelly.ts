import { availability, ReadingCollector, statusOutcome } from './collector.js';
import { resolvePath } from './json-path.js';
import { classifyPlain, isObject, own, parseJson, utf8 } from './text.js';
import { readTime } from './time.js';
import type { DecodeOutcome, Decoder } from './types.js';
import { CF } from './variables.js';

export interface ShellyOptions {
  /** Unit of Gen1 `sensor/temperature`, a device setting no topic shows. Absent: C, flagged `unit_assumed`. */
  temperatureUnit?: 'C' | 'F';
}

const FAMILY = 'shelly';
const v = (name: string) => `${FAMILY}:${name}`;

/**
 * Shelly, both generations.
 * - Gen1: `shellies/<id>/<subtopic>`, one plain value per topic (a few JSON ones). The id is the station.
 *   Indexed parts become the sensor in Gen2 spelling (`relay/0/power` -> sensor `relay:0`).
 *   `relay|emeter/N/energy` are watt-minutes, `emeter/N/total` Wh.
 * - Gen2/3: `<prefix>/events/rpc` NotifyStatus / NotifyFullStatus (station = `src`, time = `params.ts`)
 *   and `<prefix>/status/<component>:<id>` (station = prefix without a leading `shellies/`).
 * - `<...>/online` `true`/`false` -> status.
 * One series per quantity: the °F twins (`temperature_f`, `tF`) are left out.
 */
export function shellyDecoder(opts: ShellyOptions = {}): Decoder {
  return ({ topic, payload }) => {
    const text = utf8(payload);
    if (text === undefined) return { kind: 'rejected', reason: 'payload is not valid UTF-8 text' };
    const levels = topic.split('/');
    const n = levels.length;
    if (n >= 3 && levels[n - 2] === 'events' && levels[n - 1] === 'rpc')
      return rpc(text, prefixStation(levels.slice(0, -2)));
    if (n >= 3 && levels[n - 2] === 'status')
      return statusTopic(levels[n - 1] ?? '', text, prefixStation(levels.slice(0, -2)));
    if (n >= 2 && levels[n - 1] === 'online') {
      const station = prefixStation(levels.slice(0, -1));
      const s = classifyPlain(text);
      if (s.kind === 'none') {
        const out = new ReadingCollector();
        out.skip('online', `no reading: ${JSON.stringify(text)}`);
        return out.outcome(station);
      }
      return statusOutcome(availability(text), station);
    }
    if (levels[0] === 'shellies' && n === 2)
      return { kind: 'ignored', reason: `Gen1 broadcast topic ${topic}` };
    if (levels[0] === 'shellies' && n >= 3) return gen1(levels[1] ?? '', levels.slice(2), text, opts);
    return {
      kind: 'rejected',
      reason: `"${topic}" is not a Shelly topic (shellies/<id>/..., <prefix>/events/rpc, <prefix>/status/<component>)`,
    };
  };
}

/** Gen2 prefixes default to `<model>-<mac>`; people who mirror Gen1 use `shellies/<id>`. */
function prefixStation(levels: string[]): string {
  const prefix = levels.join('/');
  return prefix.startsWith('shellies/') ? prefix.slice('shellies/'.length) : prefix;
}

// ---------------------------------------------------------------- Gen1

/** Per-channel metrics under `relay|light|roller|emeter/N/<metric>`: variable and unit as sent. */
const CHANNEL_METRICS: Readonly<Record<string, [string, string]>> = {
  power: ['power', 'W'],
  reactive_power: ['reactive_power', 'var'],
  voltage: ['voltage', 'V'],
  current: ['current', 'A'],
  pf: ['power_factor', '1'],
  energy: ['energy', 'Wmin'],
  returned_energy: ['returned_energy', 'Wmin'],
  total: ['energy_total', 'Wh'],
  total_returned: ['returned_energy_total', 'Wh'],
  pos: ['position', '%'],
  overpower_value: ['overpower_value', 'W'],
};

/** `sensor/<name>` on battery devices (H&T, Flood, Door/Window, Gas...). */
const SENSOR_METRICS: Readonly<Record<string, [string, string]>> = {
  humidity: [CF.relativeHumidity, '%'],
  battery: [v('battery'), '%'],
  lux: [v('illuminance'), 'lx'],
  tilt: [v('tilt'), 'degree'],
  concentration: [v('gas_concentration'), 'ppm'],
  error: [v('sensor_error'), '1'],
};

/** Device-level plain topics `shellies/<id>/<name>`. */
const DEVICE_METRICS: Readonly<Record<string, [string, string]>> = {
  overtemperature: ['overtemperature', '1'],
  voltage: ['supply_voltage', 'V'],
  loaderror: ['load_error', '1'],
  overload: ['overload', '1'],
};

const CHANNELS = new Set(['relay', 'light', 'roller', 'white', 'color', 'emeter']);
const IGNORED_GEN1 = new Set(['info', 'announce', 'command', 'settings', 'status']);

function gen1(id: string, sub: string[], text: string, opts: ShellyOptions): DecodeOutcome {
  const [a = '', b, c] = sub;
  const field = sub.join('/');
  const out = new ReadingCollector();
  const done = () => out.outcome(id);

  if (IGNORED_GEN1.has(a) || sub[sub.length - 1] === 'command' || sub[sub.length - 1] === 'set') {
    return { kind: 'ignored', reason: `Shelly ${field} is not a reading` };
  }
  if (a === 'temperature_f' || a === 'ext_temperature_f' || (a === 'sensor' && b === 'temperature_f')) {
    return { kind: 'ignored', reason: `°F twin of a °C topic; the °C one is used (${field})` };
  }
  if (a === 'sensor' && b === 'act_reasons')
    return { kind: 'ignored', reason: 'wake-up reasons, not a reading' };

  if (a === 'sensor' && b !== undefined && sub.length === 2) {
    if (b === 'temperature') {
      const unit = opts.temperatureUnit === 'F' ? 'degF' : 'degC';
      const quality = opts.temperatureUnit === undefined ? ['unit_assumed'] : [];
      plain(out, field, CF.airTemperature, text, unit, { quality });
    } else if (b === 'battery' && classifyPlain(text).kind === 'number' && Number(text) < 0) {
      out.skip(field, `no reading: battery ${text.trim()}`);
    } else {
      const [variable, unit] = own(SENSOR_METRICS, b) ?? [v(b), ''];
      plain(out, field, variable, text, unit);
    }
    return done();
  }
  if (a === 'ext_temperature' && b !== undefined) {
    plain(out, field, v('external_temperature'), text, 'degC', { sensor: `ext_temperature:${b}` });
    return done();
  }
  if (a === 'ext_humidity' && b !== undefined) {
    plain(out, field, CF.relativeHumidity, text, '%', { sensor: `ext_humidity:${b}` });
    return done();
  }
  if (sub.length === 1 && a === 'temperature') {
    plain(out, field, v('device_temperature'), text, 'degC'); // the device's own, not the room's
    return done();
  }
  if ((a === 'input' || a === 'input_event') && b !== undefined && c === undefined) {
    const sensor = `input:${b}`;
    if (a === 'input') {
      plain(out, field, v('input'), text, '1', { sensor });
      return done();
    }
    const parsed = parseJson(text);
    if (!parsed.ok || !isObject(parsed.value))
      return { kind: 'rejected', reason: `${field}: expected a JSON object` };
    out.value(`${field}.event`, v('input_event'), parsed.value.event, '', { sensor });
    out.value(`${field}.event_cnt`, v('input_event_count'), parsed.value.event_cnt, '1', { sensor });
    return done();
  }
  if (CHANNELS.has(a) && b !== undefined) {
    const sensor = `${a}:${b}`;
    if (c === undefined) {
      plain(out, field, v('output'), text, '', { sensor });
    } else if (c === 'status') {
      const parsed = parseJson(text);
      if (!parsed.ok || !isObject(parsed.value))
        return { kind: 'rejected', reason: `${field}: expected a JSON object` };
      const st = parsed.value;
      if ('ison' in st) out.value(`${field}.ison`, v('output'), st.ison, '', { sensor });
      if ('brightness' in st)
        out.value(`${field}.brightness`, v('brightness'), st.brightness, '%', { sensor });
    } else {
      const [name, unit] = own(CHANNEL_METRICS, c) ?? [c, ''];
      plain(out, field, v(name), text, unit, { sensor });
    }
    return done();
  }
  const s = classifyPlain(text);
  if (s.kind === 'other')
    return { kind: 'ignored', reason: `Shelly ${field}: JSON is read only on known topics` };
  const [name, unit] = (sub.length === 1 ? own(DEVICE_METRICS, a) : undefined) ?? [sub.join('.'), ''];
  plain(out, field, v(name), text, unit);
  return done();
}

/** One plain-text value: numbers measured, words kept as text (`on`, `false`), markers skipped. */
function plain(
  out: ReadingCollector,
  field: string,
  variable: string,
  text: string,
  unit: string,
  opts: { sensor?: string; quality?: string[] } = {},
): void {
  const s = classifyPlain(text);
  if (s.kind === 'number') out.number(field, variable, s.value, unit, opts);
  else if (s.kind === 'text') out.text(field, variable, s.text, opts);
  else if (s.kind === 'none') out.skip(field, `no reading: ${s.shown}`);
  else out.skip(field, 'JSON on a plain-value topic');
}

// ---------------------------------------------------------------- Gen2 / Gen3

function rpc(text: string, topicStation: string): DecodeOutcome {
  const parsed = parseJson(text);
  if (!parsed.ok) return { kind: 'rejected', reason: parsed.reason };
  const frame = parsed.value;
  if (!isObject(frame) || typeof frame.method !== 'string') {
    return { kind: 'rejected', reason: 'expected a JSON-RPC notification with "method"' };
  }
  const station = typeof frame.src === 'string' && frame.src !== '' ? frame.src : topicStation;
  if (frame.method !== 'NotifyStatus' && frame.method !== 'NotifyFullStatus') {
    return { kind: 'ignored', reason: `${frame.method} carries no status readings` };
  }
  if (!isObject(frame.params)) return { kind: 'rejected', reason: `${frame.method} without a params object` };
  // `ts` is set even right after a deep-sleep wake, when sys.unixtime is still null.
  const out = new ReadingCollector(readTime(frame.params.ts));
  for (const [key, value] of Object.entries(frame.params)) {
    if (isObject(value)) component(out, key, value);
  }
  return out.outcome(station);
}

function statusTopic(key: string, text: string, station: string): DecodeOutcome {
  const parsed = parseJson(text);
  if (!parsed.ok) return { kind: 'rejected', reason: parsed.reason };
  if (!isObject(parsed.value)) return { kind: 'rejected', reason: `status/${key}: expected a JSON object` };
  const out = new ReadingCollector();
  component(out, key, parsed.value);
  return out.outcome(station);
}

/** Switch-like components (`switch`, `pm1`, `cover`, `light`): path in the component -> variable, unit. */
const METERED: readonly [string, string, string][] = [
  ['apower', 'power', 'W'],
  ['voltage', 'voltage', 'V'],
  ['current', 'current', 'A'],
  ['freq', 'frequency', 'Hz'],
  ['pf', 'power_factor', '1'],
  ['aenergy.total', 'energy_total', 'Wh'],
  ['ret_aenergy.total', 'returned_energy_total', 'Wh'],
  ['temperature.tC', 'device_temperature', 'degC'],
  ['brightness', 'brightness', '%'],
  ['current_pos', 'position', '%'],
];
const METERED_TYPES = new Set(['switch', 'pm1', 'cover', 'light', 'rgb', 'rgbw', 'cct']);

/** Pro 3EM / EM: `<phase>_<metric>` keys. */
const EM_METRICS: Readonly<Record<string, [string, string]>> = {
  current: ['current', 'A'],
  voltage: ['voltage', 'V'],
  act_power: ['power', 'W'],
  aprt_power: ['apparent_power', 'VA'],
  pf: ['power_factor', '1'],
  freq: ['frequency', 'Hz'],
  total_act_energy: ['energy_total', 'Wh'],
  total_act_ret_energy: ['returned_energy_total', 'Wh'],
};

/** One Gen2 component's status (`switch:0`, `temperature:0`, `devicepower:0`, `wifi`...). */
function component(out: ReadingCollector, key: string, obj: Record<string, unknown>): void {
  const [type = '', idText] = key.split(':');
  const id = Number(idText ?? 0);
  const sensor = key;
  const at = (path: string) => resolvePath(obj, path);
  const put = (path: string, variable: string, unit: string, opts: { timeMs?: number } = {}) => {
    const hit = at(path);
    if (hit.found) out.value(`${key}.${path}`, variable, hit.value, unit, { sensor, ...opts });
  };

  if (METERED_TYPES.has(type)) {
    for (const [path, name, unit] of METERED) put(path, v(name), unit);
    put('output', v('output'), '');
    // Energy of the last complete minute, in mWh; it belongs to the minute ending at minute_ts.
    const minuteTs = at('aenergy.minute_ts');
    const end = minuteTs.found ? readTime(minuteTs.value).timeMs : undefined;
    put('aenergy.by_minute[0]', v('energy_last_minute'), 'mWh', end === undefined ? {} : { timeMs: end });
    return;
  }
  switch (type) {
    case 'temperature':
      // Add-on probes are numbered from 100; lower ids are the device's own ambient sensor.
      put('tC', id >= 100 ? v('external_temperature') : CF.airTemperature, 'degC');
      return;
    case 'humidity':
      put('rh', CF.relativeHumidity, '%');
      return;
    case 'illuminance':
      put('lux', v('illuminance'), 'lx');
      return;
    case 'voltmeter':
      put('voltage', v('voltage'), 'V');
      return;
    case 'devicepower': {
      // On USB power the battery reads about 0.4 V / 0 %: that means "no battery", not a flat one.
      const external = at('external.present');
      if (external.found && external.value === true) {
        for (const p of ['battery.V', 'battery.percent']) {
          if (at(p).found) out.skip(`${key}.${p}`, 'no reading: external power, battery not in use');
        }
        return;
      }
      put('battery.V', v('battery_voltage'), 'V');
      put('battery.percent', v('battery'), '%');
      return;
    }
    case 'input': {
      const state = at('state');
      if (state.found && typeof state.value === 'boolean') {
        out.number(`${key}.state`, v('input'), state.value ? 1 : 0, '1', { sensor });
      }
      put('percent', v('input_percent'), '%');
      return;
    }
    case 'wifi':
      put('rssi', v('wifi_rssi'), 'dBm');
      return;
    case 'em':
    case 'em1':
    case 'emdata':
    case 'em1data':
      energyMeter(out, key, obj);
      return;
    default:
    // sys, cloud, mqtt, ble, ws, script, *_ui: connectivity and housekeeping, not readings.
  }
}

function energyMeter(out: ReadingCollector, key: string, obj: Record<string, unknown>): void {
  for (const [k, raw] of Object.entries(obj)) {
    const m = /^(?:(a|b|c|n|total)_)?(.+)$/.exec(k);
    const phase = m?.[1];
    let metric = m?.[2] ?? k;
    if (k === 'total_act' || k === 'total_act_ret') metric = `${k}_energy`; // emdata totals
    const spec = own(EM_METRICS, metric);
    if (spec === undefined) continue;
    const sensor = phase === undefined || phase === 'total' ? key : `${key}.${phase}`;
    out.value(`${key}.${k}`, v(spec[0]), raw, spec[1], { sensor });
  }
}
