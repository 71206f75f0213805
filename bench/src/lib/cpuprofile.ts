import { readFileSync } from 'node:fs';

/** Summaries of V8 `.cpuprofile` files written by `node --cpu-prof`. */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface HotFrame {
  name: string;
  /** Where: package or repo-relative file and line. */
  where: string;
  selfPct: number;
  totalPct: number;
}

export interface ProfileSummary {
  file: string;
  durationS: number;
  /** Share of samples not idle (program + GC). */
  busyPct: number;
  gcPct: number;
  bySelf: HotFrame[];
  /** Inclusive time of the agent's own functions (edge/protocol dist files). */
  ownByTotal: HotFrame[];
  /** Self time grouped by package (node_modules) or by `node:` internals. */
  byPackage: { name: string; selfPct: number }[];
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const repo = /\/(edge|protocol|cloud|bench|test)\/dist\/(.*)$/.exec(url);
  if (repo) return `${repo[1]}/${repo[2]}`;
  return url.replace(/^file:\/\//, '');
}

function packageOf(url: string): string {
  if (url === '') return '(native/V8)';
  if (url.startsWith('node:')) return 'node: internals';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? '?');
  }
  const repo = /\/(edge|protocol|cloud|bench|test)\/dist\//.exec(url);
  if (repo) return `@fieldbeam/${repo[1]}`;
  return url;
}

export function summarizeCpuProfile(file: string, top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const selfUs = new Map<number, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    total += dt;
  });
  const key = (n: ProfileNode) =>
    `${n.callFrame.functionName || '(anonymous)'}\t${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const pkg = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    const name = n.callFrame.functionName;
    if (name === '(idle)') idle += us;
    if (name === '(garbage collector)') gc += us;
    self.set(key(n), (self.get(key(n)) ?? 0) + us);
    if (name === '(idle)') continue;
    pkg.set(packageOf(n.callFrame.url), (pkg.get(packageOf(n.callFrame.url)) ?? 0) + us);
    // Inclusive: each function once per stack (recursion counted once).
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const c = byId.get(cur);
      if (!c) break;
      const k = key(c);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  const busy = total - idle;
  const pct = (us: number) => (busy > 0 ? Math.round((us / busy) * 1000) / 10 : 0);
  const frame = (k: string): HotFrame => {
    const [name, where] = k.split('\t') as [string, string];
    return { name, where, selfPct: pct(self.get(k) ?? 0), totalPct: pct(inclusive.get(k) ?? 0) };
  };
  const skip = new Set(['(idle)', '(program)', '(root)']);
  const bySelf = [...self.entries()]
    .filter(([k]) => !skip.has(k.split('\t')[0] as string))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k]) => frame(k));
  const ownByTotal = [...inclusive.entries()]
    .filter(([k]) => /\t(edge|protocol)\//.test(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k]) => frame(k));
  const byPackage = [...pkg.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([name, us]) => ({ name, selfPct: pct(us) }));
  return {
    file,
    durationS: (p.endTime - p.startTime) / 1e6,
    busyPct: total > 0 ? Math.round((busy / total) * 1000) / 10 : 0,
    gcPct: pct(gc),
    bySelf,
    ownByTotal,
    byPackage,
  };
}

export function formatProfileSummary(s: ProfileSummary): string {
  const lines = [
    `profile ${s.file}: ${s.durationS.toFixed(1)} s, busy ${s.busyPct}% of samples, GC ${s.gcPct}% of busy`,
    '  self time (% of busy):',
    ...s.bySelf.map((f) => `    ${String(f.selfPct).padStart(5)}%  ${f.name}  ${f.where}`),
    '  agent functions by inclusive time (% of busy):',
    ...s.ownByTotal.map((f) => `    ${String(f.totalPct).padStart(5)}%  ${f.name}  ${f.where}`),
    '  self time by package:',
    ...s.byPackage.map((p) => `    ${String(p.selfPct).padStart(5)}%  ${p.name}`),
  ];
  return lines.join('\n');
}
