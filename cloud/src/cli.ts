#!/usr/bin/env node
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createCollector } from './app.js';
import { type CloudConfig, loadCloudConfig } from './config.js';
import { loadDatasets } from './datasets/dataset-config.js';
import { windowToRebuild } from './datasets/rebuild.js';
import { WindowStore } from './datasets/window-store.js';
import { parseWindowKey, windowKey, windowStartOf } from './datasets/windows.js';
import { runDeadLettersCommand } from './db/dead-letters-command.js';
import { embeddedDatabaseUrl, embeddedPostgresDir } from './db/embedded-postgres.js';
import { migrate } from './db/migrations.js';
import { runEdgeCommand } from './identity/edge-command.js';
import { createCloudLogger } from './logger.js';
import { identityDir } from './nats/connection.js';

const HELP = `fieldbeam-cloud: the Fieldbeam central collector

Usage:
  fieldbeam-cloud run        run the collector (ingest, API); SIGTERM/SIGINT stop it cleanly
  fieldbeam-cloud migrate    apply pending schema migrations to DATABASE_URL and exit
  fieldbeam-cloud datasets [--dataset NAME [--window TIME]] [--limit N] [--json]
                             the configured datasets and their windows: state, version, due time;
                             with --window: that window's versions and the batches that touched it
  fieldbeam-cloud rebuild DATASET WINDOW
                             make a window due now (WINDOW: its start, or any time inside it,
                             e.g. 2026-11-30T12:00:00Z); a running collector builds it
  fieldbeam-cloud dead-letters [--source SOURCE] [--limit N] [--json]
                             what ingest, the builder and exporters set aside, with the reason
  fieldbeam-cloud edge add ID [--rotate] [--url URL --nats URL]
                             issue an edge's NATS key, update the server authorization; with
                             --url also a Raspberry Pi first-boot user-data file (edge --help)
  fieldbeam-cloud edge list  the registered edges
  fieldbeam-cloud help       this text

Settings come from the environment; every one is documented in cloud/README.md:
  NATS_URL, NATS_USER, NATS_PASS, NATS_NKEY_SEED_FILE, FB_IDENTITY_DIR, DATABASE_URL, FB_DATA_DIR,
  FB_EMBEDDED_PG_PORT, FB_HTTP_HOST, FB_HTTP_PORT, FB_INGEST_CONSUMER, FB_INGEST_FETCH, FB_DATASETS_FILE,
  FB_OBJECT_STORE, FB_OBJECT_DIR, FB_S3_*, FB_BUILD_POLL_MS, FB_BUILD_LEASE_MS, FB_EXPORTERS,
  FB_API_MAX_LIMIT, FB_COLLECTOR_ID, FB_RELEASES_DIR, FB_ADMIN_TOKEN, LOG_LEVEL
`;

/**
 * The database of the CLI commands: DATABASE_URL, or the embedded Postgres of a running collector, as
 * the collector's own role (its password is in the embedded Postgres's data folder).
 */
function databaseUrl(config: CloudConfig): string {
  return (
    config.DATABASE_URL ??
    embeddedDatabaseUrl(embeddedPostgresDir(config.FB_DATA_DIR), config.FB_EMBEDDED_PG_PORT)
  );
}

async function withPool<T>(config: CloudConfig, f: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({ connectionString: databaseUrl(config), max: 2 });
  try {
    return await f(pool);
  } finally {
    await pool.end();
  }
}

const iso = (d: Date | null) => (d ? d.toISOString().replace('.000Z', 'Z') : '-');

async function datasetsCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dataset: { type: 'string' },
      window: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const config = loadCloudConfig();
  const defs = loadDatasets(config.FB_DATASETS_FILE);
  const limit = values.limit ? Number(values.limit) : 50;
  return withPool(config, async (pool) => {
    const store = new WindowStore(pool);
    if (values.window) {
      const def = defs.find((d) => d.name === values.dataset);
      const at = parseWindowKey(values.window);
      if (!def || at === undefined) {
        process.stderr.write(
          '--window needs --dataset NAME (configured) and a time such as 2026-11-30T12:00:00Z\n',
        );
        return 2;
      }
      const start = new Date(windowStartOf(at, def.window));
      const versions = await store.versions(def.name, start);
      const marks = await store.marks(def.name, start);
      if (values.json) {
        process.stdout.write(`${JSON.stringify({ dataset: def.name, start, versions, marks }, null, 2)}\n`);
        return 0;
      }
      process.stdout.write(`${def.name} ${iso(start)}\nversions:\n`);
      for (const v of versions) {
        process.stdout.write(
          `  ${v.version}  rows ${v.rows}  ${v.provisional ? 'provisional' : 'final'}  gen ${v.generation}  ${iso(v.builtAt)}  by ${v.builtBy}  ${v.key}  sha256 ${v.sha256}\n`,
        );
      }
      process.stdout.write('batches that touched it (audit):\n');
      for (const m of marks) {
        process.stdout.write(`  ${iso(m.at)}  ${m.batch}  edge ${m.edge || '-'}  new rows ${m.inserted}\n`);
      }
      return 0;
    }
    const rows = await store.windows({ ...(values.dataset ? { dataset: values.dataset } : {}), limit });
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ datasets: defs, windows: rows }, null, 2)}\n`);
      return 0;
    }
    for (const d of defs) {
      if (values.dataset && d.name !== values.dataset) continue;
      const f = d.filter;
      process.stdout.write(
        `${d.name}: window ${d.window / 1000}s, grace ${d.grace / 1000}s, debounce ${d.debounce / 1000}s` +
          `${d.provisional ? ', provisional builds' : ''}; sources ${f.sources?.join(',') ?? 'any'}, ` +
          `stations ${f.stations?.join(',') ?? 'any'}, variables ${f.variables?.join(',') ?? 'any'}\n`,
      );
    }
    const table = [
      ['DATASET', 'WINDOW', 'STATE', 'VERSION', 'GEN/BUILT', 'FINAL', 'DUE', 'LEASE', 'ERROR'],
      ...rows.map((w) => [
        w.dataset,
        iso(w.windowStart),
        w.state,
        w.version === null ? '-' : String(w.version),
        `${w.generation}/${w.builtGeneration}`,
        w.final ? 'yes' : 'no',
        iso(w.dueAt),
        w.leaseOwner ?? '-',
        w.lastError ? w.lastError.slice(0, 60) : '',
      ]),
    ];
    const widths = table[0]?.map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length))) ?? [];
    process.stdout.write(
      `\n${table
        .map((r) =>
          r
            .map((c, i) => c.padEnd(widths[i] ?? 0))
            .join('  ')
            .trimEnd(),
        )
        .join('\n')}\n`,
    );
    if (rows.length === 0) process.stdout.write('(no windows yet)\n');
    return 0;
  });
}

async function rebuildCommand(args: string[]): Promise<number> {
  const [name, window] = args;
  if (!name || !window) {
    process.stderr.write('usage: fieldbeam-cloud rebuild DATASET WINDOW\n');
    return 2;
  }
  const config = loadCloudConfig();
  const target = windowToRebuild(loadDatasets(config.FB_DATASETS_FILE), name, window);
  if ('error' in target) {
    process.stderr.write(
      `${target.error}; datasets file: ${config.FB_DATASETS_FILE ?? '(FB_DATASETS_FILE unset)'}\n`,
    );
    return 2;
  }
  const { def, start } = target;
  await withPool(config, (pool) =>
    new WindowStore(pool).requestRebuild(def, start, new Date().toISOString()),
  );
  process.stdout.write(
    `window ${windowKey(start)} of ${name} is due now; a running collector will build it\n`,
  );
  return 0;
}

async function main([command, ...args]: string[]): Promise<number> {
  switch (command) {
    case 'edge': {
      const config = loadCloudConfig();
      return runEdgeCommand(args, identityDir(config), process.stdout, config.FB_RELEASES_DIR);
    }
    case 'datasets':
      return datasetsCommand(args);
    case 'rebuild':
      return rebuildCommand(args);
    case 'dead-letters':
      return withPool(loadCloudConfig(), (pool) => runDeadLettersCommand(args, pool, process.stdout));
    case 'run': {
      const config = loadCloudConfig();
      const log = createCloudLogger(config);
      const collector = await createCollector(config, log);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log.info({ signal }, 'stopping');
          setTimeout(() => process.exit(1), 20_000).unref();
          void collector.close().then(resolve);
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      log.info('stopped');
      return 0;
    }
    case 'migrate': {
      const config = loadCloudConfig();
      if (!config.DATABASE_URL)
        throw new Error('migrate needs DATABASE_URL (run starts its embedded Postgres itself)');
      const pool = new pg.Pool({ connectionString: config.DATABASE_URL });
      try {
        const applied = await migrate(pool);
        process.stdout.write(
          applied.length ? `applied migrations ${applied.join(', ')}\n` : 'schema is up to date\n',
        );
      } finally {
        await pool.end();
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

// Exit explicitly: embedded-postgres installs an exit hook (async-exit-hook) that would otherwise
// end the process with status 0 whatever the command returned.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`fieldbeam-cloud: ${err.message}\n`);
    process.exit(1);
  },
);
