import type { Logger } from 'pino';
import { createEdgeAgent } from '../agent.js';
import { loadEdgeConfig } from '../config.js';
import { formatStatusLine } from '../status.js';
import { createSystemdNotifier, loadNotifyTransport, startServiceNotifications } from '../systemd-notify.js';

/** The stop's last resort: past this the process exits with status 1. */
const SAFETY_STOP_MS = 15_000;

/**
 * `fieldbeam-edge run`: the agent until SIGTERM or SIGINT. SIGHUP reloads the sensors from the config
 * file; under systemd (Type=notify, WatchdogSec=) it sends READY=1, keep-alives while alive and
 * STOPPING=1 at the end.
 */
export async function runAgent(configFile: string, log: Logger): Promise<number> {
  // Keys in an old spelling: one warning each in the agent's log, at start and at each reload.
  const onWarning = (message: string) => log.warn(message);
  const load = () => loadEdgeConfig(configFile, process.env, { onWarning });
  const config = load();
  // The control service's reload and SIGHUP read the file again the same way.
  const agent = await createEdgeAgent(config, log, { loadConfig: load });
  log.info({ edge: agent.edge, mqttPort: agent.mqttPort, httpPort: agent.httpPort }, 'edge agent running');
  const notifier = createSystemdNotifier({ transport: await loadNotifyTransport(), log });
  const service = startServiceNotifications(
    notifier,
    { statusLine: () => formatStatusLine(agent.status()), alive: () => agent.alive() },
    { statusIntervalMs: config.status_interval_ms },
  );
  if (notifier.enabled) log.info({ watchdogMs: notifier.watchdogMs }, 'systemd notified: ready');
  process.on('SIGHUP', () => {
    try {
      agent.reload();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'config reload failed; keeping the previous sensors');
    }
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      // A stuck close must not keep a service manager waiting forever. The agent's own steps are
      // bounded well below this (see `shutdown` in agent.ts), so reaching it is a fault.
      setTimeout(() => {
        log.fatal({ afterMs: SAFETY_STOP_MS }, 'the agent did not stop in time; exiting');
        process.exit(1);
      }, SAFETY_STOP_MS).unref();
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
