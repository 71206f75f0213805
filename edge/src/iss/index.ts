// ISS telemetry: the ISSLIVE source. The local TLCP replay server, a test and demo tool, is in ../iss-replay.
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
