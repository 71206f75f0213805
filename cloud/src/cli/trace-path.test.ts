import { describe, expect, it } from 'vitest';
import { parseTraceArgument, topicOf } from './trace-path.js';

const ID = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('trace path', () => {
  it('takes a trace-id in any case, or the trace-id of a traceparent', () => {
    expect(parseTraceArgument(ID)).toBe(ID);
    expect(parseTraceArgument(ID.toUpperCase())).toBe(ID);
    expect(parseTraceArgument(`00-${ID}-00f067aa0ba902b7-01`)).toBe(ID);
    expect(parseTraceArgument('0'.repeat(32))).toBeUndefined();
    expect(parseTraceArgument('a'.repeat(64))).toBeUndefined();
  });

  it('names the topic from the sensor of the station, a +station level written out', () => {
    const r = { source: 'mqtt', station: 'barn', variable: 'air_temperature' };
    expect(topicOf(r, [{ topic: 'sensors/+station/env' }])).toBe('sensors/barn/env');
    expect(
      topicOf(r, [
        { topic: 'tele/shed/SENSOR', station: 'shed' },
        { topic: 'x/barn', station: 'barn' },
      ]),
    ).toBe('x/barn');
    // Two sensors could have given it: the heartbeat does not tell which.
    expect(topicOf(r, [{ topic: 'a/+station' }, { topic: 'b/+station' }])).toBeNull();
    expect(topicOf(r, [])).toBeNull();
    expect(topicOf({ source: 'isslive', station: 'ISS', variable: 'iss:USLAB000058' }, [])).toBe(
      'ISSLIVE USLAB000058',
    );
  });
});
