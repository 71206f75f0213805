/** Parses Prometheus text into `name{labels}` -> value (comments skipped). */
export function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+?(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (m?.[1] && m[2] !== undefined) out.set(m[1], Number(m[2]));
  }
  return out;
}

/** The sum of the series of `name` whose labels include `labels` (e.g. `kind="connect"`); 0 when none. */
export function metricSum(metrics: ReadonlyMap<string, number>, name: string, labels = ''): number {
  let sum = 0;
  for (const [key, value] of metrics) {
    if (key !== name && !key.startsWith(`${name}{`)) continue;
    if (labels && !key.includes(labels)) continue;
    sum += value;
  }
  return sum;
}

/** Reads `/metrics` of a loopback server (an edge agent or a collector). */
export async function scrapeMetrics(port: number): Promise<Map<string, number>> {
  return parsePrometheus(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
}

/** One metric of a loopback server, summed over the series whose labels include `labels`. */
export async function readMetric(port: number, name: string, labels = ''): Promise<number> {
  return metricSum(await scrapeMetrics(port), name, labels);
}
