import { Observation } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import {
  API_COLUMNS,
  INGEST_COLUMNS,
  OBSERVATION_FIELDS,
  observationCopyLine,
  STAGE_DDL,
  WINDOW_FIELDS,
} from './observation-fields.js';

const obs: Observation = {
  id: 'a'.repeat(64),
  source: 'mqtt',
  edge: 'gw-1',
  station: 'st\t1',
  variable: 'air_temperature',
  value: 12.5,
  unit: 'degC',
  time: '2026-11-30T12:00:00.000Z',
  received: '2026-11-30T12:00:01.000Z',
  lat: 46.5,
  quality: ['spike', 'a"b\\c'],
};

describe('observation field table', () => {
  it('stores fields of the protocol observation, each once', () => {
    const names = OBSERVATION_FIELDS.map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
    for (const f of OBSERVATION_FIELDS) expect(Object.keys(Observation.shape)).toContain(f.key);
  });

  it('marks as nullable exactly the fields the protocol may leave out or set to null', () => {
    for (const f of OBSERVATION_FIELDS) {
      const schema = Observation.shape[f.key];
      expect(schema.isOptional() || schema.isNullable(), f.name).toBe(f.nullable);
    }
  });

  it('derives the column lists, the staging table and the window columns from one order', () => {
    expect(INGEST_COLUMNS).toBe(
      'id, time, station, sensor, variable, value, text, unit, lat, lon, alt, quality, source, edge, received, trace_id',
    );
    expect(API_COLUMNS).toBe(
      'id, time, station, sensor, variable, value, text, unit, lat, lon, alt, quality, source, edge',
    );
    expect(WINDOW_FIELDS.map((f) => f.name)).toEqual([
      'time',
      'station',
      'sensor',
      'variable',
      'value',
      'text',
      'unit',
      'lat',
      'lon',
      'alt',
      'quality',
      'source',
      'edge',
    ]);
    expect(STAGE_DDL).toContain(
      'seq bigint NOT NULL, id text COLLATE "C" NOT NULL, time timestamptz NOT NULL',
    );
    expect(STAGE_DDL).toContain('sensor text, variable text NOT NULL, value double precision,');
    expect(STAGE_DDL).toContain('quality text[]');
  });

  it('writes one COPY text line in column order, escaped, with \\N for absent fields', () => {
    const line = observationCopyLine(obs);
    expect(line.endsWith('\n')).toBe(true);
    const cells = line.slice(0, -1).split('\t');
    expect(cells).toHaveLength(OBSERVATION_FIELDS.length);
    expect(cells[2]).toBe('st\\t1'); // the tab inside the station is escaped, not a cell break
    expect(cells.slice(-2)).toEqual([obs.received, '\\N']);
    expect(line).toContain('\t\\N\t'); // sensor
    expect(line).toContain('{"spike","a\\\\"b\\\\\\\\c"}');
  });
});
