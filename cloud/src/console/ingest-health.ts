import type pg from 'pg';
import type { IngestAnswer } from './console-api.js';

/** Dead letters the ingest page groups (the newest; the table itself can be large). */
const GROUPED_DEAD_LETTERS = 10_000;
const NEWEST_DEAD_LETTERS = 10;

/**
 * Ingest rates from this collector's own counter of stored readings, sampled into a ring: no scan of
 * the readings table. (With several collectors, each shows its own rate.) Samples come from a timer
 * (`everyMs`, console.ts), never from requests: however often a client asks, the rates and the ring's
 * size stay the same. A sample sooner than `everyMs / 2` after the last is ignored, so the ring holds
 * at most `keepMs / (everyMs / 2) + 2` samples whoever calls `sample`.
 */
export class RateRing {
  private readonly samples: { t: number; n: number }[] = [];

  constructor(
    private readonly read: () => Promise<number>,
    readonly everyMs = 5000,
    private readonly keepMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.samples.length;
  }

  async sample(): Promise<void> {
    const last = this.samples.at(-1);
    if (last && this.now() - last.t < this.everyMs / 2) return;
    const n = await this.read();
    const t = this.now();
    const newest = this.samples.at(-1);
    // Two calls that both passed the check above while reading: keep the first.
    if (newest && t - newest.t < this.everyMs / 2) return;
    this.samples.push({ t, n });
    // Bounded by time: samples older than the longest rate are of no use.
    while (this.samples.length > 2 && (this.samples[1]?.t ?? t) < t - this.keepMs) this.samples.shift();
  }

  /** Per second over the last `ms` (0 with fewer than two samples). */
  perS(ms: number): number {
    const last = this.samples.at(-1);
    if (!last) return 0;
    const first = this.samples.find((s) => s.t >= last.t - ms) ?? last;
    const dt = (last.t - first.t) / 1000;
    return dt > 0 ? Math.round(((last.n - first.n) / dt) * 10) / 10 : 0;
  }
}

export interface IngestHealthDeps {
  pool: pg.Pool;
  rates: RateRing;
  /** Messages of the observation stream not yet delivered to ingest, and delivered but not acknowledged. */
  lag: () => Promise<{ pending: number; ackPending: number }>;
}

export async function ingestHealth(deps: IngestHealthDeps): Promise<IngestAnswer> {
  const [lag, groups, newest] = await Promise.all([
    deps.lag().catch(() => ({ pending: null, ackPending: null })),
    deps.pool.query<{ reason: string; count: string }>(
      `SELECT coalesce(code, left(reason, 80)) AS reason, count(*) AS count
       FROM (SELECT code, reason FROM dead_letters ORDER BY id DESC LIMIT $1) d
       GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 50`,
      [GROUPED_DEAD_LETTERS],
    ),
    deps.pool.query<{ id: string; at: Date; subject: string; reason: string; stream_seq: string | null }>(
      'SELECT id, at, subject, reason, stream_seq FROM dead_letters ORDER BY id DESC LIMIT $1',
      [NEWEST_DEAD_LETTERS],
    ),
  ]);
  return {
    generatedAt: new Date().toISOString(),
    rates: { perSLastMinute: deps.rates.perS(60_000), perSLast10Minutes: deps.rates.perS(600_000) },
    lag,
    deadLetters: {
      total: groups.rows.reduce((n, g) => n + Number(g.count), 0),
      byReason: groups.rows.map((g) => ({ reason: g.reason, count: Number(g.count) })),
      newest: newest.rows.map((r) => ({
        id: Number(r.id),
        at: r.at.toISOString(),
        subject: r.subject,
        reason: r.reason.slice(0, 2000),
        streamSeq: r.stream_seq === null ? null : Number(r.stream_seq),
      })),
    },
  };
}
