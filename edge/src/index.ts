export type { EdgeAgent } from './agent.js';
export { createEdgeAgent } from './agent.js';
export type { BufferThreadHandlers, ThreadOutbox } from './buffer-thread/thread-outbox.js';
export { startBufferThread } from './buffer-thread/thread-outbox.js';
export type { CentralSensors } from './central/central-sensors.js';
export { createCentralSensors } from './central/central-sensors.js';
export { runDecodeCommand } from './cli/decode-command.js';
export type { EdgeConfig, SensorConfig } from './config.js';
export { loadEdgeConfig, parseEdgeConfig } from './config.js';
export type { ControlService, ControlTarget } from './control/control-service.js';
export { startControlService } from './control/control-service.js';
export { backoffMs, startForwarder } from './forward/forwarder.js';
export { createJetStreamPublisher } from './forward/jetstream-publisher.js';
export type { IssSource, IssSourceStatus } from './iss/index.js';
export {
  createIssSource,
  DEFAULT_ISS_ITEMS,
  formatIssTimestamp,
  parseIssTimestamp,
} from './iss/index.js';
export type { EdgeMetrics } from './metrics.js';
export { createEdgeMetrics } from './metrics.js';
export type { FullPolicy, Outbox, OutboxBatch } from './outbox/outbox.js';
export { SqliteOutbox } from './outbox/sqlite-outbox.js';
export type { ObservationSink, Origin, Reading, RejectSink } from './readings.js';
export { toObservation } from './readings.js';
export type { MqttIngest } from './sources/mqtt-ingest.js';
export { createMqttIngest } from './sources/mqtt-ingest.js';
export { SensorMap } from './sources/sensor-map.js';
export { parseTopicPattern } from './sources/topic-pattern.js';
