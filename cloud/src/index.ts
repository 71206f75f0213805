export type { Collector } from './app.js';
export { createCollector } from './app.js';
export type { CloudConfig } from './config.js';
export { loadCloudConfig } from './config.js';
export type { Builder, BuilderOptions } from './datasets/builder.js';
export { buildWindowObject, datasetObjectKey } from './datasets/builder.js';
export type { DatasetDef } from './datasets/dataset-config.js';
export { loadDatasets, parseDatasets } from './datasets/dataset-config.js';
export type { Claim, VersionRow, WindowRow, WindowState } from './datasets/window-store.js';
export { WindowStore } from './datasets/window-store.js';
export { parseDuration, windowKey, windowStartOf } from './datasets/windows.js';
export type { EmbeddedPg } from './db/embedded-postgres.js';
export { embeddedDatabaseUrl, embeddedPostgresDir, startEmbeddedPostgres } from './db/embedded-postgres.js';
export { migrate, migrations } from './db/migrations.js';
export {
  locatePostgresBinaries,
  POSTGRES_BINARY_CACHE,
  type PostgresBinaries,
  postgresPackage,
} from './db/postgres-binaries.js';
export { PostgresServer, type PostgresServerOptions, postgresOsUser } from './db/postgres-server.js';
export { CloudError, CloudErrorCode } from './errors.js';
export { geoParquetExport } from './export/exporters.js';
export { arrowFileToGeoParquet, arrowToGeoParquet } from './export/geoparquet.js';
export { CentralSensorStore, ensureSensorBucket } from './fleet/central-sensors.js';
export type { BufferCompleteness, EdgeCompleteness } from './fleet/completeness.js';
export { edgeCompleteness } from './fleet/completeness.js';
export type { ControlConnection, RequestEdgeOptions } from './fleet/edge-control.js';
export { DEFAULT_CONTROL_TIMEOUT_MS, EdgeControlError, requestEdge } from './fleet/edge-control.js';
export type { FleetEdgeRow, Heartbeat } from './fleet/fleet-store.js';
export { FleetStore } from './fleet/fleet-store.js';
export type { FleetEntry } from './fleet/fleet-view.js';
export { fleetEntries, formatFleetTable } from './fleet/fleet-view.js';
export type { AddedEdge, EdgeRecord } from './identity/edge-identity.js';
export {
  addEdge,
  COLLECTOR_IDENTITY,
  collectorSeed,
  edgePermissions,
  listEdges,
  renderAuthorization,
} from './identity/edge-identity.js';
export { encodeRows } from './ingest/copy-binary.js';
export { checkBatch } from './ingest/ingest.js';
export { INGEST_COLUMNS, observationCopyLine } from './ingest/observation-fields.js';
export type { CommitResult, StagedBatch } from './ingest/observation-store.js';
export { copyBinary, copyLines, ObservationStore } from './ingest/observation-store.js';
export { collectorConnectOptions, identityDir } from './nats/connection.js';
export { ensureStreams } from './nats/streams.js';
export type {
  EdgeRelease,
  EnrollmentSecret,
  EnrollOutcome,
  MqttUserSpec,
  Provisioning,
  ProvisionOptions,
  ReleaseFile,
} from './provision/index.js';
export {
  EDGE_INSTALL_PATH,
  EDGE_RELEASES_PATH,
  enrollmentsDir,
  enrollRoutes,
  FIRMWARE_TOPICS,
  installRuncmd,
  installUrl,
  isLoopbackHost,
  mergeImagerUserData,
  openEnrollment,
  PI_PATHS,
  releaseFileUrl,
  renderEdgeConfig,
  renderFirstBootScript,
  renderInstallScript,
  renderProvisioning,
  renderUserData,
  tokenHash,
} from './provision/index.js';
export { createObjectStore } from './storage/create-object-store.js';
export { FolderObjectStore } from './storage/folder-object-store.js';
export type { ObjectInfo, ObjectStore } from './storage/object-store.js';
export type { S3StoreOptions } from './storage/s3-object-store.js';
export { S3ObjectStore } from './storage/s3-object-store.js';
