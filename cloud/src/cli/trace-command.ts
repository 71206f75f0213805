import type { CloudConfig } from '../config.js';
import { loadDatasets } from '../datasets/dataset-config.js';
import { withPool } from './database.js';
import { parseTraceArgument, type TracePath, tracePathOfReading, tracePathOfTrace } from './trace-path.js';

export interface TraceOptions {
  reading?: string;
  json?: boolean;
}

interface Output {
  write(text: string): unknown;
}

/**
 * `fieldbeam-cloud trace ID` / `trace --reading OBS_ID`: the path of readings from the edge to the
 * dataset versions that contain them. Exit status 0 when found, 1 when the collector has no such
 * trace or reading, 2 for an argument that is neither.
 */
export async function runTraceCommand(
  config: CloudConfig,
  id: string | undefined,
  options: TraceOptions,
  out: Output = process.stdout,
  err: Output = process.stderr,
): Promise<number> {
  const reading = options.reading?.trim().toLowerCase();
  const trace = id === undefined ? undefined : parseTraceArgument(id);
  if ((reading === undefined) === (id === undefined)) {
    err.write('give a trace id (32 hex digits, or a traceparent) or --reading OBS_ID, not both\n');
    return 2;
  }
  if (id !== undefined && trace === undefined) {
    err.write(
      `"${id.slice(0, 80)}" is not a W3C trace-id (32 hex digits, not all zero) nor a traceparent (00-<trace-id>-<span-id>-<flags>)\n`,
    );
    return 2;
  }
  if (reading !== undefined && !/^[0-9a-f]{64}$/.test(reading)) {
    err.write('--reading takes an observation id: 64 hex digits (the ids of an HTTP intake 201, say)\n');
    return 2;
  }
  const defs = loadDatasets(config.FB_DATASETS_FILE);
  const path = await withPool(config, (pool) =>
    trace !== undefined ? tracePathOfTrace(pool, defs, trace) : tracePathOfReading(pool, defs, reading ?? ''),
  );
  if (options.json) out.write(`${JSON.stringify(path, null, 2)}\n`);
  else out.write(formatTracePath(path));
  if (path.readings.length === 0) {
    if (!options.json)
      err.write(
        trace !== undefined
          ? `no reading of trace ${trace} is stored (not ingested yet, from an edge without trace ids, or every reading of it was stored before under another trace)\n`
          : `no reading ${reading} is stored\n`,
      );
    return 1;
  }
  return 0;
}

const value = (r: TracePath['readings'][number]) =>
  r.value !== null ? `${r.value} ${r.unit}` : r.text !== null ? JSON.stringify(r.text) : `null ${r.unit}`;

/** The path as text, one hop after the other. */
export function formatTracePath(p: TracePath): string {
  const lines: string[] = [];
  lines.push(
    p.trace ? `trace ${p.trace}: ${p.readings.length} reading(s)` : `${p.readings.length} reading(s)`,
  );
  if (p.readings.length === 0) return `${lines.join('\n')}\n`;
  lines.push('received at the edge:');
  for (const r of p.readings) {
    lines.push(
      `  ${r.received}  edge ${r.edge}  source ${r.source}  topic ${r.topic ?? '?'}  station ${r.station}${
        r.sensor ? ` sensor ${r.sensor}` : ''
      }`,
    );
    lines.push(
      `    ${r.id}  ${r.variable} = ${value(r)}  at ${r.time}${r.trace && !p.trace ? `  trace ${r.trace}` : ''}`,
    );
  }
  lines.push('batch:');
  if (p.batches.length === 0) lines.push('  (no record of the stored message)');
  for (const b of p.batches) {
    lines.push(
      `  JetStream FB_OBS seq ${b.streamSeq}  edge ${b.edge} buffer ${b.bufferId || '-'} rows ${b.rows[0]}-${b.rows[1]}  (${b.observations} readings, ${b.inserted} new)`,
    );
  }
  lines.push('ingested:');
  const rounds = new Map<string, string>();
  for (const b of p.batches) rounds.set(b.round, b.ingested);
  if (rounds.size === 0) for (const r of p.readings) rounds.set('?', r.ingested);
  for (const [round, at] of rounds) lines.push(`  ${at}  round ${round}`);
  lines.push('windows touched:');
  if (p.windows.length === 0)
    lines.push('  (none yet: no dataset selects it, or its window is not marked yet)');
  for (const w of p.windows) {
    lines.push(
      `  ${w.dataset}  ${w.windowStart} .. ${w.windowEnd}  marked ${w.markedAt} by seq ${w.batch}  (${w.readings} reading(s))`,
    );
  }
  lines.push('dataset versions containing it:');
  if (p.versions.length === 0) lines.push('  (none built since)');
  for (const v of p.versions) {
    lines.push(
      `  ${v.dataset}  ${v.windowStart}  version ${v.version}  built ${v.builtAt}  ${v.provisional ? 'provisional' : 'final'}  ${v.rows} rows  ${v.key}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
