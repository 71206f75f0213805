import type { Readable } from 'node:stream';

/**
 * GC pauses of a node process run with `--trace-gc`, per isolate (the main thread and each worker
 * have their own heap and their own pauses). node prints one line per collection on stdout:
 *
 *   [pid:0x1642c000]   23 ms: Scavenge 5.2 (6.1) -> 4.8 (7.1) MB, pooled: 0 MB, 1.47 / 0.00 ms  (...) allocation failure;
 *
 * (`ms:` is the time since that isolate started; then the kind, heap used (committed) before -> after,
 * and the pause). Each line is stamped when it arrives here, so a window of the bench's own clock can
 * be cut out of it. Other output of the process (its logs) is left alone.
 */

interface GcEvent {
  /** performance.now() when the line arrived. */
  at: number;
  isolate: string;
  kind: string;
  /** Why V8 collected, e.g. "allocation failure", "finalize incremental marking via task". */
  reason: string;
  pauseMs: number;
  heapAfterMb: number;
  committedAfterMb: number;
}

export interface IsolateGc {
  /** Order in which the isolate's first collection was seen: 1 is the main thread (it loads the program before any worker starts). */
  first_seen: number;
  pauses: number;
  per_s: number;
  over_2ms: number;
  over_5ms: number;
  longest_ms: number;
  total_ms: number;
  /** Pauses per kind (Scavenge, Mark-Compact, ...). */
  kinds: Record<string, number>;
  /** Pauses per kind and reason ("Mark-Compact: finalize incremental marking via task"). */
  reasons: Record<string, number>;
  /** Heap used / committed after the last collection in the window, MiB. */
  heap_used_mb: number;
  heap_committed_mb: number;
}

const LINE =
  /^\[\d+:(0x[0-9a-f]+)\]\s+[\d.]+ ms: (.+?) ([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB,(?: pooled: [\d.]+ MB,)? ([\d.]+) \/ [\d.]+ ms/;

/** Parses one `--trace-gc` line; undefined for anything else. */
export function parseGcLine(line: string, at = 0): GcEvent | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  return {
    at,
    isolate: m[1] as string,
    kind: (m[2] as string).trim(),
    reason: /\(average mu = [^)]*\) ([^;]*)/.exec(line)?.[1]?.trim() ?? '',
    pauseMs: Number(m[7]),
    heapAfterMb: Number(m[5]),
    committedAfterMb: Number(m[6]),
  };
}

export class GcTrace {
  private readonly events: GcEvent[] = [];
  private readonly order = new Map<string, number>();
  private buf = '';
  /** Lines that start like a trace line but did not parse (a format change would show here). */
  unparsed = 0;

  /** Reads the stream's lines as they come; `stream` keeps its other listeners. */
  constructor(stream: Readable | null | undefined) {
    stream?.on('data', (chunk: Buffer | string) => {
      const at = performance.now();
      this.buf += chunk.toString();
      let nl = this.buf.indexOf('\n');
      while (nl >= 0) {
        this.line(this.buf.slice(0, nl), at);
        this.buf = this.buf.slice(nl + 1);
        nl = this.buf.indexOf('\n');
      }
      // A process that prints no newline for long (it should not) must not grow this.
      if (this.buf.length > 64 * 1024) this.buf = '';
    });
  }

  private line(line: string, at: number): void {
    if (!line.startsWith('[')) return;
    const e = parseGcLine(line, at);
    if (!e) {
      if (/^\[\d+:0x[0-9a-f]+\]/.test(line)) this.unparsed++;
      return;
    }
    if (!this.order.has(e.isolate)) this.order.set(e.isolate, this.order.size + 1);
    this.events.push(e);
  }

  /** Pauses per isolate between `fromMs` and `toMs` (performance.now() times). */
  summary(fromMs: number, toMs: number): Record<string, IsolateGc> {
    const seconds = (toMs - fromMs) / 1000;
    const out: Record<string, IsolateGc> = {};
    for (const [isolate, first] of this.order) {
      const es = this.events.filter((e) => e.isolate === isolate && e.at >= fromMs && e.at <= toMs);
      const kinds: Record<string, number> = {};
      const reasons: Record<string, number> = {};
      for (const e of es) {
        kinds[e.kind] = (kinds[e.kind] ?? 0) + 1;
        const r = `${e.kind}: ${e.reason}`;
        reasons[r] = (reasons[r] ?? 0) + 1;
      }
      const last = es[es.length - 1];
      const r2 = (n: number) => Math.round(n * 100) / 100;
      out[isolate] = {
        first_seen: first,
        pauses: es.length,
        per_s: r2(es.length / seconds),
        over_2ms: es.filter((e) => e.pauseMs > 2).length,
        over_5ms: es.filter((e) => e.pauseMs > 5).length,
        longest_ms: r2(Math.max(0, ...es.map((e) => e.pauseMs))),
        total_ms: r2(es.reduce((s, e) => s + e.pauseMs, 0)),
        kinds,
        reasons,
        heap_used_mb: last?.heapAfterMb ?? Number.NaN,
        heap_committed_mb: last?.committedAfterMb ?? Number.NaN,
      };
    }
    return out;
  }
}
