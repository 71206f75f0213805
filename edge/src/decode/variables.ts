import { own } from './text.js';

/**
 * The one table from field names to CF standard names. A field with no CF name gets a namespaced
 * variable `<family>:<key>` (e.g. `zigbee2mqtt:linkquality`), so two firmwares never share a series
 * by accident. Units are not decided here: they depend on the firmware, and each family file says
 * which unit its devices send for a key.
 */

/** CF standard names used by the decoders. */
export const CF = {
  airTemperature: 'air_temperature',
  dewPoint: 'dew_point_temperature',
  relativeHumidity: 'relative_humidity',
  airPressure: 'air_pressure',
  seaLevelPressure: 'air_pressure_at_mean_sea_level',
  pm1: 'mass_concentration_of_pm1_ambient_aerosol_particles_in_air',
  pm2p5: 'mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air',
  pm10: 'mass_concentration_of_pm10_ambient_aerosol_particles_in_air',
  co2: 'mole_fraction_of_carbon_dioxide_in_air',
  formaldehyde: 'mass_concentration_of_formaldehyde_in_air',
  latitude: 'latitude',
  longitude: 'longitude',
} as const;

/**
 * Keys are field names folded to lower case without separators, so `DewPoint` and `dew_point` meet
 * in one entry. A separator between digits becomes `p` (`PM2.5` -> `pm2p5`, `PM1.0` -> `pm1p0`), so
 * `PM1.0` never folds into `pm10`.
 */
const BY_FIELD: Readonly<Record<string, string>> = {
  temperature: CF.airTemperature,
  airtemperature: CF.airTemperature,
  localtemperature: CF.airTemperature,
  dewpoint: CF.dewPoint,
  humidity: CF.relativeHumidity,
  relativehumidity: CF.relativeHumidity,
  rh: CF.relativeHumidity,
  pressure: CF.airPressure,
  airpressure: CF.airPressure,
  seapressure: CF.seaLevelPressure,
  pm1: CF.pm1,
  pm1p0: CF.pm1,
  pm25: CF.pm2p5,
  pm2p5: CF.pm2p5,
  pm10: CF.pm10,
  co2: CF.co2,
  carbondioxide: CF.co2,
  formaldehyd: CF.formaldehyde,
  formaldehyde: CF.formaldehyde,
  hcho: CF.formaldehyde,
  latitude: CF.latitude,
  lat: CF.latitude,
  longitude: CF.longitude,
  lon: CF.longitude,
};

export function foldFieldName(key: string): string {
  return key
    .toLowerCase()
    .replace(/(\d)[._,](\d)/g, '$1p$2')
    .replace(/[^a-z0-9]/g, '');
}

/** The CF standard name for a field, if it has one. */
export function cfNameFor(key: string): string | undefined {
  return own(BY_FIELD, foldFieldName(key));
}

/** The variable for a field of a family's payload: its CF name, else `<family>:<key>`. */
export function variableFor(family: string, key: string): string {
  return cfNameFor(key) ?? `${family}:${key}`;
}
