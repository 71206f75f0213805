// The local TLCP (Lightstreamer) server with the ISSLIVE adapter set and its `iss-replay` command: a
// test and demo tool, not part of the agent. The Pi package leaves this folder out (deploy/pi/build.sh).
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
