export { chromiumPath, launchChromium, pageProblems } from './browser.js';
export type { CollectorProcess } from './collector-process.js';
export { startCollectorProcess } from './collector-process.js';
export type { EdgeAgentProcess } from './edge-agent-process.js';
export { startEdgeAgentProcess } from './edge-agent-process.js';
export type { EdgeProcess } from './edge-process.js';
export { cloudCli, edgeCli, startEdgeProcess } from './edge-process.js';
export type { LoadProcess, LoadProcessResult, LoadSnapshot, LoadWorkerOptions } from './load-process.js';
export { startLoadProcess } from './load-process.js';
export { metricSum, parsePrometheus, readMetric, scrapeMetrics } from './metrics.js';
export type { Mosquitto } from './mosquitto.js';
export { startMosquitto } from './mosquitto.js';
export type { LoadResult, MqttLoad } from './mqtt-load.js';
export { startMqttLoad } from './mqtt-load.js';
export type { RawClient } from './mqtt-raw.js';
export {
  connectPacket,
  fixedHeader,
  processMemory,
  publishPacket,
  rawClient,
  rawLogin,
  streamAnnounced,
} from './mqtt-raw.js';
export type { NatsCluster, NatsClusterNode } from './nats-cluster.js';
export { clusterNodeConfig, startNatsCluster } from './nats-cluster.js';
export type { NatsServer } from './nats-server.js';
export { startNatsServer, startNatsServerAt } from './nats-server.js';
export type { NetnsLink } from './netns.js';
export { createNetnsLink, netnsUnavailable, removeStaleNetns } from './netns.js';
export type { PerTestServers } from './per-test.js';
export { natsPerTest } from './per-test.js';
export { freePort } from './ports.js';
export type { TestPostgres } from './postgres.js';
export { startPostgres } from './postgres.js';
export type { Crash, Spawned } from './process.js';
export { spawnProcess, waitFor, waitForPort } from './process.js';
export { commandLine, descendants, running } from './process-tree.js';
export { builtCli, repoRoot } from './repo-root.js';
export type { CommandResult } from './run-command.js';
export { runNodeScript } from './run-command.js';
export type { S3Server } from './s3rver.js';
export { startS3rver } from './s3rver.js';
export type { StreamContents } from './stream-reader.js';
export { readObsStream } from './stream-reader.js';
export type { ProxyMode, TcpProxy } from './tcp-proxy.js';
export { startTcpProxy } from './tcp-proxy.js';
export type { TempDir } from './temp-dir.js';
export { tempDir } from './temp-dir.js';
