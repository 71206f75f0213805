export type { SensorEntry, SensorSetup } from './edge-sensors.js';
export { FIRMWARE_TOPICS, sensorSetup } from './edge-sensors.js';
export type { EnrollLog, EnrollOutcome, EnrollRouteOptions } from './enroll-route.js';
export { enrollRoutes } from './enroll-route.js';
export type { EnrollUserDataOptions } from './enroll-user-data.js';
export { installRuncmd, mergeImagerUserData, renderEnrollUserData } from './enroll-user-data.js';
export type { EnrollmentSecret } from './enrollment.js';
export {
  DEFAULT_TOKEN_TTL,
  EDGE_INSTALL_PATH,
  enrollmentsDir,
  installUrl,
  openEnrollment,
  tokenHash,
} from './enrollment.js';
export { renderInstallScript } from './install-script.js';
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
