import type { ScenarioResult } from './scenarios.js';

const HEAD = [
  'scenario',
  'acknowledged',
  'stored',
  'lost',
  'duplicated',
  'recover (s)',
  'peak buffer',
  'worst stall (s)',
  'result',
];

export function recoveryCell(recoveries: (number | null)[]): string {
  if (recoveries.length === 0) return '-';
  if (recoveries.some((r) => r === null)) return 'timeout';
  return Math.max(...(recoveries as number[])).toFixed(1);
}

function resultCell(r: ScenarioResult): string {
  if (!r.ok) return 'FAIL';
  return r.expectedLost > 0 ? `ok (${r.expectedLost} dropped)` : 'ok';
}

/** The results as a plain-text table, then the notes of each row. */
export function formatTable(results: ScenarioResult[]): string {
  const rows = results.map((r) => [
    r.scenario,
    String(r.acked),
    String(r.stored),
    String(r.lost),
    String(r.duplicated),
    recoveryCell(r.recoveries),
    String(r.peakBuffer),
    r.worstStall === undefined ? '-' : r.worstStall.toFixed(1),
    resultCell(r),
  ]);
  const widths = HEAD.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) =>
        i === 0 || i === cells.length - 1 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0),
      )
      .join('  ')
      .trimEnd();
  const out = [line(HEAD), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  const notes: string[] = [];
  for (const r of results) {
    const recs =
      r.recoveries.length > 1
        ? [`recoveries ${r.recoveries.map((x) => (x === null ? 'timeout' : x.toFixed(1))).join(' / ')} s`]
        : [];
    const all = [...recs, ...r.notes, ...r.failures.map((f) => `FAIL: ${f}`)];
    if (r.seconds > 0) all.push(`${r.seconds.toFixed(0)} s`);
    notes.push(`  ${r.scenario}: ${all.join('; ')}`);
  }
  return `${out.join('\n')}\n\n${notes.join('\n')}\n`;
}
