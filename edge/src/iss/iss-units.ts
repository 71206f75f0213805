import type { IssCatalogueItem } from './isslive-catalogue.js';

/**
 * The unit an ISSLIVE `Value` is delivered in, as a UDUNITS symbol.
 *
 * The catalogue's `UNITS` column is the raw engineering unit of the downlink and is often not what
 * the public `Value` carries (tlcp.md §8.3: state vectors in km and m/s, pressures in mmHg,
 * temperatures in °C). In order of trust: the item overrides below (§8.3 and the "as delivered"
 * column of §9), a unit named in the description's trailing parentheses, then the catalogue unit.
 * The unit is not part of the observation id, so correcting it later does not fork ids.
 */

/** Items whose delivered unit tlcp.md §8.3 / §9 establishes and that no description hint covers. */
const DELIVERED: Readonly<Record<string, string>> = {
  USLAB000032: 'km',
  USLAB000033: 'km',
  USLAB000034: 'km',
  USLAB000035: 'm s-1',
  USLAB000036: 'm s-1',
  USLAB000037: 'm s-1',
  USLAB000053: 'mmHg',
  USLAB000054: 'mmHg',
  USLAB000055: 'mmHg',
  USLAB000058: 'mmHg',
  USLAB000059: 'degC',
  USLAB000060: 'degC',
  USLAB000061: 'degC',
  // Node 3 partial pressures: same PSIA label as the Lab ones, which read in mmHg.
  NODE3000001: 'mmHg',
  NODE3000002: 'mmHg',
  NODE3000003: 'mmHg',
  NODE3000005: '%',
  NODE3000008: '%',
  NODE3000009: '%',
  NODE3000012: 'degC',
  NODE2000006: 'degC',
  AIRLOCK000049: 'mmHg',
  AIRLOCK000054: 'mmHg',
  S4000001: 'V',
  S4000002: 'A',
  P4000001: 'V',
  P4000002: 'A',
  Z1000015: 'degree',
};

/** Units named in a description's trailing parentheses, e.g. "Loop A PM Out Press (kPa)". */
const DESCRIPTION_HINTS: Readonly<Record<string, string>> = {
  '%': '%',
  'N-m': 'N m',
  Nms: 'N m s',
  amps: 'A',
  deg: 'degree',
  'deg C': 'degC',
  'deg/s': 'degree s-1',
  degrees: 'degree',
  g: 'standard_free_fall',
  kPa: 'kPa',
  kg: 'kg',
  'kg/hr': 'kg h-1',
  km: 'km',
  'm/s': 'm s-1',
  rpm: 'rpm',
};

/** Catalogue `UNITS` to UDUNITS. Counts, enumerations and "no dimension" all become `1`. */
const CATALOGUE_UNITS: Readonly<Record<string, string>> = {
  AMP: 'A',
  CNT: '1',
  DEG: 'degree',
  DEGF: 'degF',
  'FT-LB': 'ft lbf',
  'FT-LB-S': 'ft lbf s',
  FT: 'ft',
  'FT/S': 'ft s-1',
  G: 'standard_free_fall',
  INTEGR: '1',
  KG: 'kg',
  'LBM/D': 'lb day-1',
  M: 'm',
  'M/S': 'm s-1',
  MS: 'ms',
  'N/A': '1',
  ND: '1',
  PCT: '%',
  PSI: 'psi',
  PSIA: 'psi',
  RAD: 'rad',
  'RAD/S': 'rad s-1',
  RPM: 'rpm',
  S: 's',
  YR: '1',
  cm: 'cm',
};

/** The delivered unit of an item; `1` for an item missing from the catalogue. */
export function issUnit(itemId: string, item: IssCatalogueItem | undefined): string {
  const delivered = DELIVERED[itemId];
  if (delivered !== undefined) return delivered;
  if (item === undefined) return '1';
  const hint = /\(([^()]*)\)\s*$/.exec(item.description)?.[1];
  const hinted = hint === undefined ? undefined : DESCRIPTION_HINTS[hint];
  if (hinted !== undefined) return hinted;
  const raw = item.unit?.trim() ?? '';
  return CATALOGUE_UNITS[raw] ?? CATALOGUE_UNITS[raw.toUpperCase()] ?? '1';
}
