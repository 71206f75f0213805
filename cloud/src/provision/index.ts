export type { SensorEntry, SensorSetup } from './edge-sensors.js';
export { FIRMWARE_TOPICS, sensorSetup } from './edge-sensors.js';
export { COLLECTOR_LISTEN_HINT, isLoopbackHost, reachabilityWarnings } from './reachability.js';
export { readRelease } from './release.js';
export type {
  EdgeRelease,
  MqttUserSpec,
  Provisioning,
  ProvisionOptions,
  ReleaseFile,
} from './user-data.js';
export {
  EDGE_RELEASES_PATH,
  PI_PATHS,
  releaseFileUrl,
  renderEdgeConfig,
  renderFirstBootScript,
  renderProvisioning,
  renderUserData,
} from './user-data.js';
