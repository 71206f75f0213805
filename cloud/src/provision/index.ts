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
