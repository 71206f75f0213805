/**
 * The metric names a PromQL expression (or a Grafana `label_values(...)` query) reads. Enough PromQL
 * for dashboards: strings, label matchers, ranges, Grafana variables, numbers and grouping label lists
 * are removed; what is left that names no function or keyword is a metric name.
 */
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

export function promqlMetricNames(expr: string): string[] {
  // label_values(label) names no metric; label_values(expr, label) reads expr's metrics.
  const labelValues = /^\s*label_values\(\s*(?:(.*?)\s*,\s*)?[A-Za-z_]\w*\s*\)\s*$/.exec(expr);
  if (labelValues) return labelValues[1] ? promqlMetricNames(labelValues[1]) : [];
  const rest = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+\S+/g, ' ')
    .replace(/(?<![\w:])\d[\w.+-]*/g, ' ');
  const names = new Set<string>();
  for (const m of rest.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const after = rest.slice((m.index ?? 0) + m[0].length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

/** Every PromQL expression of a Grafana dashboard: panel targets (rows' panels included) and query variables. */
export function dashboardExpressions(dashboard: unknown): string[] {
  const out: string[] = [];
  const d = dashboard as {
    panels?: { targets?: { expr?: string }[]; panels?: unknown[] }[];
    templating?: { list?: { type?: string; query?: string | { query?: string } }[] };
  };
  const visit = (panels: { targets?: { expr?: string }[]; panels?: unknown[] }[] = []) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) if (t.expr) out.push(t.expr);
      visit(p.panels as typeof panels);
    }
  };
  visit(d.panels);
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    if (q) out.push(q);
  }
  return out;
}

/** Metric families of a Prometheus text exposition, from its `# TYPE` lines: name -> type. */
export function metricFamilies(text: string): Map<string, string> {
  const families = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(m[1] as string, m[2] as string);
  return families;
}

/** Whether `name` is a series of one of `families`: the family itself, or a histogram's or summary's parts. */
export function isExposed(name: string, families: ReadonlyMap<string, string>): boolean {
  if (families.has(name)) return true;
  const part = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (!part?.[1]) return false;
  const type = families.get(part[1]);
  return type === 'histogram' || (type === 'summary' && part[2] !== 'bucket');
}
