/**
 * Child process of `startLoadProcess`: one MQTT sensor publishing uniquely numbered readings at QoS 1
 * at a steady rate, recording which were acknowledged (PUBACK). Talks to its parent over the IPC
 * channel; exits when the parent goes away. Not meant to be run by hand.
 */
import mqtt from 'mqtt';
import type { LoadWorkerMessage, LoadWorkerOptions, LoadWorkerReply } from './load-process.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as LoadWorkerOptions;
const send = (m: LoadWorkerReply) => process.send?.(m);
process.on('disconnect', () => process.exit(0));

const acked = new Uint8Array(opts.maxMessages);
let ackedCount = 0;
let sent = 0;
let errors = 0;
let inFlight = 0;
let stopped = false;
const pending = new Set<Promise<void>>();
const startedAt = Date.now();

const payload = (seq: number) => (opts.format === 'number' ? String(seq) : `{"t":${Date.now()},"v":${seq}}`);

const client = mqtt.connect(opts.url, {
  clientId: opts.clientId,
  clean: false,
  reconnectPeriod: 200,
  connectTimeout: 5000,
  keepalive: 10,
});
client.on('error', () => {});

const perTick = Math.max(1, Math.round(opts.rate / 100));
const timer = setInterval(() => {
  if (stopped) return;
  if (opts.maxSeconds && Date.now() - startedAt > opts.maxSeconds * 1000) return;
  for (let i = 0; i < perTick && sent < opts.maxMessages && inFlight < opts.maxInFlight; i++) {
    const seq = sent++;
    inFlight++;
    const p = client
      .publishAsync(`${opts.topicPrefix}/${opts.station}/v`, payload(seq), { qos: 1 })
      .then(
        () => {
          if (acked[seq] === 0) {
            acked[seq] = 1;
            ackedCount++;
          }
        },
        () => {
          errors++;
        },
      )
      .finally(() => {
        inFlight--;
        pending.delete(p);
      });
    pending.add(p);
  }
}, 10);

const progress = setInterval(() => {
  send({ type: 'progress', acked: ackedCount, sent, errors, inFlight, time: Date.now() });
}, 200);

function ranges(): [number, number][] {
  const out: [number, number][] = [];
  let start = -1;
  for (let i = 0; i <= sent; i++) {
    const on = i < sent && acked[i] === 1;
    if (on && start < 0) start = i;
    else if (!on && start >= 0) {
      out.push([start, i - 1]);
      start = -1;
    }
  }
  return out;
}

process.on('message', async (raw) => {
  const m = raw as LoadWorkerMessage;
  if (m.cmd === 'snapshot') {
    send({ type: 'snapshot', id: m.id, acked: ackedCount, sent, errors, inFlight, time: Date.now() });
  } else if (m.cmd === 'stop') {
    stopped = true;
    clearInterval(timer);
    await Promise.race([Promise.allSettled([...pending]), new Promise((r) => setTimeout(r, m.drainMs))]);
    clearInterval(progress);
    await Promise.race([client.endAsync(true).catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
    send({ type: 'done', id: m.id, acked: ackedCount, sent, errors, inFlight, ranges: ranges() });
    setTimeout(() => process.exit(0), 100);
  }
});
