#!/usr/bin/env node
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { EdgeStatus } from '@fieldbeam/protocol';
import { createEdgeAgent } from './agent.js';
import { runDecodeCommand } from './cli/decode-command.js';
import { configForDisplay, loadEdgeConfig } from './config.js';
import { createEdgeLogger } from './logger.js';
import { readRejects } from './outbox/reject-table.js';
import { SensorMap } from './sources/sensor-map.js';
import { formatStatus, formatStatusLine } from './status.js';
import { createSystemdNotifier, loadNotifyTransport, startServiceNotifications } from './systemd-notify.js';

const HELP = `fieldbeam-edge: the Fieldbeam edge agent

Usage:
  fieldbeam-edge run --config FILE        run the agent (SIGHUP reloads sensors, SIGTERM stops cleanly)
  fieldbeam-edge decode --format FAMILY | --config FILE
                                        decode JSON lines of MQTT messages from stdin (see decode --help)
  fieldbeam-edge iss-replay [--port N] [--file replay.jsonl] ...
                                        a local Lightstreamer (TLCP) server replaying ISSLIVE (see iss-replay --help)
  fieldbeam-edge check --config FILE      validate a config file and print it with defaults applied
                                          (passwords, nkey seeds and URL passwords shown as "(redacted)")
  fieldbeam-edge status --config FILE     ask the running agent (its /healthz) and print its state
  fieldbeam-edge rejects --config FILE [--limit N]
                                          print the most recent rejected inputs kept in the buffer file
  fieldbeam-edge help                     this text

Environment: LOG_LEVEL (default info). Config keys are documented in edge/README.md.
`;

async function run(configFile: string): Promise<number> {
  const log = createEdgeLogger();
  let config = loadEdgeConfig(configFile);
  const agent = await createEdgeAgent(config, log);
  log.info({ edge: agent.edge, mqttPort: agent.mqttPort, httpPort: agent.httpPort }, 'edge agent running');
  // Under systemd (Type=notify, WatchdogSec=): READY=1 now, keep-alives while alive, STOPPING=1 at the end.
  const notifier = createSystemdNotifier({ transport: await loadNotifyTransport(), log });
  const service = startServiceNotifications(
    notifier,
    { statusLine: () => formatStatusLine(agent.status()), alive: () => agent.alive() },
    { statusIntervalMs: config.status_interval_ms },
  );
  if (notifier.enabled) log.info({ watchdogMs: notifier.watchdogMs }, 'systemd notified: ready');
  process.on('SIGHUP', () => {
    try {
      config = loadEdgeConfig(configFile);
      agent.reloadSensors(config.sensors, config.auto_register);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'config reload failed; keeping the previous sensors');
    }
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      // A second signal, or a stuck close, must not keep a service manager waiting forever.
      setTimeout(() => process.exit(1), 15_000).unref();
      const stopping = service.stopping();
      void agent
        .close()
        .then(() => stopping)
        .then(() => service.close())
        .then(resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  log.info('stopped');
  return 0;
}

/** `decode`: the decoders offline, either by family conventions or through a config's sensors. */
async function decodeCommand(args: string[]): Promise<number> {
  const i = args.findIndex((a) => a === '--config' || a === '-c');
  const file = i >= 0 ? args[i + 1] : args.find((a) => a.startsWith('--config='))?.slice('--config='.length);
  if (!file) return runDecodeCommand(args, process.stdin, process.stdout);
  const map = new SensorMap(loadEdgeConfig(file).sensors);
  return runDecodeCommand(args, process.stdin, process.stdout, { sensors: (topic) => map.route(topic) });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'decode') return decodeCommand(rest);
  if (command === 'iss-replay') return (await import('./iss/index.js')).runIssReplayCommand(rest);
  const { values } = parseArgs({
    args: rest,
    options: { config: { type: 'string', short: 'c' }, limit: { type: 'string' }, help: { type: 'boolean' } },
    allowPositionals: true,
    strict: false,
  });
  const needConfig = () => {
    if (typeof values.config !== 'string') throw new Error(`${command} needs --config FILE`);
    return values.config;
  };
  switch (command) {
    case 'run':
      return run(needConfig());
    case 'check':
      process.stdout.write(`${configForDisplay(loadEdgeConfig(needConfig()))}\n`);
      return 0;
    case 'status': {
      const cfg = loadEdgeConfig(needConfig());
      const url = `http://${cfg.http.host === '0.0.0.0' ? '127.0.0.1' : cfg.http.host}:${cfg.http.port}/healthz`;
      let s: EdgeStatus;
      try {
        s = (await (await fetch(url, { signal: AbortSignal.timeout(3000) })).json()) as EdgeStatus;
      } catch (err) {
        process.stderr.write(`no agent answers at ${url}: ${(err as Error).message}\n`);
        return 1;
      }
      process.stdout.write(formatStatus(s));
      return 0;
    }
    case 'rejects': {
      const cfg = loadEdgeConfig(needConfig());
      // Read-only: the agent may be running on the same file.
      for (const r of readRejects(
        join(cfg.data_dir, `${cfg.edge}.buffer.sqlite`),
        Number(values.limit ?? 20),
      )) {
        const { payload, ...rest } = r;
        process.stdout.write(
          `${JSON.stringify({
            ...rest,
            at: new Date(r.at_ms).toISOString(),
            // Only the first buffer.reject_payload_bytes of a payload are kept.
            truncated: r.payload_bytes > payload.length,
            payload: payload.toString('utf8'),
          })}\n`,
        );
      }
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return 0;
    default:
      process.stderr.write(`unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`fieldbeam-edge: ${err.message}\n`);
    process.exitCode = 1;
  },
);
