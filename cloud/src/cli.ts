#!/usr/bin/env node
import pg from 'pg';
import { pino } from 'pino';
import { createCollector } from './app.js';
import { loadCloudConfig } from './config.js';
import { migrate } from './db/migrations.js';

const HELP = `fieldbeam-cloud: the Fieldbeam central collector

Usage:
  fieldbeam-cloud run        run the collector (ingest, API); SIGTERM/SIGINT stop it cleanly
  fieldbeam-cloud migrate    apply pending schema migrations to DATABASE_URL and exit
  fieldbeam-cloud help       this text

Settings come from the environment; every one is documented in cloud/README.md:
  NATS_URL, NATS_USER, NATS_PASS, DATABASE_URL, FB_DATA_DIR, FB_EMBEDDED_PG_PORT,
  FB_HTTP_HOST, FB_HTTP_PORT, FB_INGEST_CONSUMER, FB_INGEST_FETCH, LOG_LEVEL
`;

async function main([command]: string[]): Promise<number> {
  switch (command) {
    case 'run': {
      const config = loadCloudConfig();
      const log = pino({ level: config.LOG_LEVEL, base: { svc: 'fieldbeam-cloud' } });
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

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`fieldbeam-cloud: ${err.message}\n`);
    process.exitCode = 1;
  },
);
