import { availability, ReadingCollector, statusOutcome } from './collector.js';
import { resolvePath } from './json-path.js';
import { isNoReading, isObject, own, parseJson, utf8 } from './text.js';
import { type ResolvedTime, readTime } from './time.js';
import type { DecodeOutcome, Decoder } from './types.js';
import { CF, variableFor } from './variables.js';

export interface TasmotaOptions {
  /** IANA zone of the devices' clocks, to place a `Time` without UTC offset (SetOption52 off, the default). */
  timeZone?: string;
  /** Temperature unit for messages without `TempUnit` (old firmware). Absent: C, flagged `unit_assumed`. */
  temperatureUnit?: 'C' | 'F';
}

const FAMILY = 'tasmota';
const PREFIXES = new Set(['tele', 'stat', 'cmnd']);

/**
 * Tasmota: `tele/<topic>/SENSOR` (nested sensor objects), `tele/<topic>/STATE` (device health, as
 * readings: uptime, Vcc, heap, Wi-Fi quality and signal, relay states), `tele/<topic>/LWT` (status),
 * `stat/<topic>/STATUS10` (`StatusSNS`, same schema as SENSOR). FullTopic may put the prefix after the
 * topic (`a/b/<topic>/tele/SENSOR`): the last `tele`/`stat` level anchors the parse.
 *
 * Each sensor object becomes readings with `sensor` = its `Id` (DS18B20 address: stable when the
 * `-n` numbering shifts) or else its key (`BME280`, `DS18B20-1`, a ZbReceived device). `TempUnit` and
 * `PressureUnit` apply to the whole message; F is converted to degC.
 */
export function tasmotaDecoder(opts: TasmotaOptions = {}): Decoder {
  return ({ topic, payload }) => {
    if (topic.startsWith('homeassistant/') || topic.startsWith('tasmota/discovery/')) {
      return { kind: 'ignored', reason: 'discovery config, not a reading' };
    }
    const { type, station } = parseTopic(topic);
    if (!/^[A-Z][A-Z0-9_]*$/.test(type)) {
      return {
        kind: 'rejected',
        reason: `"${topic}" is not a Tasmota topic: expected <prefix>/<topic>/<TYPE> such as tele/<topic>/SENSOR`,
      };
    }
    const isStatusSns = type === 'STATUS8' || type === 'STATUS10';
    if (type !== 'LWT' && type !== 'SENSOR' && type !== 'STATE' && !isStatusSns) {
      return { kind: 'ignored', reason: `Tasmota ${type} messages carry no sensor readings` };
    }
    const text = utf8(payload);
    if (text === undefined) return { kind: 'rejected', reason: 'payload is not valid UTF-8 text' };
    if (type === 'LWT') {
      if (isNoReading(text)) {
        const out = new ReadingCollector();
        out.skip('LWT', `no reading: ${JSON.stringify(text)}`);
        return out.outcome(station);
      }
      return statusOutcome(availability(text), station);
    }
    const parsed = parseJson(text);
    if (!parsed.ok) return { kind: 'rejected', reason: parsed.reason };
    const doc = parsed.value;
    if (!isObject(doc)) return { kind: 'rejected', reason: `Tasmota ${type} payload must be a JSON object` };
    if (type === 'STATE') return decodeState(doc, station, opts);
    const body = isStatusSns ? doc.StatusSNS : doc;
    if (!isObject(body)) return { kind: 'rejected', reason: `${type} payload has no StatusSNS object` };
    return decodeSensors(body, station, opts);
  };
}

/** `<prefix>/<topic>/.../<TYPE>` or `.../<topic>/<prefix>/<TYPE>`: the type is the last level. */
export function parseTopic(topic: string): { type: string; station?: string } {
  const levels = topic.split('/');
  const type = levels[levels.length - 1] ?? '';
  for (let i = levels.length - 2; i >= 0; i--) {
    if (!PREFIXES.has(levels[i] ?? '')) continue;
    if (i > 0) return { type, station: levels[i - 1] };
    return levels.length >= 3 ? { type, station: levels[1] } : { type };
  }
  return levels.length >= 2 ? { type, station: levels[levels.length - 2] } : { type };
}

/** Epoch (UTC seconds, `Time 2..4` modes) beats `Time`, which is local unless SetOption52 adds an offset. */
function messageTime(doc: Record<string, unknown>, opts: TasmotaOptions): ResolvedTime {
  if (doc.Epoch !== undefined) {
    const t = readTime(doc.Epoch);
    if (t.timeMs !== undefined) return t;
  }
  return readTime(doc.Time, { timeZone: opts.timeZone });
}

interface Units {
  temp: string;
  tempFlags: string[];
  pressure: string;
  pressureFlags: string[];
}

const ASSUMED = ['unit_assumed'];

/** Zigbee clusters fix their units (0.01 degC, 0.1 hPa); TempUnit does not apply to ZbReceived devices. */
const ZIGBEE_UNITS: Units = { temp: 'degC', tempFlags: [], pressure: 'hPa', pressureFlags: [] };

function unitsOf(obj: Record<string, unknown>, parent: Units | undefined, opts: TasmotaOptions): Units {
  const tu = obj.TempUnit;
  const pu = obj.PressureUnit;
  const fallbackTemp = opts.temperatureUnit === 'F' ? 'degF' : 'degC';
  return {
    temp: tu === 'F' ? 'degF' : tu === 'C' ? 'degC' : tu === 'K' ? 'K' : (parent?.temp ?? fallbackTemp),
    tempFlags:
      typeof tu === 'string'
        ? []
        : (parent?.tempFlags ?? (opts.temperatureUnit === undefined ? ASSUMED : [])),
    pressure: typeof pu === 'string' && pu !== '' ? pu : (parent?.pressure ?? 'hPa'),
    pressureFlags: typeof pu === 'string' && pu !== '' ? [] : (parent?.pressureFlags ?? ASSUMED),
  };
}

/** Top-level keys that are not sensors. */
const MESSAGE_KEYS = new Set([
  'Time',
  'Epoch',
  'TempUnit',
  'PressureUnit',
  'SpeedUnit',
  'DistanceUnit',
  'WeightUnit',
]);
/** Keys inside a sensor object that identify or configure it. */
const SENSOR_META = new Set([
  'Id',
  'Device',
  'Name',
  'Endpoint',
  'TotalStartTime',
  'ModelId',
  'Manufacturer',
]);

function decodeSensors(
  body: Record<string, unknown>,
  station: string | undefined,
  opts: TasmotaOptions,
): DecodeOutcome {
  const out = new ReadingCollector(messageTime(body, opts));
  const units = unitsOf(body, undefined, opts);
  for (const [key, value] of Object.entries(body)) {
    if (MESSAGE_KEYS.has(key) || key.endsWith('Unit')) continue;
    if (key === 'ZbReceived' && isObject(value)) {
      for (const [device, obj] of Object.entries(value)) {
        if (isObject(obj)) sensorObject(out, device, obj, unitsOf(obj, ZIGBEE_UNITS, opts));
      }
    } else if (isObject(value)) {
      sensorObject(out, key, value, unitsOf(value, units, opts));
    } else if (typeof value === 'string') {
      // Top-level strings are switch and relay states (`"Switch1":"OFF"`).
      if (isNoReading(value)) out.skip(key, `no reading: ${JSON.stringify(value)}`);
      else out.text(key, `${FAMILY}:${key}`, value);
    } else if (typeof value === 'number') {
      const f = fieldSpec('', key, units);
      out.number(key, f.variable, value, f.unit, { quality: f.quality });
    } else if (value === null) {
      out.skip(key, 'no reading: null');
    }
  }
  return out.outcome(station);
}

function sensorObject(out: ReadingCollector, name: string, obj: Record<string, unknown>, units: Units): void {
  const sensor = typeof obj.Id === 'string' && obj.Id !== '' ? obj.Id : name;
  for (const [key, value] of Object.entries(obj)) {
    if (SENSOR_META.has(key) || key.endsWith('Unit')) continue;
    const field = `${name}.${key}`;
    const f = fieldSpec(name, key, units);
    if (typeof value === 'number') {
      out.number(field, f.variable, value, f.unit, { sensor, quality: f.quality });
    } else if (Array.isArray(value)) {
      // Multi-channel meters send one element per channel: `"Power":[11,0]`.
      for (const [i, v] of value.entries()) {
        if (typeof v === 'number')
          out.number(`${field}[${i}]`, f.variable, v, f.unit, {
            sensor: `${sensor}-${i + 1}`,
            quality: f.quality,
          });
        else if (v === null) out.skip(`${field}[${i}]`, 'no reading: null');
      }
    } else if (value === null || (typeof value === 'string' && isNoReading(value))) {
      out.skip(field, `no reading: ${JSON.stringify(value)}`);
    }
    // Other strings inside a sensor object are identifiers or labels (TIC `ADCO`, `OPTARIF`), not readings.
  }
}

/** ENERGY block: Total/Today/Yesterday kWh, Period Wh (energy since the last TelePeriod). */
const ENERGY: Readonly<Record<string, [string, string]>> = {
  Total: ['energy_total', 'kWh'],
  Today: ['energy_today', 'kWh'],
  Yesterday: ['energy_yesterday', 'kWh'],
  Period: ['energy_period', 'Wh'],
  ExportActive: ['energy_export_total', 'kWh'],
  Power: ['power', 'W'],
  ApparentPower: ['apparent_power', 'VA'],
  ReactivePower: ['reactive_power', 'var'],
  Factor: ['power_factor', '1'],
  Voltage: ['voltage', 'V'],
  Current: ['current', 'A'],
  Frequency: ['frequency', 'Hz'],
};

/** French Linky meter (TIC, historic mode): index counters in Wh, apparent power VA, currents A. */
const TIC_UNITS: Readonly<Record<string, string>> = {
  BASE: 'Wh',
  HCHC: 'Wh',
  HCHP: 'Wh',
  EJPHN: 'Wh',
  EJPHPM: 'Wh',
  BBRHCJB: 'Wh',
  BBRHPJB: 'Wh',
  BBRHCJW: 'Wh',
  BBRHPJW: 'Wh',
  BBRHCJR: 'Wh',
  BBRHPJR: 'Wh',
  PAPP: 'VA',
  IINST: 'A',
  IMAX: 'A',
  ISOUSC: 'A',
};

/** Units implied by the key in sensor objects (the JSON carries none). */
const UNITS: Readonly<Record<string, string>> = {
  Humidity: '%',
  PM1: 'ug/m3',
  'PM2.5': 'ug/m3',
  PM10: 'ug/m3',
  CarbonDioxide: 'ppm',
  eCO2: 'ppm',
  TVOC: 'ppb',
  Gas: 'kohm',
  Illuminance: 'lx',
  Battery: '%',
  Voltage: 'V',
  Current: 'A',
  Power: 'W',
  LinkQuality: 'lqi',
};

const TEMPERATURE_KEY = /^(Temperature\d*|DewPoint|ObjTemp|AmbTemp)$/;
const PRESSURE_KEY = /^(Pressure|SeaPressure)$/;
const CHIP = /^ESP(32|8266)/i;

function fieldSpec(
  sensorName: string,
  key: string,
  units: Units,
): { variable: string; unit: string; quality?: string[] } {
  if (TEMPERATURE_KEY.test(key)) {
    const variable =
      key === 'DewPoint'
        ? CF.dewPoint
        : CHIP.test(sensorName)
          ? `${FAMILY}:device_temperature` // the chip's own temperature, not the room's
          : variableFor(FAMILY, key.replace(/\d+$/, ''));
    return { variable, unit: units.temp, quality: units.tempFlags };
  }
  if (PRESSURE_KEY.test(key))
    return { variable: variableFor(FAMILY, key), unit: units.pressure, quality: units.pressureFlags };
  if (sensorName === 'ENERGY') {
    const e = own(ENERGY, key);
    return e
      ? { variable: `${FAMILY}:${e[0]}`, unit: e[1] }
      : { variable: `${FAMILY}:ENERGY.${key}`, unit: '' };
  }
  if (sensorName === 'TIC') return { variable: `${FAMILY}:TIC.${key}`, unit: own(TIC_UNITS, key) ?? '' };
  if (sensorName === 'ANALOG' && /^A\d+$/.test(key)) return { variable: `${FAMILY}:analog`, unit: '1' };
  return { variable: variableFor(FAMILY, key), unit: own(UNITS, key) ?? '' };
}

/** STATE: device health. `Wifi.RSSI` is a link quality in %, the dBm value is `Wifi.Signal`. */
const STATE_FIELDS: readonly [string, string, string][] = [
  ['UptimeSec', 'uptime', 's'],
  ['Vcc', 'vcc', 'V'],
  ['Heap', 'heap', 'kB'],
  ['LoadAvg', 'load_average', '1'],
  ['MqttCount', 'mqtt_count', '1'],
  ['Wifi.RSSI', 'wifi_quality', '%'],
  ['Wifi.Signal', 'wifi_signal', 'dBm'],
  ['Wifi.LinkCount', 'wifi_link_count', '1'],
  ['Wifi.DeepSleep', 'deep_sleep', 's'],
];

function decodeState(
  doc: Record<string, unknown>,
  station: string | undefined,
  opts: TasmotaOptions,
): DecodeOutcome {
  const out = new ReadingCollector(messageTime(doc, opts));
  for (const [path, name, unit] of STATE_FIELDS) {
    const hit = resolvePath(doc, path);
    if (hit.found) out.value(path, `${FAMILY}:${name}`, hit.value, unit);
  }
  for (const [key, value] of Object.entries(doc)) {
    if (/^POWER\d*$/.test(key) && typeof value === 'string') out.text(key, `${FAMILY}:${key}`, value);
  }
  return out.outcome(station);
}
