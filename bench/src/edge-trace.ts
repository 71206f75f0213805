/**
 * `pnpm bench edge-trace`: what trace ids cost the edge's ingest, measured in one process so that the
 * figure survives a busy machine. Each message goes the agent's way up to the buffer and the wire:
 * MQTT intake (topic match, JSON decoding, observation and id; with trace ids also a new trace-id),
 * the observation's JSON text as the buffer stores it, and a v2 batch of 2,000 rows as the forwarder
 * sends it. Runs with `trace_ids` on and off alternate, and the CPU time per message of each is the
 * median of its runs. Results: bench/results/edge-trace.json.
 */
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createEdgeMetrics, createMqttIngest, type MqttIngest, SensorMap } from '@fieldbeam/edge';
import { encodeBatchV2 } from '@fieldbeam/protocol';
import pino from 'pino';
import { formatTable } from './lib/table.js';

const here = dirname(fileURLToPath(import.meta.url));
const BATCH = 2000;

function pipeline(traceIds: boolean): { ingest: MqttIngest; flush: () => number } {
  let rows: string[] = [];
  let bytes = 0;
  let seq = 1;
  const send = () => {
    if (rows.length === 0) return;
    const head = {
      edge: 'bench-edge',
      seq: [seq, seq + rows.length - 1] as [number, number],
      sent: new Date().toISOString(),
    };
    bytes += encodeBatchV2(head, rows).length;
    seq += rows.length;
    rows = [];
  };
  const map = new SensorMap([
    {
      topic: 'bench/+station/env',
      decoder: {
        type: 'json',
        fields: {
          seq: { variable: 'bench_sequence', unit: '1' },
          t: { variable: 'air_temperature', unit: 'degC' },
        },
      },
    },
  ]);
  const ingest = createMqttIngest({
    edge: 'bench-edge',
    sensors: () => map,
    sink: {
      submit: async (obs) => {
        for (const o of obs) rows.push(JSON.stringify(o));
        if (rows.length >= BATCH) send();
        return 'stored';
      },
    },
    rejects: { reject: () => {} },
    metrics: createEdgeMetrics(),
    log: pino({ level: 'silent' }),
    maxPayloadBytes: 256 * 1024,
    maxReadingsPerMessage: 500,
    clockUnsynced: () => false,
    traceIds,
  });
  return {
    ingest,
    flush: () => {
      send();
      return bytes;
    },
  };
}

async function run(
  traceIds: boolean,
  messages: number,
): Promise<{ usPerMsg: number; bytesPerReading: number }> {
  const { ingest, flush } = pipeline(traceIds);
  const payloads = Array.from({ length: 64 }, (_, i) =>
    Buffer.from(`{"seq":${i},"t":${(20 + i / 10).toFixed(1)}}`),
  );
  const cpu = process.cpuUsage();
  for (let i = 0; i < messages; i++) {
    await ingest(`bench/st${i % 50}/env`, payloads[i % 64] as Buffer);
  }
  const bytes = flush();
  const used = process.cpuUsage(cpu);
  return { usPerMsg: (used.user + used.system) / messages, bytesPerReading: bytes / (messages * 2) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

export async function runEdgeTraceSuite(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { quick: { type: 'boolean', default: false }, runs: { type: 'string' } },
  });
  const messages = values.quick ? 20_000 : 100_000;
  const runs = Number(values.runs ?? (values.quick ? 3 : 7));
  await run(true, 10_000);
  await run(false, 10_000);
  const on: { usPerMsg: number; bytesPerReading: number }[] = [];
  const off: { usPerMsg: number; bytesPerReading: number }[] = [];
  for (let i = 0; i < runs; i++) {
    on.push(await run(true, messages));
    off.push(await run(false, messages));
  }
  const usOn = median(on.map((r) => r.usPerMsg));
  const usOff = median(off.map((r) => r.usPerMsg));
  const overhead = (usOn / usOff - 1) * 100;
  const result = {
    messages,
    runs,
    cpu_us_per_msg: { trace_ids: Number(usOn.toFixed(2)), no_trace_ids: Number(usOff.toFixed(2)) },
    overhead_pct: Number(overhead.toFixed(1)),
    target_pct: 5,
    wire_bytes_per_reading: {
      trace_ids: Number(median(on.map((r) => r.bytesPerReading)).toFixed(2)),
      no_trace_ids: Number(median(off.map((r) => r.bytesPerReading)).toFixed(2)),
    },
    all_runs_us: {
      trace_ids: on.map((r) => Number(r.usPerMsg.toFixed(2))),
      no_trace_ids: off.map((r) => Number(r.usPerMsg.toFixed(2))),
    },
  };
  process.stdout.write(
    `${formatTable([
      ['', 'trace_ids: true', 'trace_ids: false'],
      ['CPU us per message (median)', usOn.toFixed(2), usOff.toFixed(2)],
      [
        'v2 wire bytes per reading',
        String(result.wire_bytes_per_reading.trace_ids),
        String(result.wire_bytes_per_reading.no_trace_ids),
      ],
    ])}\noverhead of trace ids: ${overhead.toFixed(1)}% of the intake-to-wire CPU per message (target < 5%)\n`,
  );
  const out = resolve(here, '../results', values.quick ? 'edge-trace.quick.json' : 'edge-trace.json');
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
}
