import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { spawnProcess, waitForPort } from './process.js';
import { tempDir } from './temp-dir.js';

export interface Mosquitto {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** mosquitto (Debian package) on a free loopback port with limits that do not drop QoS 1 messages. */
export async function startMosquitto(): Promise<Mosquitto> {
  const dir = tempDir('fieldbeam-mosq-');
  const port = await freePort();
  const conf = join(dir.path, 'mosquitto.conf');
  // Default limits (20 in flight, 1000 queued) silently drop QoS 1 messages to a slow subscriber.
  writeFileSync(
    conf,
    `listener ${port} 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 1000
max_queued_messages 1000000
`,
  );
  const proc = spawnProcess(process.env.MOSQUITTO_BIN ?? 'mosquitto', ['-c', conf]);
  try {
    await waitForPort(port);
  } catch (err) {
    await proc.kill();
    throw new Error(`mosquitto did not start: ${(err as Error).message}\n${proc.output()}`);
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    close: async () => {
      await proc.stop();
      dir.remove();
    },
  };
}
