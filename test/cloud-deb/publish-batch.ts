/**
 * One observation batch published to the collector's NATS as a registered edge would: its nkey seed,
 * its own inbox prefix, JetStream publish on `fb.obs.<edge>` with the batch's message id. Prints the
 * PubAck as JSON. Used by test/cloud-deb/proof.sh against the collector installed from the .deb.
 *   publish-batch --nats URL --edge ID --seed-file FILE --station NAME --count N
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { batchMsgId, type Observation, observationId, subjects } from '@fieldbeam/protocol';
import { jetstream } from '@nats-io/jetstream';
import { connect, nkeyAuthenticator } from '@nats-io/transport-node';

const { values: v } = parseArgs({
  options: {
    nats: { type: 'string' },
    edge: { type: 'string' },
    'seed-file': { type: 'string' },
    station: { type: 'string', default: 'deb-1' },
    count: { type: 'string', default: '10' },
  },
});
if (!v.nats || !v.edge || !v['seed-file']) throw new Error('needs --nats, --edge and --seed-file');
const edge = v.edge;
const seed = readFileSync(v['seed-file'], 'utf8').trim();
const count = Number(v.count);

// Recent readings: the collector accepts observation times inside its FB_INGEST_MAX_AGE.
const now = Date.now();
const observations: Observation[] = Array.from({ length: count }, (_, i) => {
  const key = {
    source: 'cloud-deb-proof',
    station: v.station as string,
    variable: 'temperature',
    time: new Date(now - (count - i) * 1000).toISOString(),
    value: 20 + i / 10,
  };
  return { ...key, id: observationId(key), edge, unit: 'Cel', received: new Date(now).toISOString() };
});
const batch = { v: 1, edge, seq: [1, count], sent: new Date().toISOString(), observations };

const nc = await connect({
  servers: v.nats,
  authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)),
  inboxPrefix: subjects.inbox(edge),
  name: `cloud-deb-proof-${edge}`,
});
try {
  const ack = await jetstream(nc).publish(subjects.obs(edge), JSON.stringify(batch), {
    msgID: batchMsgId(edge, randomBytes(6).toString('hex'), 1, count),
  });
  process.stdout.write(`${JSON.stringify({ stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate })}\n`);
} finally {
  await nc.close();
}
