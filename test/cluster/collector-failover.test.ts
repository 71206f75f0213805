/**
 * A node cut off from the network keeps its TCP connections open: nothing is refused, packets just
 * vanish. The collector's connection must notice by its own pings and move to another node of the
 * cluster, or ingest would stall while the rest of the cluster serves.
 */
import { collectorConnectOptions } from '@fieldbeam/cloud';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createNetnsLink,
  type NatsCluster,
  type NetnsLink,
  startNatsCluster,
  type TempDir,
  tempDir,
  waitFor,
} from '../harness/index.js';

let link: NetnsLink | undefined;
let cluster: NatsCluster | undefined;
let dir: TempDir | undefined;
afterAll(async () => {
  await cluster?.stop();
  link?.close();
  dir?.remove();
});

describe('collector connection on a cluster', () => {
  it('leaves a node cut off by a partition for another node', { timeout: 120_000 }, async () => {
    link = createNetnsLink();
    dir = tempDir();
    cluster = await startNatsCluster({ netns: { link, node: 2 } });
    const [n1, , n3] = cluster.nodes;
    if (!n1 || !n3) throw new Error('nodes');
    const nc = await connect({
      ...collectorConnectOptions({ NATS_URL: `${n3.url},${n1.url}`, FB_DATA_DIR: dir.path }),
      // Start on the node that will be cut off.
      noRandomize: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
    try {
      expect(nc.getServer()).toBe(n3.url.replace('nats://', ''));
      n3.partition();
      const moved = await waitFor(
        'the collector connection to leave the cut-off node',
        () => {
          const server = nc.getServer();
          return nc.isClosed() || server === n3.url.replace('nats://', '') ? undefined : server;
        },
        90_000,
      );
      expect(moved).not.toContain(link.nsAddr);
      // And it works there: JetStream answers through the majority side.
      const info = await (await jetstreamManager(nc)).getAccountInfo();
      expect(info.limits).toBeDefined();
    } finally {
      await nc.close();
    }
  });
});
