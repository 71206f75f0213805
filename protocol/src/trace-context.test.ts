import { describe, expect, it } from 'vitest';
import { Observation } from './observation.js';
import { observationId } from './observation-id.js';
import { isTraceId, traceIdOfTraceparent, traceparent } from './trace-context.js';

const ID = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('trace context', () => {
  it('takes the trace-id of a valid traceparent', () => {
    expect(traceIdOfTraceparent(`00-${ID}-00f067aa0ba902b7-01`)).toBe(ID);
    expect(traceIdOfTraceparent(`00-${ID}-00f067aa0ba902b7-00`)).toBe(ID);
    // A later version may carry more fields after the flags.
    expect(traceIdOfTraceparent(`01-${ID}-00f067aa0ba902b7-01-extra`)).toBe(ID);
    expect(traceIdOfTraceparent(traceparent(ID, '00f067aa0ba902b7'))).toBe(ID);
  });

  it('refuses what the spec calls invalid, so a new trace is started', () => {
    for (const bad of [
      undefined,
      '',
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-${ID}-${'0'.repeat(16)}-01`,
      `ff-${ID}-00f067aa0ba902b7-01`,
      `00-${ID}-00f067aa0ba902b7-01-extra`,
      `00-${ID.toUpperCase()}-00f067aa0ba902b7-01`,
      `00-${ID}-00f067aa0ba902b7`,
      `00-${ID}x-00f067aa0ba902b7-01`,
      `00-${ID}-00f067aa0ba902b7-01${'x'.repeat(600)}`,
    ]) {
      expect(traceIdOfTraceparent(bad)).toBeUndefined();
    }
  });

  it('an observation may carry a trace-id, which leaves its id as it is', () => {
    const key = {
      source: 'mqtt',
      station: 'barn',
      variable: 'air_temperature',
      value: 21.5,
      time: '2026-11-30T12:00:00.000Z',
    };
    const o = {
      id: observationId(key),
      edge: 'gw-1',
      ...key,
      unit: 'degC',
      received: key.time,
      trace: ID,
    };
    expect(Observation.safeParse(o).success).toBe(true);
    expect(observationId(o)).toBe(observationId(key));
    for (const trace of ['0'.repeat(32), ID.toUpperCase(), `00-${ID}-00f067aa0ba902b7-01`, 1]) {
      expect(Observation.safeParse({ ...o, trace }).success).toBe(false);
    }
    expect(isTraceId(ID)).toBe(true);
  });
});
