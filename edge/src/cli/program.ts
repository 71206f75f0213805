import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import type { Logger } from 'pino';
import { loadEdgeConfig } from '../config.js';
import { SensorMap } from '../sources/sensor-map.js';
import { version } from '../version.js';
import { type ExitStatus, finishCommandLine, integerIn, requireOptions } from './command-line.js';
import { createDecodeCommand } from './decode-command.js';
import { readingAgentFiles } from './file-access.js';

/**
 * `iss-replay` runs the local ISSLIVE server, a test and demo tool: the Pi package leaves its folder
 * out (deploy/pi/build.sh), and the command goes with it.
 */
const issReplay = existsSync(fileURLToPath(new URL('../iss-replay/', import.meta.url)))
  ? await import('../iss-replay/replay-command.js')
  : undefined;

/** What the CLI takes from its caller: the logger of `run` (made only when the agent runs). */
export interface EdgeCliDeps {
  createLogger(): Logger;
}

/** Environment variables the agent reads itself; every config key is in edge/README.md. */
const ENVIRONMENT = `
Environment:
  LOG_LEVEL   pino level: trace, debug, info, warn, error, fatal (default: info)
  LOG_FORMAT  json, journal or pretty (default: journal under systemd, pretty on a terminal,
              json otherwise)
  A config file may name any other variable as \${NAME} (e.g. nats.nkey_seed: \${FB_NKEY_SEED}).`;

const configOption = () =>
  new Option('-c, --config <file>', "the agent's YAML config, required (keys: edge/README.md)");

/**
 * `fieldbeam-edge`: every command, its options and help. Actions load what they need when they run,
 * so `--help` and `--version` touch nothing. The exit status of the action lands in `status`.
 */
export function createEdgeProgram(deps: EdgeCliDeps, status: ExitStatus = { code: 0 }): Command {
  const program = new Command('fieldbeam-edge')
    .description(
      'The Fieldbeam edge agent: readings from MQTT and ISS telemetry, buffered on disk, forwarded to NATS JetStream.',
    )
    .addHelpText('after', `${ENVIRONMENT}\n\nEach command has --help (fieldbeam-edge help COMMAND).`);

  requireOptions(program.command('run'), 'config')
    .description('run the agent (SIGHUP reloads the sensors, SIGTERM/SIGINT stop it cleanly)')
    .addOption(configOption())
    .addHelpText('after', ENVIRONMENT)
    .action(async (o: { config: string }) => {
      const { runAgent } = await import('./run-command.js');
      status.code = await runAgent(o.config, deps.createLogger());
    });

  requireOptions(program.command('check'), 'config')
    .summary('validate a config file and print it with defaults applied')
    .description(
      'Validates a config file and prints it with defaults applied; passwords, nkey seeds and URL ' +
        'passwords are shown as "(redacted)". Exit status 1 when the config is invalid (every problem listed).',
    )
    .addOption(configOption())
    .action(async (o: { config: string }) => {
      const { checkConfig } = await import('./inspect-commands.js');
      status.code = checkConfig(o.config, process.stdout);
    });

  requireOptions(program.command('status'), 'config')
    .description(
      "ask the running agent (its /healthz, at the config's http.host and http.port) and print its state",
    )
    .addOption(configOption())
    .action(async (o: { config: string }) => {
      const { showStatus } = await import('./inspect-commands.js');
      status.code = await showStatus(o.config, process.stdout, process.stderr);
    });

  requireOptions(program.command('rejects'), 'config')
    .summary('print the most recent rejected inputs kept in the buffer file')
    .description(
      'Prints the most recent rejected inputs kept in the buffer file, one JSON line each (read-only: ' +
        'safe beside the running agent).',
    )
    .addOption(configOption())
    .addOption(
      new Option('--limit <n>', 'how many, newest first').default(20).argParser(integerIn(1, 10_000_000)),
    )
    .action(async (o: { config: string; limit: number }) => {
      const { showRejects } = await import('./inspect-commands.js');
      status.code = showRejects(o.config, o.limit, process.stdout);
    });

  program.addCommand(
    createDecodeCommand({
      input: process.stdin,
      output: process.stdout,
      status,
      hooksFor: (configFile) => {
        const config = readingAgentFiles(['decode', '--config', configFile], () =>
          loadEdgeConfig(configFile),
        );
        const map = new SensorMap(config.sensors);
        return { sensors: (topic) => map.route(topic) };
      },
    }),
  );

  if (issReplay) program.addCommand(issReplay.createIssReplayCommand({}, status));

  return finishCommandLine(program, version);
}
