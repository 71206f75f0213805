import { describe, expect, it } from 'vitest';
import { canonicalUnit, decimalsOf, shiftDecimal, toCanonical } from './units.js';

describe('toCanonical', () => {
  it.each([
    // [value, from, expected value, canonical unit]
    [2995, 'mV', 2.995, 'V'],
    [3045, 'mV', 3.045, 'V'],
    [0.66, 'kWh', 660, 'Wh'],
    [6.294, 'kWh', 6294, 'Wh'],
    [9098.245, 'kWh', 9098245, 'Wh'],
    [0.001, 'kWh', 1, 'Wh'],
    [198.422, 'mWh', 0.198422, 'Wh'],
    [1086.43, 'kΩ', 1086430, 'ohm'],
    [103342.53, 'Pa', 1033.4253, 'hPa'],
    [101.3, 'kPa', 1013, 'hPa'],
    [1013.25, 'mbar', 1013.25, 'hPa'],
    [1, 'mg/m3', 1000, 'ug m-3'],
    [2.1, 'µg/m³', 2.1, 'ug m-3'],
    [2.1, 'μg/m³', 2.1, 'ug m-3'],
    [363, 'ppm', 363, '1e-6'],
    [2, 'ppb', 2, '1e-9'],
    [21.7, '°C', 21.7, 'degC'],
    [23.1, 'Cel', 23.1, 'degC'],
    [58, '%RH', 58, '%'],
    [1, '/', 1, '1'],
    [116, 'lqi', 116, '1'],
    [2650, 'VA', 2650, 'V A'],
    [282, 'VAr', 282, 'var'],
    [60.07965, 'lat', 60.07965, 'degrees_north'],
  ])('%s %s -> %s %s, exactly', (value, from, want, unit) => {
    expect(toCanonical(value, from)).toEqual({ value: want, unit, known: true });
  });

  it('converts degF to degC keeping the input resolution, without float noise', () => {
    expect(toCanonical(78.8, '°F').value).toBe(26);
    expect(toCanonical(74.8, '°F').value).toBe(23.78);
    expect(toCanonical(66.2, 'degF').value).toBe(19);
    expect(toCanonical(32, '°F').value).toBe(0);
    expect(toCanonical(-40, '°F').value).toBe(-40);
    expect(toCanonical(96.35, '°F').value).toBe(35.75);
    expect(toCanonical(212, '°F')).toEqual({ value: 100, unit: 'degC', known: true });
  });

  it('converts K, watt-minutes, mmHg and inHg with rounding to a sensible precision', () => {
    expect(toCanonical(300, 'K').value).toBe(26.85);
    expect(toCanonical(273.15, 'K').value).toBe(0);
    expect(toCanonical(60, 'Wmin')).toEqual({ value: 1, unit: 'Wh', known: true });
    expect(toCanonical(4107, 'Wmin').value).toBe(68.45);
    expect(toCanonical(1, 'Wmin').value).toBe(0.0167);
    expect(toCanonical(0, 'Wmin').value).toBe(0);
    expect(toCanonical(760, 'mmHg').value).toBe(1013.25);
    expect(toCanonical(29.92, 'inHg').value).toBe(1013.21);
    expect(toCanonical(5, 'min').value).toBe(300);
  });

  it('passes an unknown unit through unchanged and says so', () => {
    expect(toCanonical(5, 'furlong')).toEqual({ value: 5, unit: 'furlong', known: false });
    expect(toCanonical(5, '')).toEqual({ value: 5, unit: '', known: false });
  });

  it('never turns -0 into a value', () => {
    expect(Object.is(toCanonical(-0.001, '°F').value, -0)).toBe(false);
  });

  it('knows the canonical unit of a symbol', () => {
    expect(canonicalUnit('hPa')).toBe('hPa');
    expect(canonicalUnit('kWh')).toBe('Wh');
    expect(canonicalUnit('nope')).toBeUndefined();
  });
});

describe('decimal helpers', () => {
  it('counts decimals, including exponent forms', () => {
    expect(decimalsOf(2.995)).toBe(3);
    expect(decimalsOf(100)).toBe(0);
    expect(decimalsOf(1e-7)).toBe(7);
    expect(decimalsOf(-0.5)).toBe(1);
  });

  it('shifts by powers of ten on the decimal text', () => {
    expect(shiftDecimal(2995, -3)).toBe(2.995);
    expect(shiftDecimal(0.1, 1)).toBe(1);
    expect(shiftDecimal(1.1, 2)).toBe(110); // 1.1 * 100 would be 110.00000000000001
    expect(shiftDecimal(1e21, 3)).toBe(1e24);
    expect(shiftDecimal(-4.7, -1)).toBe(-0.47);
  });
});
