import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudCli, freePort, startPostgres, type TestPostgres, tempDir } from '../harness/index.js';

const run = promisify(execFile);

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(() => postgres?.close());

describe('a collector whose NATS server is down', () => {
  it('exits naming the URL it tried, without its password, and what to do', async () => {
    const dir = tempDir();
    try {
      const port = await freePort(); // nothing listens there
      const failed = await run(process.execPath, [cloudCli, 'run'], {
        env: {
          ...process.env,
          NATS_URL: `nats://fb:n4ts-Secret@127.0.0.1:${port}`,
          DATABASE_URL: postgres.url,
          FB_DATA_DIR: join(dir.path, 'cloud'),
          FB_HTTP_PORT: String(await freePort()),
          LOG_LEVEL: 'warn',
        },
        timeout: 60_000,
      }).then(
        () => undefined,
        (err: { code: number; stderr: string; stdout: string }) => err,
      );
      expect(failed?.code).toBe(1);
      expect(failed?.stderr).toContain(
        `fieldbeam-cloud: cannot reach NATS at nats://fb:(redacted)@127.0.0.1:${port} (connection refused): ` +
          'start nats-server with JetStream there (see deploy/README.md), or set NATS_URL to where it runs',
      );
      expect(`${failed?.stderr}${failed?.stdout}`).not.toContain('n4ts-Secret');
    } finally {
      dir.remove();
    }
  });
});
