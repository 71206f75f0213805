import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  edgeCli,
  freePort,
  startEdgeAgentProcess,
  startMosquitto,
  tempDir,
  waitFor,
} from '../harness/index.js';

const run = promisify(execFile);

const MQTT_PASSWORD = 'mqtt-Pw-7f3a9c';
const NATS_PASSWORD = 'nats-Pw-2b8e41';

describe('secrets stay out of logs and printed config', () => {
  it('external mode logs the broker URL without its password on connect and disconnect; check prints none', async () => {
    const dir = tempDir();
    // mosquitto without a password file takes any credentials: the agent connects with them.
    const mosquitto = await startMosquitto();
    const natsPort = await freePort(); // nothing listens: the uplink reconnects and says so
    const agent = await startEdgeAgentProcess({
      dir: dir.path,
      logLevel: 'info',
      config: {
        edge: 'gw-secrets',
        nats: { servers: [`nats://edge:${NATS_PASSWORD}@127.0.0.1:${natsPort}`], ack_timeout_ms: 1000 },
        mqtt: { mode: 'external', url: `mqtt://reader:${MQTT_PASSWORD}@127.0.0.1:${mosquitto.port}` },
        sensors: [
          { topic: 's/+station/t', decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' } },
        ],
      },
    });
    let stopped = false;
    try {
      const output = () => agent.process?.output() ?? '';
      await waitFor('the subscription log line', () =>
        output().includes('subscribed to external MQTT broker') ? true : undefined,
      );
      await mosquitto.close();
      stopped = true;
      await waitFor('the disconnect log line', () =>
        output().includes('external MQTT broker unreachable') ? true : undefined,
      );
      const logged = output();
      expect(logged).not.toContain(MQTT_PASSWORD);
      expect(logged).not.toContain(NATS_PASSWORD);
      // Still useful to a person: which broker, as whom.
      expect(logged).toContain(`mqtt://reader:(redacted)@127.0.0.1:${mosquitto.port}`);

      const { stdout } = await run(process.execPath, [edgeCli, 'check', '--config', agent.configFile]);
      expect(stdout).not.toContain(MQTT_PASSWORD);
      expect(stdout).not.toContain(NATS_PASSWORD);
      expect(stdout).toContain(`nats://edge:(redacted)@127.0.0.1:${natsPort}`);
    } finally {
      await agent.stop();
      if (!stopped) await mosquitto.close();
      dir.remove();
    }
  }, 60_000);
});
