import type { Observation } from '@fieldbeam/protocol';
import type pg from 'pg';

export interface DeadLetter {
  subject: string;
  streamSeq: number | null;
  reason: string;
  payload: Uint8Array;
}

/** Postgres side of ingest: inserts are idempotent on observation id, so replays are harmless. */
export class ObservationStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Inserts the observations and dead letters in one transaction; returns how many observations
   * were new. `unnest` sends one array per column: one round trip, one plan, any batch size.
   */
  async commit(observations: Observation[], deadLetters: DeadLetter[]): Promise<number> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      let inserted = 0;
      if (observations.length > 0) {
        const col = <K extends keyof Observation>(k: K) => observations.map((o) => o[k] ?? null);
        const r = await client.query({
          name: 'fb_insert_observations',
          text: `INSERT INTO observations
                   (id, source, edge, station, sensor, variable, value, text, unit, time, received, lat, lon, alt, quality)
                 SELECT id, source, edge, station, sensor, variable, value, text, unit, time, received, lat, lon, alt,
                        CASE WHEN quality IS NULL THEN NULL ELSE string_to_array(quality, ',') END
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                             $7::float8[], $8::text[], $9::text[], $10::timestamptz[], $11::timestamptz[],
                             $12::float8[], $13::float8[], $14::float8[], $15::text[])
                   AS t(id, source, edge, station, sensor, variable, value, text, unit, time, received, lat, lon, alt, quality)
                 ON CONFLICT (id) DO NOTHING`,
          values: [
            col('id'),
            col('source'),
            col('edge'),
            col('station'),
            col('sensor'),
            col('variable'),
            col('value'),
            col('text'),
            col('unit'),
            col('time'),
            col('received'),
            col('lat'),
            col('lon'),
            col('alt'),
            // Flags never contain commas (schema: short tokens), so a joined string crosses unnest safely.
            observations.map((o) => (o.quality ? o.quality.join(',') : null)),
          ],
        });
        inserted = r.rowCount ?? 0;
      }
      for (const d of deadLetters) {
        await client.query(
          'INSERT INTO dead_letters (subject, stream_seq, reason, payload) VALUES ($1, $2, $3, $4)',
          [d.subject, d.streamSeq, d.reason, Buffer.from(d.payload)],
        );
      }
      await client.query('COMMIT');
      return inserted;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async count(): Promise<number> {
    const r = await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM observations');
    return Number(r.rows[0]?.n ?? 0);
  }
}
