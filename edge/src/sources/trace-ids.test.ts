import type { Observation, SensorConfig } from '@fieldbeam/protocol';
import { isTraceId, observationId } from '@fieldbeam/protocol';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createEdgeMetrics } from '../metrics.js';
import type { MqttSink } from '../readings.js';
import { toObservation } from '../readings.js';
import { newTraceId } from '../trace-ids.js';
import { createMqttIngest } from './mqtt-ingest.js';
import { SensorMap } from './sensor-map.js';

const sensors: SensorConfig[] = [
  {
    topic: 'sensors/+station/env',
    decoder: {
      type: 'json',
      fields: {
        t: { variable: 'air_temperature', unit: 'Cel' },
        h: { variable: 'relative_humidity', unit: '%' },
      },
      time: 'time',
    },
  },
];
const bytes = (s: string) => new TextEncoder().encode(s);

function ingestWith(traceIds?: boolean) {
  const stored: Observation[][] = [];
  const sink: MqttSink = {
    submit: async (obs) => {
      stored.push(obs);
      return 'stored';
    },
  };
  const map = new SensorMap(sensors);
  const ingest = createMqttIngest({
    edge: 'gw-1',
    sensors: () => map,
    sink,
    rejects: { reject: () => {} },
    metrics: createEdgeMetrics(),
    log: pino({ level: 'silent' }),
    maxPayloadBytes: 1024,
    maxReadingsPerMessage: 10,
    clockUnsynced: () => false,
    ...(traceIds === undefined ? {} : { traceIds }),
  });
  return { ingest, stored };
}

describe('trace ids at intake', () => {
  it('newTraceId gives distinct valid W3C trace-ids', () => {
    const ids = new Set(Array.from({ length: 2000 }, () => newTraceId()));
    expect(ids.size).toBe(2000);
    for (const id of ids) expect(isTraceId(id)).toBe(true);
  });

  it('the readings of one MQTT message share one trace; each message has its own', async () => {
    const { ingest, stored } = ingestWith();
    await ingest('sensors/barn/env', bytes('{"t":21.5,"h":60}'));
    await ingest('sensors/barn/env', bytes('{"t":21.6,"h":61}'));
    const [first, second] = stored;
    expect(first).toHaveLength(2);
    const trace = first?.[0]?.trace;
    expect(isTraceId(trace)).toBe(true);
    expect(first?.[1]?.trace).toBe(trace);
    expect(second?.[0]?.trace).not.toBe(trace);
  });

  it('the same reading in two messages keeps its id, whatever its trace', async () => {
    const { ingest, stored } = ingestWith();
    await ingest('sensors/barn/env', bytes('{"t":21.5,"time":"2026-12-01T12:00:00Z"}'));
    await ingest('sensors/barn/env', bytes('{"t":21.5,"time":"2026-12-01T12:00:00Z"}'));
    expect(stored[0]?.[0]?.id).toBe(stored[1]?.[0]?.id);
    expect(stored[0]?.[0]?.trace).not.toBe(stored[1]?.[0]?.trace);
  });

  it('trace_ids off: no trace on the readings', async () => {
    const { ingest, stored } = ingestWith(false);
    await ingest('sensors/barn/env', bytes('{"t":21.5}'));
    expect(stored[0]?.[0]).toBeDefined();
    expect(stored[0]?.[0]).not.toHaveProperty('trace');
  });

  it('toObservation puts the origin trace last, outside the id', () => {
    const origin = { source: 'mqtt', edge: 'gw-1', station: 'barn' };
    const reading = { variable: 'air_temperature', value: 1, unit: 'Cel', timeMs: 0 };
    const plain = toObservation(origin, reading, 5);
    const traced = toObservation({ ...origin, trace: 'ab'.repeat(16) }, reading, 5);
    expect(traced.id).toBe(plain.id);
    expect(Object.keys(traced).at(-1)).toBe('trace');
    expect(plain.id).toBe(
      observationId({
        source: 'mqtt',
        station: 'barn',
        variable: 'air_temperature',
        time: plain.time,
        value: 1,
      }),
    );
  });
});
