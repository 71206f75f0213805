import type pg from 'pg';
import type { CloudConfig } from '../config.js';
import { loadDatasets } from '../datasets/dataset-config.js';
import { windowToRebuild } from '../datasets/rebuild.js';
import { WindowStore } from '../datasets/window-store.js';
import { parseWindowKey, windowKey, windowStartOf } from '../datasets/windows.js';
import { withPool } from './database.js';

const iso = (d: Date | null) => (d ? d.toISOString().replace('.000Z', 'Z') : '-');

/** The options of `datasets`, as parsed. */
export interface DatasetsOptions {
  dataset?: string;
  window?: string;
  limit: number;
  json?: boolean;
}

/**
 * `fieldbeam-cloud datasets`: the configured datasets and their windows; with `window`, that window's
 * versions and the batches that touched it.
 */
export async function showDatasets(config: CloudConfig, values: DatasetsOptions): Promise<number> {
  const defs = loadDatasets(config.FB_DATASETS_FILE);
  const limit = values.limit;
  return withPool(config, async (pool) => {
    const store = new WindowStore(pool);
    if (values.window) {
      const def = defs.find((d) => d.name === values.dataset);
      const at = parseWindowKey(values.window);
      if (!def || at === undefined) {
        process.stderr.write(
          '--window needs --dataset NAME (configured) and a time such as 2026-11-30T12:00:00Z\n',
        );
        return 2;
      }
      const start = new Date(windowStartOf(at, def.window));
      const versions = await store.versions(def.name, start);
      const marks = await store.marks(def.name, start);
      const rounds = await ingestRounds(
        pool,
        marks.map((m) => m.batch),
      );
      if (values.json) {
        const traced = marks.map((m) => ({ ...m, ...rounds.get(m.batch) }));
        process.stdout.write(
          `${JSON.stringify({ dataset: def.name, start, versions, marks: traced }, null, 2)}\n`,
        );
        return 0;
      }
      process.stdout.write(`${def.name} ${iso(start)}\nversions:\n`);
      for (const v of versions) {
        process.stdout.write(
          `  ${v.version}  rows ${v.rows}  ${v.provisional ? 'provisional' : 'final'}  gen ${v.generation}  ${iso(v.builtAt)}  by ${v.builtBy}  ${v.key}  sha256 ${v.sha256}\n`,
        );
      }
      process.stdout.write('batches that touched it (audit):\n');
      for (const m of marks) {
        const r = rounds.get(m.batch);
        const traced = r
          ? `  round ${r.round}  traces ${r.traces.length}${r.traces.length > 0 ? ` (${r.traces.slice(0, 3).join(' ')}${r.traces.length > 3 ? ' ...' : ''})` : ''}`
          : '';
        process.stdout.write(
          `  ${iso(m.at)}  ${m.batch}  edge ${m.edge || '-'}  new rows ${m.inserted}${traced}\n`,
        );
      }
      return 0;
    }
    const rows = await store.windows({ ...(values.dataset ? { dataset: values.dataset } : {}), limit });
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ datasets: defs, windows: rows }, null, 2)}\n`);
      return 0;
    }
    for (const d of defs) {
      if (values.dataset && d.name !== values.dataset) continue;
      const f = d.filter;
      process.stdout.write(
        `${d.name}: window ${d.window / 1000}s, grace ${d.grace / 1000}s, debounce ${d.debounce / 1000}s` +
          `${d.maxDelay !== undefined ? `, max_delay ${d.maxDelay / 1000}s` : ''}` +
          `${d.provisional ? ', provisional builds' : ''}` +
          `${d.aggregate ? `, ${d.aggregate.stats.join('/')} every ${d.aggregate.every / 1000}s` : ''}` +
          `; sources ${f.sources?.join(',') ?? 'any'}, ` +
          `stations ${f.stations?.join(',') ?? 'any'}, variables ${f.variables?.join(',') ?? 'any'}\n`,
      );
    }
    const table = [
      ['DATASET', 'WINDOW', 'STATE', 'VERSION', 'GEN/BUILT', 'FINAL', 'DUE', 'LEASE', 'ERROR'],
      ...rows.map((w) => [
        w.dataset,
        iso(w.windowStart),
        w.state,
        w.version === null ? '-' : String(w.version),
        `${w.generation}/${w.builtGeneration}`,
        w.final ? 'yes' : 'no',
        iso(w.dueAt),
        w.leaseOwner ?? '-',
        w.lastError ? w.lastError.slice(0, 60) : '',
      ]),
    ];
    const widths = table[0]?.map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length))) ?? [];
    process.stdout.write(
      `\n${table
        .map((r) =>
          r
            .map((c, i) => c.padEnd(widths[i] ?? 0))
            .join('  ')
            .trimEnd(),
        )
        .join('\n')}\n`,
    );
    if (rows.length === 0) process.stdout.write('(no windows yet)\n');
    return 0;
  });
}

/**
 * The ingest round and trace-ids of each stream message a window's marks name (`FB_OBS:<seq>`), from
 * `ingest_batches`: the window's audit trail down to the traces that touched it.
 */
async function ingestRounds(
  pool: pg.Pool,
  batches: readonly string[],
): Promise<Map<string, { round: string; ingested: Date; traces: string[] }>> {
  const seqs = batches.filter((b) => /^FB_OBS:\d+$/.test(b)).map((b) => b.slice('FB_OBS:'.length));
  if (seqs.length === 0) return new Map();
  const r = await pool.query<{ stream_seq: string; round: string; ingested: Date; traces: string[] }>(
    'SELECT stream_seq, round, ingested, traces FROM ingest_batches WHERE stream_seq = ANY($1::bigint[])',
    [seqs],
  );
  return new Map(
    r.rows.map((row) => [
      `FB_OBS:${row.stream_seq}`,
      { round: row.round, ingested: row.ingested, traces: row.traces },
    ]),
  );
}

/** `fieldbeam-cloud rebuild`: makes a window due now; a running collector builds it. */
export async function requestRebuild(config: CloudConfig, name: string, window: string): Promise<number> {
  const target = windowToRebuild(loadDatasets(config.FB_DATASETS_FILE), name, window);
  if ('error' in target) {
    process.stderr.write(
      `${target.error}; datasets file: ${config.FB_DATASETS_FILE ?? '(FB_DATASETS_FILE unset)'}\n`,
    );
    return 2;
  }
  const { def, start } = target;
  await withPool(config, (pool) =>
    new WindowStore(pool).requestRebuild(def, start, new Date().toISOString()),
  );
  process.stdout.write(
    `window ${windowKey(start)} of ${name} is due now; a running collector will build it\n`,
  );
  return 0;
}
