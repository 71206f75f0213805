import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import golden from './golden-ids.json' with { type: 'json' };
import { type ObservationKey, observationId } from './observation-id.js';

describe('observationId', () => {
  it.each(golden.vectors)('matches golden vector %#', ({ input, id }) => {
    expect(observationId(input as ObservationKey)).toBe(id);
  });

  it('is the SHA-256 of the documented canonical form', () => {
    const canonical =
      '["fb-obs-1","mqtt","greenhouse",null,"air_temperature","2026-11-30T12:00:00.000Z",21.5,null]';
    expect(
      observationId({
        source: 'mqtt',
        station: 'greenhouse',
        variable: 'air_temperature',
        time: '2026-11-30T12:00:00.000Z',
        value: 21.5,
      }),
    ).toBe(createHash('sha256').update(canonical).digest('hex'));
  });

  const base: ObservationKey = {
    source: 'mqtt',
    station: 's',
    variable: 'air_temperature',
    time: '2026-11-30T12:00:00.000Z',
    value: 1,
  };

  it('changes with every identifying field', () => {
    const ids = new Set([
      observationId(base),
      observationId({ ...base, source: 'isslive' }),
      observationId({ ...base, station: 't' }),
      observationId({ ...base, sensor: 'x' }),
      observationId({ ...base, variable: 'relative_humidity' }),
      observationId({ ...base, time: '2026-11-30T12:00:00.001Z' }),
      observationId({ ...base, value: 1.0000001 }),
      observationId({ ...base, value: null, text: '1' }),
    ]);
    expect(ids.size).toBe(8);
  });

  it('treats -0 as 0 and an empty sensor as absent only when undefined', () => {
    expect(observationId({ ...base, value: -0 })).toBe(observationId({ ...base, value: 0 }));
    expect(observationId({ ...base, sensor: undefined })).toBe(observationId(base));
  });

  it('cannot be confused by separators inside fields', () => {
    expect(observationId({ ...base, station: 'a","b' })).not.toBe(
      observationId({ ...base, station: 'a', sensor: 'b' }),
    );
  });
});
