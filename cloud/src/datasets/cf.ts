/**
 * CF metadata of dataset files: the one table from the variable names observations carry to CF
 * standard names, and the field metadata built from it.
 *
 * The edge's decoders already name a variable by its CF standard name where the field has one
 * (edge/src/decode/variables.ts: `air_temperature`, `relative_humidity`, ...); other fields are
 * `<family>:<key>` and ISS telemetry is `iss:<item>` (edge/src/iss). Units are the readings' own:
 * the edge writes them as UDUNITS symbols (`degC`, `hPa`, `ug m-3`, `1e-6`), which is what CF's
 * `units` wants, so they are passed through, never converted here.
 */

/** CF standard names the decoders produce as variables (edge/src/decode/variables.ts, `CF`). */
const CF_NAMED = [
  'air_temperature',
  'dew_point_temperature',
  'relative_humidity',
  'air_pressure',
  'air_pressure_at_mean_sea_level',
  'mass_concentration_of_pm1_ambient_aerosol_particles_in_air',
  'mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air',
  'mass_concentration_of_pm10_ambient_aerosol_particles_in_air',
  'mole_fraction_of_carbon_dioxide_in_air',
  'mass_concentration_of_formaldehyde_in_air',
  'latitude',
  'longitude',
] as const;

/**
 * Variables whose name is not itself a CF standard name but whose quantity has one: ISS cabin
 * telemetry (ISS catalogue: USLAB000058 "Cabin pressure", delivered in mmHg; USLAB000059 "Cabin
 * temperature", degC). The partial pressures (ppO2, ppN2, ppCO2) have no CF standard name.
 */
const CF_BY_VARIABLE: Readonly<Record<string, string>> = {
  'iss:USLAB000058': 'air_pressure',
  'iss:USLAB000059': 'air_temperature',
};

const NAMED = new Set<string>(CF_NAMED);

/** The CF standard name of a variable, if it has one. */
export function cfStandardName(variable: string): string | undefined {
  if (NAMED.has(variable)) return variable;
  return Object.hasOwn(CF_BY_VARIABLE, variable) ? CF_BY_VARIABLE[variable] : undefined;
}

/**
 * Field metadata of a column that holds the values of several variables (the long layout: one row per
 * reading or interval, the variable in its own column): `standard_name_by_variable` and
 * `units_by_variable`, JSON objects keyed by variable. A variable whose readings in the file come in
 * more than one unit has no `units` entry (the `unit` column gives each row's); one without a CF
 * standard name has no `standard_name` entry. `cell_methods` as CF writes it, for statistics.
 */
export function cfValueMetadata(
  variableUnits: Iterable<readonly [string, string]>,
  cellMethods?: string,
): Map<string, string> {
  const names: Record<string, string> = {};
  const units = new Map<string, string | null>();
  for (const [variable, unit] of variableUnits) {
    const name = cfStandardName(variable);
    if (name) names[variable] = name;
    const seen = units.get(variable);
    units.set(variable, seen === undefined || seen === unit ? unit : null);
  }
  const unitOf: Record<string, string> = {};
  for (const [variable, unit] of [...units].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (unit !== null) unitOf[variable] = unit;
  }
  const sortedNames = Object.fromEntries(Object.entries(names).sort(([a], [b]) => (a < b ? -1 : 1)));
  const out = new Map([
    ['standard_name_by_variable', JSON.stringify(sortedNames)],
    ['units_by_variable', JSON.stringify(unitOf)],
  ]);
  if (cellMethods) out.set('cell_methods', cellMethods);
  return out;
}

/** Field metadata of the columns that mean one thing in every row. */
export const CF_COORDINATES: Readonly<Record<string, Map<string, string>>> = {
  time: new Map([['standard_name', 'time']]),
  lat: new Map([
    ['standard_name', 'latitude'],
    ['units', 'degrees_north'],
  ]),
  lon: new Map([
    ['standard_name', 'longitude'],
    ['units', 'degrees_east'],
  ]),
  alt: new Map([
    ['standard_name', 'altitude'],
    ['units', 'm'],
  ]),
};

/** Counts (readings per interval) are dimensionless. */
export const CF_COUNT = new Map([['units', '1']]);
