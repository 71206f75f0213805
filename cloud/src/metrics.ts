import { Counter, collectDefaultMetrics, Registry } from 'prom-client';

/** The collector's Prometheus metrics, on a registry of its own. */
export function createCloudMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'fb_cloud_process_' });
  return {
    registry,
    observations: new Counter({
      name: 'fb_cloud_ingest_observations_total',
      help: 'Observations received in valid batches',
      registers: [registry],
    }),
    inserted: new Counter({
      name: 'fb_cloud_ingest_inserted_total',
      help: 'Observations new to Postgres (the rest were replays)',
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'fb_cloud_ingest_dead_letters_total',
      help: 'Messages rejected to the dead_letters table',
      registers: [registry],
    }),
    ingestErrors: new Counter({
      name: 'fb_cloud_ingest_errors_total',
      help: 'Ingest rounds that failed to commit and were redelivered',
      registers: [registry],
    }),
  };
}
export type CloudMetrics = ReturnType<typeof createCloudMetrics>;
