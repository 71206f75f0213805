/**
 * A good sensor's PUBACK latency while another client floods the agent with large messages that are
 * all rejected (`node bench/dist/edge-reject-flood.js [--cli PATH] [--seconds N] [--rate N] [--size N]`).
 *
 * The agent runs as its own process (its CLI, `--cli` to measure another build) on a fresh buffer,
 * with nats-server as uplink. The good sensor publishes one QoS 1 reading every 20 ms, first alone,
 * then while a child process publishes `--size` bytes of garbage `--rate` times a second on a sensor
 * topic. Prints the latency summaries of both phases and the size of the buffer file afterwards.
 */
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  builtCli,
  freePort,
  spawnProcess,
  startNatsServer,
  tempDir,
  waitForPort,
} from '@fieldbeam/test/harness';
import mqtt from 'mqtt';
import { formatProfileSummary, summarizeCpuProfile } from './lib/cpuprofile.js';
import { monoMs, round, sleep, summarize } from './lib/stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    cli: { type: 'string', default: builtCli.edge },
    seconds: { type: 'string', default: '10' },
    rate: { type: 'string', default: '250' },
    size: { type: 'string', default: String(200 * 1024) },
    /** Runs the agent under --cpu-prof into this folder and prints where its time went. */
    profile: { type: 'string' },
    /** Counts the agent's fsync/fdatasync calls during the flood phase with strace (Linux, root). */
    syncs: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);

async function goodSensor(url: string, ms: number): Promise<number[]> {
  const client = await mqtt.connectAsync(url, { clientId: 'good-sensor' });
  const latencies: number[] = [];
  const end = monoMs() + ms;
  const pending: Promise<void>[] = [];
  for (let i = 0; monoMs() < end; i++) {
    const t0 = monoMs();
    pending.push(
      client.publishAsync('s/good/t', String(i), { qos: 1 }).then(() => {
        latencies.push(monoMs() - t0);
      }),
    );
    await sleep(20);
  }
  await Promise.all(pending);
  await client.endAsync();
  return latencies;
}

const dir = tempDir('fb-reject-flood-');
const nats = await startNatsServer({ streams: true });
const [mqttPort, httpPort] = await Promise.all([freePort(), freePort()]);
const config = join(dir.path, 'edge.yaml');
writeFileSync(
  config,
  JSON.stringify({
    edge: 'gw',
    data_dir: join(dir.path, 'data'),
    nats: { servers: [nats.url] },
    mqtt: { host: '127.0.0.1', port: mqttPort, max_packet_bytes: 256 * 1024 },
    http: { host: '127.0.0.1', port: httpPort },
    clock: { sync_check: 'none' },
    sensors: [
      { topic: 's/+station/t', decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' } },
    ],
  }),
);
const profileArgs = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : [];
const agent = spawnProcess(process.execPath, [...profileArgs, values.cli, 'run', '--config', config], {
  env: { ...process.env, LOG_LEVEL: 'error' },
});
try {
  await waitForPort(mqttPort);
  const url = `mqtt://127.0.0.1:${mqttPort}`;
  const quiet = summarize(await goodSensor(url, 5000));
  const flooder = spawnProcess(process.execPath, [
    join(here, 'edge-reject-flooder.js'),
    url,
    String(values.rate),
    String(values.size),
    String(seconds * 1000 + 1000),
  ]);
  const strace = values.syncs
    ? spawnProcess('strace', ['-f', '-c', '-e', 'trace=fsync,fdatasync', '-p', String(agent.pid)])
    : undefined;
  await sleep(500);
  const flooded = summarize(await goodSensor(url, seconds * 1000));
  await strace?.stop();
  await flooder.stop();
  const file = join(dir.path, 'data', 'gw.buffer.sqlite');
  const show = (s: ReturnType<typeof summarize>) =>
    `n ${s.n}  p50 ${round(s.p50)} ms  p90 ${round(s.p90)} ms  p99 ${round(s.p99)} ms  max ${round(s.max)} ms`;
  console.log(`agent: ${values.cli}`);
  console.log(`good sensor alone:        ${show(quiet)}`);
  console.log(`during ${values.rate}/s x ${values.size} B of rejects: ${show(flooded)}`);
  console.log(`flooder: ${flooder.output().trim()}`);
  console.log(`buffer file: ${(statSync(file).size / 1024 / 1024).toFixed(1)} MiB`);
  if (strace) console.log(`agent syncs during the flood phase (strace -c):\n${strace.output().trim()}`);
} finally {
  await agent.stop();
  await nats.close();
  dir.remove();
}
if (values.profile) {
  const file = readdirSync(values.profile).find((f) => f.endsWith('.cpuprofile'));
  if (file) console.log(formatProfileSummary(summarizeCpuProfile(join(values.profile, file))));
}
