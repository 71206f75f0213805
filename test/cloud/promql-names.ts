import { parse } from 'yaml';

/** PromQL words that are not metric names: functions, aggregations, operators, keywords. */
const NOT_METRICS = new Set([
  ...['sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'group'],
  ...['count_values', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset'],
  ...['and', 'or', 'unless', 'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'abs', 'absent'],
  ...['absent_over_time', 'ceil', 'floor', 'round', 'clamp', 'clamp_min', 'clamp_max', 'time', 'vector'],
  ...['scalar', 'sort', 'sort_desc', 'label_replace', 'label_join', 'histogram_quantile', 'changes'],
  ...['resets', 'timestamp', 'predict_linear', 'max_over_time', 'min_over_time', 'avg_over_time'],
  ...['sum_over_time', 'count_over_time', 'last_over_time', 'present_over_time', 'inf', 'nan'],
]);

/**
 * The metric names the `expr` of every rule of a Prometheus rules file refers to: what is left of
 * each expression once strings, label matchers, range selectors, grouping label lists, numbers and
 * PromQL's own words are taken out.
 */
export function promQlMetricNames(rulesYaml: string): string[] {
  const doc = parse(rulesYaml) as { groups: { rules: { expr: string }[] }[] };
  const names = new Set<string>();
  for (const group of doc.groups) {
    for (const rule of group.rules) {
      const expr = String(rule.expr)
        .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ')
        .replace(/\{[^}]*\}/g, ' ')
        .replace(/\[[^\]]*\]/g, ' ')
        .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
      for (const word of expr.match(/[A-Za-z_:][A-Za-z0-9_:]*/g) ?? []) {
        if (!NOT_METRICS.has(word.toLowerCase())) names.add(word);
      }
    }
  }
  return [...names].sort();
}
