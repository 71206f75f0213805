/**
 * The 3-node cluster the fault suite and the benchmarks run on: the nodes are made from
 * deploy/nats/cluster-node.conf, form one JetStream cluster, hold a 3-replica stream and elect a new
 * leader for it when its leader is killed -9, without losing an acknowledged message.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { type NatsCluster, startNatsCluster } from '../harness/index.js';

describe('3-node nats-server cluster from deploy/nats/cluster-node.conf', () => {
  let cluster: NatsCluster | undefined;
  afterAll(async () => cluster?.stop());

  it('replicates a stream on three nodes and survives its leader killed -9', async () => {
    cluster = await startNatsCluster({ nodes: 3 });
    expect(cluster.urls).toHaveLength(3);
    expect(cluster.url.split(',')).toEqual(cluster.urls);
    const nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.add({ name: 'T3', subjects: ['t3.>'], num_replicas: 3 });
      expect(info.config.num_replicas).toBe(3);
      const js = jetstream(nc);
      for (let i = 0; i < 100; i++) await js.publish('t3.x', String(i), { msgID: `m${i}` });
      const leader = await cluster.leaderOf('T3');
      expect(cluster.nodes.map((n) => n.name)).toContain(leader);
      const node = cluster.nodes.find((n) => n.name === leader);
      if (!node) throw new Error('leader not found');
      const pid = node.pid;
      expect(pid).toBeGreaterThan(0);
      await node.kill('SIGKILL');
      expect(node.running).toBe(false);
      const next = await cluster.leaderOf('T3');
      expect(next).not.toBe(leader);
      for (let i = 100; i < 200; i++)
        await js.publish('t3.x', String(i), { msgID: `m${i}`, timeout: 10_000 });
      await node.start();
      expect(node.pid).not.toBe(pid);
      await cluster.waitHealthy();
      const after = await jsm.streams.info('T3');
      expect(after.state.messages).toBe(200);
      expect(after.cluster?.replicas?.length).toBe(2);
    } finally {
      await nc.close();
    }
  });
});
