import { Command, InvalidArgumentError, Option } from 'commander';
import type { Logger } from 'pino';
import { type CloudConfig, loadCloudConfig } from '../config.js';
import type { DeadLettersOptions } from '../db/dead-letters-command.js';
import { createEdgeCommand } from '../identity/edge-command.js';
import { identityDir } from '../nats/connection.js';
import { version } from '../version.js';
import { allCommands, type ExitStatus, finishCommandLine, integerIn } from './command-line.js';
import { createSensorsCommand } from './sensors-command.js';
import { settingsHelp } from './settings-help.js';

/** What the CLI takes from its caller: the logger of `run` (made only when the collector runs). */
export interface CloudCliDeps {
  createLogger(config: CloudConfig): Logger;
}

/** The settings of the commands that only read the database (DATABASE_URL, else the embedded one). */
const DATABASE_SETTINGS = ['DATABASE_URL', 'FB_DATA_DIR', 'FB_EMBEDDED_PG_PORT'];

/**
 * `fieldbeam-cloud`: every command, its options and help. Settings come from the environment and are
 * read when an action runs, so `--help` and `--version` touch nothing. The exit status of the action
 * lands in `status`.
 */
export function createCloudProgram(deps: CloudCliDeps, status: ExitStatus = { code: 0 }): Command {
  const program = new Command('fieldbeam-cloud')
    .description(
      'The Fieldbeam collector: JetStream ingest into Postgres, datasets, exporters, read API. ' +
        'Settings come from the environment (run --help lists them all).',
    )
    .addHelpText('after', '\nEach command has --help (fieldbeam-cloud help COMMAND).');

  program
    .command('run')
    .description(
      'run the collector (ingest, datasets, exporters, HTTP); SIGTERM/SIGINT stop it cleanly. Without ' +
        'DATABASE_URL it starts an embedded Postgres in $FB_DATA_DIR/postgres',
    )
    .addHelpText('after', () => settingsHelp())
    .action(async () => {
      const config = loadCloudConfig();
      const { runCollector } = await import('./run-command.js');
      status.code = await runCollector(config, deps.createLogger(config));
    });

  program
    .command('migrate')
    .description('apply pending schema migrations to DATABASE_URL and exit (run migrates by itself at start)')
    .addHelpText('after', () => settingsHelp(['DATABASE_URL']))
    .action(async () => {
      const { migrateDatabase } = await import('./run-command.js');
      status.code = await migrateDatabase(loadCloudConfig());
    });

  const datasets = program
    .command('datasets')
    .summary('the configured datasets and their windows: state, version, due time')
    .description(
      'The configured datasets (FB_DATASETS_FILE) and their windows: state, version, generation, due ' +
        "time, lease; with --window, that window's versions and the batches that touched it (audit).",
    )
    .option('--dataset <name>', 'only this dataset')
    .option('--window <time>', 'with --dataset: the window holding this time, e.g. 2026-11-30T12:00:00Z')
    .addOption(
      new Option('--limit <n>', 'windows listed at most').default(50).argParser(integerIn(1, 100_000)),
    )
    .option('--json', 'print JSON instead of a table')
    .addHelpText('after', () => settingsHelp([...DATABASE_SETTINGS, 'FB_DATASETS_FILE']))
    // It has an action and a subcommand (prune): a word that is neither is an unknown command, not
    // an argument too many.
    .allowExcessArguments()
    .action(
      async (options: { dataset?: string; window?: string; limit: number; json?: boolean }, cmd: Command) => {
        if (cmd.args.length > 0)
          cmd.error(`error: unknown command '${cmd.args[0]}'`, { code: 'commander.unknownCommand' });
        const { showDatasets } = await import('./datasets-command.js');
        status.code = await showDatasets(loadCloudConfig(), options);
      },
    );

  // Options after `prune` are prune's (both have --dataset), not those of `datasets`: commander needs
  // positional options on every command above it for that.
  program.enablePositionalOptions();
  datasets.enablePositionalOptions();
  datasets
    .command('prune')
    .summary('delete old dataset versions from the object store, keeping the newest of each window')
    .description(
      'Deletes the versions of each window beyond the newest --keep, objects and exports, from the ' +
        'object store and the database. The version a window points to as current and versions not ' +
        'yet announced are always kept.',
    )
    .addOption(
      new Option('--keep <n>', 'newest versions of each window kept')
        .default(3)
        .argParser(integerIn(1, 1000)),
    )
    .option('--dataset <name>', 'only this dataset')
    .option('--dry-run', 'list what would be deleted; delete nothing')
    .addHelpText('after', () =>
      settingsHelp([
        ...DATABASE_SETTINGS,
        'FB_OBJECT_STORE',
        'FB_OBJECT_DIR',
        'FB_S3_BUCKET',
        'FB_S3_PREFIX',
        'FB_S3_ENDPOINT',
        'FB_S3_REGION',
        'FB_S3_FORCE_PATH_STYLE',
        'FB_S3_ACCESS_KEY_ID',
        'FB_S3_SECRET_ACCESS_KEY',
      ]),
    )
    .action(async (options: { keep: number; dataset?: string; dryRun?: boolean }) => {
      const { runPruneCommand } = await import('./prune-command.js');
      status.code = await runPruneCommand(loadCloudConfig(), options);
    });

  program
    .command('rebuild')
    .summary('make a window due now; a running collector builds it')
    .description('Makes a window of a dataset due now; a running collector builds it.')
    .argument('<dataset>', 'a dataset of FB_DATASETS_FILE')
    .argument('<window>', 'the window: its start or any time inside it, e.g. 2026-11-30T12:00:00Z')
    .addHelpText('after', () => settingsHelp([...DATABASE_SETTINGS, 'FB_DATASETS_FILE']))
    .action(async (dataset: string, window: string) => {
      const { requestRebuild } = await import('./datasets-command.js');
      status.code = await requestRebuild(loadCloudConfig(), dataset, window);
    });

  program
    .command('trace')
    .summary('the path of readings from the edge to the dataset versions that contain them')
    .description(
      'The path of the readings of one trace (the W3C trace-id an edge gave the message, or the ' +
        'trace-id of the traceparent an HTTP client sent), or of one reading: received at the edge ' +
        '(time, source, topic), the batch that carried it (edge buffer rows, JetStream sequence), ' +
        'ingested (time, round), the dataset windows it touched and the dataset versions that contain it. ' +
        'Exit status 1 when none is stored.',
    )
    .argument('[trace-id]', 'a trace-id (32 hex digits) or a whole traceparent')
    .option('--reading <obs-id>', 'the path of this reading (observation id) instead')
    .option('--json', 'print JSON instead of text')
    .addHelpText('after', () => settingsHelp([...DATABASE_SETTINGS, 'FB_DATASETS_FILE']))
    .action(async (id: string | undefined, options: { reading?: string; json?: boolean }) => {
      const { runTraceCommand } = await import('./trace-command.js');
      status.code = await runTraceCommand(loadCloudConfig(), id, options);
    });

  program
    .command('dead-letters')
    .summary('what ingest, the builder and exporters set aside, with the reason')
    .description(
      'What ingest, the coordinator, the builder and exporters set aside, newest first: when, source, ' +
        'code, subject and reason.',
    )
    .option(
      '--source <source>',
      'only from ingest, coordinator, builder, exporter (every exporter) or exporter:geoparquet',
    )
    .addOption(new Option('--limit <n>', 'how many at most').default(50).argParser(integerIn(1, 10_000)))
    .addOption(
      new Option('--before <id>', 'only those older than this dead-letter id (the next page)').argParser(
        (id: string) => {
          if (!/^\d{1,18}$/.test(id)) throw new InvalidArgumentError('expected a dead-letter id');
          return id;
        },
      ),
    )
    .option('--json', 'print JSON instead of a table')
    .addHelpText('after', () => settingsHelp(DATABASE_SETTINGS))
    .action(async (options: DeadLettersOptions) => {
      const [{ runDeadLettersCommand }, { withPool }] = await Promise.all([
        import('../db/dead-letters-command.js'),
        import('./database.js'),
      ]);
      status.code = await withPool(loadCloudConfig(), (pool) =>
        runDeadLettersCommand(options, pool, process.stdout),
      );
    });

  const edge = createEdgeCommand(
    () => {
      const config = loadCloudConfig();
      return {
        identityDir: identityDir(config),
        releasesDir: config.FB_RELEASES_DIR,
        httpHost: config.FB_HTTP_HOST,
        config,
      };
    },
    process.stdout,
    process.stderr,
    status,
  );
  for (const cmd of allCommands(edge)) {
    const fleet = cmd.name() !== 'add' && cmd !== edge;
    cmd.addHelpText('after', () =>
      settingsHelp(
        fleet
          ? [
              'NATS_URL',
              'NATS_USER',
              'NATS_PASS',
              'NATS_NKEY_SEED_FILE',
              'FB_IDENTITY_DIR',
              ...DATABASE_SETTINGS,
            ]
          : ['FB_IDENTITY_DIR', 'FB_DATA_DIR', 'FB_RELEASES_DIR', 'FB_HTTP_HOST'],
      ),
    );
  }
  program.addCommand(edge);

  const sensors = createSensorsCommand({ config: () => loadCloudConfig(), out: process.stdout }, status);
  for (const cmd of allCommands(sensors))
    cmd.addHelpText('after', () =>
      settingsHelp([
        'NATS_URL',
        'NATS_USER',
        'NATS_PASS',
        'NATS_NKEY_SEED_FILE',
        'FB_IDENTITY_DIR',
        'FB_DATA_DIR',
      ]),
    );
  program.addCommand(sensors);

  return finishCommandLine(program, version);
}
