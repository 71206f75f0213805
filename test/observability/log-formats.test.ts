import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { syslogPriority } from '@fieldbeam/protocol';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cloudCli,
  edgeCli,
  freePort,
  type NatsServer,
  spawnProcess,
  startCollectorProcess,
  startNatsServer,
  startPostgres,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';

/**
 * Log formats of the real programs. journald reads a `<N>` syslog priority at the start of each line
 * of a service's stdout stream (SyslogLevelPrefix=yes) and files the line at that PRIORITY; no journald
 * runs here, so the test plays systemd's part: it connects the program's stdout to a file and sets
 * JOURNAL_STREAM to that file's device and inode, as systemd does for the journal's stream socket.
 */
const SECRET = 'nats-Pw-5d1e';

/** Environment without the settings the test sets itself (the test runner's own LOG_FORMAT, say). */
function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const { LOG_FORMAT: _f, JOURNAL_STREAM: _j, LOG_LEVEL: _l, ...env } = process.env;
  return { ...env, LOG_LEVEL: 'info', NO_COLOR: '1', ...extra };
}

/** A program whose stdout is a file that JOURNAL_STREAM names, as under systemd with StandardOutput=journal. */
function spawnUnderJournal(args: string[], env: Record<string, string>, stdoutFile: string) {
  const fd = openSync(stdoutFile, 'w');
  const { dev, ino } = fstatSync(fd, { bigint: true });
  const child = spawn(process.execPath, args, {
    env: baseEnv({ ...env, JOURNAL_STREAM: `${dev}:${ino}` }),
    stdio: ['ignore', fd, 'pipe'],
  });
  closeSync(fd);
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  return { child, output: () => readFileSync(stdoutFile, 'utf8'), stderr: () => stderr };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
}

/** Each journal line: its priority, and the JSON behind it. Fails on a line of another form. */
function journalLines(text: string): { priority: number; record: { level: number; msg: string } }[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const m = /^<(\d)>(\{.*\})$/.exec(line);
      if (!m) throw new Error(`not a journal line: ${line}`);
      return { priority: Number(m[1]), record: JSON.parse(m[2] as string) as { level: number; msg: string } };
    });
}

describe('edge agent log formats', () => {
  let dir: TempDir;
  let configFile: string;

  beforeAll(async () => {
    dir = tempDir();
    configFile = join(dir.path, 'edge.yaml');
    const closed = await freePort(); // nothing listens: the uplink warns that it is buffering
    writeFileSync(
      configFile,
      JSON.stringify({
        edge: 'gw-logs',
        data_dir: join(dir.path, 'data'),
        clock: { sync_check: 'none' },
        nats: { servers: [`nats://edge:${SECRET}@127.0.0.1:${closed}`], ack_timeout_ms: 1000 },
        mqtt: { host: '127.0.0.1', port: await freePort() },
        http: { host: '127.0.0.1', port: await freePort() },
        sensors: [
          { topic: 's/+station/t', decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' } },
        ],
      }),
    );
  });
  afterAll(() => dir?.remove());

  it('under systemd, each line carries the syslog priority of its level (info 6, warn 4, error 3)', async () => {
    const agent = spawnUnderJournal(
      [edgeCli, 'run', '--config', configFile],
      {},
      join(dir.path, 'journal.out'),
    );
    const config = readFileSync(configFile, 'utf8');
    try {
      await waitFor('the agent to run and warn', () => {
        const out = agent.output();
        if (agent.child.exitCode !== null) throw new Error(`agent exited: ${agent.stderr()}${out}`);
        return out.includes('edge agent running') && out.includes('"level":40') ? true : undefined;
      });
      // A reload of a broken config is logged as an error and the agent keeps its sensors.
      writeFileSync(configFile, '{ not yaml: [');
      agent.child.kill('SIGHUP');
      await waitFor('the reload error', () =>
        agent.output().includes('config reload failed') ? true : undefined,
      );
    } finally {
      await stop(agent.child);
      writeFileSync(configFile, config);
    }
    const lines = journalLines(agent.output());
    for (const { priority, record } of lines) expect(priority, record.msg).toBe(syslogPriority(record.level));
    const byMsg = (msg: string) => lines.find((l) => l.record.msg.startsWith(msg))?.priority;
    expect(byMsg('edge agent running')).toBe(6);
    expect(byMsg('config reload failed')).toBe(3);
    expect(new Set(lines.map((l) => l.priority))).toEqual(new Set([6, 4, 3]));
    expect(agent.output()).not.toContain(SECRET);
  }, 60_000);

  async function runBriefly(env: Record<string, string>): Promise<string> {
    const p = spawnProcess(process.execPath, [edgeCli, 'run', '--config', configFile], { env: baseEnv(env) });
    try {
      await waitFor('the agent to run', () => {
        if (p.child.exitCode !== null) throw new Error(`agent exited:\n${p.output()}`);
        return p.output().includes('edge agent running') ? true : undefined;
      });
    } finally {
      await p.stop();
    }
    return p.output();
  }

  it('writes JSON lines to a pipe, even with a JOURNAL_STREAM inherited from a service that names another stream', async () => {
    const out = await runBriefly({ JOURNAL_STREAM: '1:1' });
    const records = out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: number; svc: string; msg: string });
    expect(records.find((r) => r.msg === 'edge agent running')).toMatchObject({
      level: 30,
      svc: 'fieldbeam-edge',
    });
    expect(out).not.toContain(SECRET);
  }, 60_000);

  it('LOG_FORMAT=pretty writes readable lines, secrets redacted', async () => {
    const out = await runBriefly({ LOG_FORMAT: 'pretty' });
    const lines = out.split('\n').filter(Boolean);
    for (const line of lines)
      expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) \S/);
    expect(out).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}edge agent running edge=gw-logs mqttPort=\d+ httpPort=\d+$/m,
    );
    expect(out).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}/m);
    expect(out).not.toContain('{"level"');
    expect(out).not.toContain(SECRET);
  }, 60_000);

  it('LOG_FORMAT=journal forces priorities; an unknown LOG_FORMAT stops the start naming the choices', async () => {
    const out = await runBriefly({ LOG_FORMAT: 'journal' });
    expect(journalLines(out).find((l) => l.record.msg === 'edge agent running')?.priority).toBe(6);
    const bad = spawnProcess(process.execPath, [edgeCli, 'run', '--config', configFile], {
      env: baseEnv({ LOG_FORMAT: 'syslog' }),
    });
    await waitFor('the refusal', () => (bad.child.exitCode !== null ? true : undefined));
    expect(bad.child.exitCode).not.toBe(0);
    expect(bad.output()).toContain('LOG_FORMAT');
    expect(bad.output()).toContain('json, journal, pretty');
  }, 60_000);
});

describe('collector log formats', () => {
  let dir: TempDir;
  let nats: NatsServer;
  let postgres: TestPostgres;

  beforeAll(async () => {
    dir = tempDir();
    nats = await startNatsServer();
    postgres = await startPostgres();
  });
  afterAll(async () => {
    await postgres?.close();
    await nats?.close();
    dir?.remove();
  });

  it('under systemd, info is 6 and a batch set aside as a dead letter is a warning (4)', async () => {
    const port = await freePort();
    const collector = spawnUnderJournal(
      [cloudCli, 'run'],
      {
        NATS_URL: nats.url,
        DATABASE_URL: postgres.url,
        FB_DATA_DIR: join(dir.path, 'journal-collector'),
        FB_HTTP_HOST: '127.0.0.1',
        FB_HTTP_PORT: String(port),
        FB_COLLECTOR_ID: 'logs-journal',
      },
      join(dir.path, 'collector-journal.out'),
    );
    try {
      await waitFor(
        'the collector to run',
        () => {
          if (collector.child.exitCode !== null)
            throw new Error(`exited: ${collector.stderr()}${collector.output()}`);
          return collector.output().includes('collector running') ? true : undefined;
        },
        60_000,
      );
      const nc = await connect({ servers: nats.url });
      try {
        await jetstream(nc).publish('fb.obs.gw-logs', new TextEncoder().encode('not a batch'));
      } finally {
        await nc.close();
      }
      await waitFor('the dead-letter warning', () =>
        collector.output().includes('rejected to dead letters') ? true : undefined,
      );
    } finally {
      await stop(collector.child);
    }
    const lines = journalLines(collector.output());
    for (const { priority, record } of lines) expect(priority, record.msg).toBe(syslogPriority(record.level));
    expect(lines.find((l) => l.record.msg === 'collector running')?.priority).toBe(6);
    expect(lines.find((l) => l.record.msg.includes('rejected to dead letters'))?.priority).toBe(4);
  }, 90_000);

  it('LOG_FORMAT=pretty writes readable lines', async () => {
    const collector = await startCollectorProcess({
      name: 'logs-pretty',
      natsUrl: nats.url,
      databaseUrl: postgres.url,
      dataDir: join(dir.path, 'pretty-collector'),
      logLevel: 'info',
      env: { LOG_FORMAT: 'pretty', NO_COLOR: '1' },
    });
    try {
      await waitFor('the running line', () =>
        collector.process?.output().includes('collector running') ? true : undefined,
      );
    } finally {
      await collector.stop();
    }
    const out = collector.process?.output() ?? '';
    expect(out).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}collector running httpPort=\d+$/m);
    expect(out).not.toContain('{"level"');
  }, 90_000);
});
