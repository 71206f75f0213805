// ISS telemetry: the ISSLIVE source, the local TLCP replay server and its CLI command.
export { DEFAULT_ISS_ITEMS } from './default-items.js';
export type { IssLog } from './iss-log.js';
export type {
  IssConnectionOptions,
  IssSignal,
  IssSource,
  IssSourceOptions,
  IssSourceStatus,
} from './iss-source.js';
export { createIssSource } from './iss-source.js';
export { formatIssTimestamp, issTimestampToMs, parseIssTimestamp } from './iss-timestamp.js';
export { ISS_ADAPTER_SET, ISS_CLOCK_ITEM, ISS_FIELDS } from './isslive-schema.js';
export type { ItemUpdate } from './item-feed.js';
export type { IssReplayIo } from './replay-command.js';
export { createIssReplayCommand, runIssReplayCommand } from './replay-command.js';
export { parseReplayJsonl, ReplayLine } from './replay-source.js';
export type {
  ReplayServerMode,
  ReplayServerSource,
  TlcpReplayServer,
  TlcpReplayServerOptions,
  TlcpReplayServerStats,
} from './tlcp-replay-server.js';
export { createTlcpReplayServer, TLCP_SUBPROTOCOL } from './tlcp-replay-server.js';
