import { isIsoTime, observationId } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import { observationProblem, toObservation } from './readings.js';

const origin = { source: 'mqtt', edge: 'gw-1', station: 'st-1' };
const received = Date.parse('2026-12-01T12:00:00.000Z');
const range = { maxAgeMs: 7 * 86_400_000, maxFutureMs: 600_000 };
const reading = (timeMs?: number) => ({
  variable: 'air_temperature',
  value: 21.5,
  unit: 'degC',
  ...(timeMs === undefined ? {} : { timeMs }),
});

describe('toObservation', () => {
  it('keeps a sensor time inside the accepted range', () => {
    const o = toObservation(origin, reading(received - 3_600_000), received, { acceptedTime: range });
    expect(o.time).toBe('2026-12-01T11:00:00.000Z');
    expect(o.quality).toBeUndefined();
  });

  it('stamps receipt time on a sensor time outside the range, and flags it', () => {
    for (const t of [received - 8 * 86_400_000, received + 3_600_000, Date.parse('2099-01-01T00:00:00Z')]) {
      const o = toObservation(origin, reading(t), received, { acceptedTime: range });
      expect(o.time).toBe('2026-12-01T12:00:00.000Z');
      expect(o.quality).toEqual(['time_out_of_range']);
      expect(o.id).toBe(
        observationId({
          source: 'mqtt',
          station: 'st-1',
          variable: 'air_temperature',
          time: o.time,
          value: 21.5,
        }),
      );
    }
  });

  it('leaves sensor times alone when no range is given (clock not trusted)', () => {
    const o = toObservation(origin, reading(received + 86_400_000), received);
    expect(o.time).toBe('2026-12-02T12:00:00.000Z');
  });

  it('never writes a time that is not a real instant', () => {
    for (const t of [Number.NaN, 1.5, -1, 1e16, Number.POSITIVE_INFINITY]) {
      const o = toObservation(origin, reading(t), received);
      expect(isIsoTime(o.time)).toBe(true);
      expect(o.quality).toEqual(['time_invalid']);
    }
  });
});

describe('observationProblem', () => {
  it('names text Postgres cannot store, and passes the rest', () => {
    const ok = toObservation(origin, { variable: 'state', value: null, text: 'hot', unit: '' }, received);
    expect(observationProblem(ok)).toBeUndefined();
    const nul = toObservation(
      origin,
      { variable: 'state', value: null, text: 'hot\u0000x', unit: '' },
      received,
    );
    expect(observationProblem(nul)).toMatch(/^text of "state" contains the NUL character/);
    const lone = toObservation({ ...origin, station: 'st-\ud800' }, reading(), received);
    expect(observationProblem(lone)).toMatch(
      /^station of "air_temperature" contains a lone UTF-16 surrogate/,
    );
  });
});
