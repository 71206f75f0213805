export type { Collector } from './app.js';
export { createCollector } from './app.js';
export type { CloudConfig } from './config.js';
export { loadCloudConfig } from './config.js';
export type { EmbeddedPg } from './db/embedded-postgres.js';
export { startEmbeddedPostgres } from './db/embedded-postgres.js';
export { migrate, migrations } from './db/migrations.js';
export {
  addEdge,
  collectorSeed,
  edgePermissions,
  listEdges,
  renderAuthorization,
} from './identity/edge-identity.js';
export { checkBatch } from './ingest/ingest.js';
export { ObservationStore } from './ingest/observation-store.js';
export { ensureStreams } from './nats/streams.js';
