import { own } from './text.js';

/**
 * The one table from the units devices send to the canonical unit of each quantity (CF/UDUNITS symbols).
 *
 * Canonical choices, and why:
 * - temperature `degC`: what every sensor family here sends; K would turn every reading into a conversion.
 * - pressure `hPa`: zigbee2mqtt, Tasmota and most weather sensors already send hPa, so values stay as sent.
 * - energy `Wh`: Shelly counters are Wh; kWh (zigbee2mqtt, Tasmota) -> Wh is an exact decimal shift.
 * - mole fractions `1e-6` / `1e-9` (ppm / ppb in UDUNITS/CF spelling), mass concentration `ug m-3`.
 * - apparent power `V A`, reactive power `var`, resistance `ohm`, dimensionless `1`.
 *
 * Conversions by a power of ten are done on the decimal text of the number (`2995` mV -> `2.995` V
 * exactly, no float noise). Other conversions are rounded to the input's decimals plus a few digits
 * chosen so the result keeps the input's resolution (0.1 degF = 0.06 degC: one more decimal).
 */

type Rule =
  /** Same quantity and scale, only the symbol differs. */
  | { to: string }
  /** Multiply by 10^pow10, exactly. */
  | { to: string; pow10: number }
  /** `value * scale + offset`, rounded to (decimals of the input + digits). */
  | { to: string; scale: number; offset?: number; digits: number; minDecimals?: number };

const same = (to: string): Rule => ({ to });
const shift = (to: string, pow10: number): Rule => ({ to, pow10 });

const RULES: Readonly<Record<string, Rule>> = {
  // temperature
  degC: same('degC'),
  '°C': same('degC'),
  Cel: same('degC'),
  celsius: same('degC'),
  degF: { to: 'degC', scale: 5 / 9, offset: (-32 * 5) / 9, digits: 1 },
  '°F': { to: 'degC', scale: 5 / 9, offset: (-32 * 5) / 9, digits: 1 },
  fahrenheit: { to: 'degC', scale: 5 / 9, offset: (-32 * 5) / 9, digits: 1 },
  K: { to: 'degC', scale: 1, offset: -273.15, digits: 0, minDecimals: 2 },
  // pressure
  hPa: same('hPa'),
  mbar: same('hPa'),
  mb: same('hPa'),
  Pa: shift('hPa', -2),
  kPa: shift('hPa', 1),
  bar: shift('hPa', 3),
  mmHg: { to: 'hPa', scale: 1.33322387415, digits: 2 },
  inHg: { to: 'hPa', scale: 33.8638866667, digits: 0 },
  psi: { to: 'hPa', scale: 68.9475729318, digits: 0 },
  // ratios
  '%': same('%'),
  '%RH': same('%'),
  '%EL': same('%'),
  percent: same('%'),
  '1': same('1'),
  '/': same('1'),
  ratio: same('1'),
  lqi: same('1'),
  count: same('1'),
  ppm: same('1e-6'),
  '1e-6': same('1e-6'),
  ppb: same('1e-9'),
  '1e-9': same('1e-9'),
  // electrical
  V: same('V'),
  mV: shift('V', -3),
  kV: shift('V', 3),
  A: same('A'),
  mA: shift('A', -3),
  W: same('W'),
  mW: shift('W', -3),
  kW: shift('W', 3),
  VA: same('V A'),
  'V A': same('V A'),
  kVA: shift('V A', 3),
  var: same('var'),
  VAr: same('var'),
  VAR: same('var'),
  kvar: shift('var', 3),
  Wh: same('Wh'),
  mWh: shift('Wh', -3),
  kWh: shift('Wh', 3),
  MWh: shift('Wh', 6),
  Wmin: { to: 'Wh', scale: 1 / 60, digits: 4 },
  J: { to: 'Wh', scale: 1 / 3600, digits: 4 },
  Hz: same('Hz'),
  ohm: same('ohm'),
  Ω: same('ohm'),
  kohm: shift('ohm', 3),
  kΩ: shift('ohm', 3),
  MΩ: shift('ohm', 6),
  // concentration
  'ug m-3': same('ug m-3'),
  'ug/m3': same('ug m-3'),
  'mg/m3': shift('ug m-3', 3),
  'mg m-3': shift('ug m-3', 3),
  // memory (Tasmota Heap)
  kB: same('kB'),
  // light, radio, time, place
  lx: same('lx'),
  lux: same('lx'),
  dB: same('dB'),
  dBm: same('dBm'),
  s: same('s'),
  ms: shift('s', -3),
  min: { to: 's', scale: 60, digits: 0 },
  h: { to: 's', scale: 3600, digits: 0 },
  lat: same('degrees_north'),
  lon: same('degrees_east'),
  degrees_north: same('degrees_north'),
  degrees_east: same('degrees_east'),
  'm/s': same('m s-1'),
  'm s-1': same('m s-1'),
  'km/h': { to: 'm s-1', scale: 1 / 3.6, digits: 2 },
  'W/m2': same('W m-2'),
  'W m-2': same('W m-2'),
};

/** Characters of spelling variants: one test spares most units the four replacements (run per reading). */
const VARIANT_CHARS = /[µμ³²^]/;

/** Spelling variants that mean the same symbol: micro signs, superscripts, `Ohm`, `kOhm`. */
function normalise(unit: string): string {
  let u = unit.trim();
  if (VARIANT_CHARS.test(u))
    u = u.replace(/[µμ]/g, 'u').replace(/³/g, '3').replace(/²/g, '2').replace(/\^/g, '');
  if ((u.length === 3 || u.length === 4) && /^k?ohm$/i.test(u)) return u.toLowerCase();
  return u;
}

/** Number of decimals in the shortest text of `v` (`2.995` -> 3, `1e-7` -> 7). */
export function decimalsOf(v: number): number {
  const [mant = '0', exp = '0'] = String(Math.abs(v)).split('e');
  const frac = mant.split('.')[1]?.length ?? 0;
  return Math.max(0, frac - Number(exp));
}

/** `v * 10^pow10` computed on the decimal text, so `2995 * 10^-3` is exactly `2.995`. */
export function shiftDecimal(v: number, pow10: number): number {
  const [mant = '0', exp = '0'] = String(v).split('e');
  return Number(`${mant}e${Number(exp) + pow10}`);
}

function roundTo(x: number, decimals: number): number {
  const d = Math.min(Math.max(decimals, 0), 12);
  const r = Number(x.toFixed(d));
  return Object.is(r, -0) ? 0 : r;
}

export interface Canonical {
  value: number;
  unit: string;
  /** False when the unit is not in the table: the value and unit pass through unchanged. */
  known: boolean;
}

/** The canonical unit a source unit converts to, or undefined when the unit is not in the table. */
export function canonicalUnit(unit: string): string | undefined {
  return own(RULES, normalise(unit))?.to;
}

/** Converts one value from the unit a device sent to its canonical unit. Unknown units pass through. */
export function toCanonical(value: number, unit: string): Canonical {
  const rule = own(RULES, normalise(unit));
  if (rule === undefined) return { value, unit: unit.trim(), known: false };
  if ('pow10' in rule) return { value: shiftDecimal(value, rule.pow10), unit: rule.to, known: true };
  if ('scale' in rule) {
    const decimals = Math.max(decimalsOf(value), rule.minDecimals ?? 0) + rule.digits;
    return { value: roundTo(value * rule.scale + (rule.offset ?? 0), decimals), unit: rule.to, known: true };
  }
  return { value, unit: rule.to, known: true };
}
