import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TracePath } from '../../cloud/src/cli/trace-path.js';
import {
  type CollectorProcess,
  cloudCli,
  type EdgeAgentProcess,
  type NatsServer,
  startCollectorProcess,
  startEdgeAgentProcess,
  startNatsServer,
  startPostgres,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';

/**
 * One trace id from the sensor to the dataset, with real processes: readings published over MQTT and
 * posted over HTTP intake (with and without a traceparent) to an agent (fieldbeam-edge run), forwarded
 * through nats-server to a collector (fieldbeam-cloud run) with a dataset that builds provisional
 * versions; then `fieldbeam-cloud trace` follows each trace and reading hop by hop.
 */
const TOKEN = 'trace-test-token-0123456789';
const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const DATASETS = `datasets:
  - name: hourly
    filter: { variables: [air_temperature, relative_humidity] }
    window: PT1H
    provisional: true
    debounce: PT1S
`;

let nats: NatsServer;
let postgres: TestPostgres;
let dir: TempDir;
let db: pg.Pool;
let collector: CollectorProcess;
let edge: EdgeAgentProcess;
let env: Record<string, string>;

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNatsServer({ streams: true }), startPostgres()]);
  dir = tempDir('fieldbeam-trace-');
  const datasetsFile = join(dir.path, 'datasets.yaml');
  writeFileSync(datasetsFile, DATASETS);
  db = new pg.Pool({ connectionString: postgres.url });
  // An idle client's connection ends when Postgres stops at the end: not an error of the test.
  db.on('error', () => {});
  env = { DATABASE_URL: postgres.url, FB_DATASETS_FILE: datasetsFile, FB_DATA_DIR: join(dir.path, 'cloud') };
  collector = await startCollectorProcess({
    name: 'trace',
    natsUrl: nats.url,
    databaseUrl: postgres.url,
    dataDir: env.FB_DATA_DIR as string,
    env: { FB_DATASETS_FILE: datasetsFile, FB_BUILD_POLL_MS: '200', FB_INGEST_FETCH: '8' },
  });
  edge = await startEdgeAgentProcess({
    dir: dir.path,
    config: {
      edge: 'gw-trace',
      nats: { servers: [nats.url] },
      status_interval_ms: 1000,
      http_intake: { enabled: true, tokens: { script: TOKEN } },
      sensors: [
        {
          topic: 'sensors/+station/env',
          decoder: {
            type: 'json',
            fields: {
              t: { variable: 'air_temperature', unit: 'degC' },
              h: { variable: 'relative_humidity', unit: '%' },
            },
          },
        },
      ],
    },
  });
}, 120_000);

afterAll(async () => {
  await edge?.stop();
  await collector?.stop();
  await db?.end();
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cloudCli, ...args],
      { env: { ...process.env, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
      },
    );
  });
}

async function post(topic: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`http://${edge.host}:${edge.httpPort}/ingest/${topic}`, {
    method: 'POST',
    body,
    headers: { authorization: `Bearer ${TOKEN}`, ...headers },
  });
  return {
    status: res.status,
    body: (await res.json()) as { ids?: string[]; trace?: string; error?: string },
  };
}

/** The path once every hop is there: readings, their message, a window and a version containing them. */
async function completePath(args: string[], readings: number): Promise<TracePath> {
  return waitFor(
    `the full path of ${args.join(' ')}`,
    async () => {
      const r = await cli(['trace', ...args, '--json']);
      if (r.code !== 0 && r.code !== 1) throw new Error(`trace exited ${r.code}: ${r.stderr}`);
      const path = JSON.parse(r.stdout) as TracePath;
      const complete =
        path.readings.length === readings &&
        path.readings.every((x) => x.topic !== null && x.batches.length === 1) &&
        path.windows.length > 0 &&
        path.versions.length > 0;
      return complete ? path : undefined;
    },
    90_000,
  );
}

const hexTrace = /^[0-9a-f]{32}$/;

describe('fieldbeam-cloud trace', () => {
  let mqttTrace: string;
  let httpIds: string[];
  let newTrace: string;

  it('readings get a trace at the edge: new for MQTT and a bare POST, the caller’s with a traceparent', async () => {
    const client = await mqtt.connectAsync(`mqtt://${edge.host}:${edge.mqttPort}`, { clientId: 'barn-1' });
    try {
      await client.publishAsync('sensors/barn/env', '{"t":21.5,"h":60}', { qos: 1 });
    } finally {
      await client.endAsync();
    }
    const traced = await post('sensors/shed/env', '{"t":8.25,"h":71}', {
      traceparent: `00-${CALLER_TRACE}-00f067aa0ba902b7-01`,
    });
    expect(traced.status).toBe(201);
    expect(traced.body.trace).toBe(CALLER_TRACE);
    httpIds = traced.body.ids ?? [];
    expect(httpIds).toHaveLength(2);
    const bare = await post('sensors/yard/env', '{"t":3.5}');
    expect(bare.status).toBe(201);
    expect(bare.body.trace).toMatch(hexTrace);
    expect(bare.body.trace).not.toBe(CALLER_TRACE);
    newTrace = bare.body.trace as string;
    // An invalid traceparent starts a new trace rather than being refused.
    const invalid = await post('sensors/yard/env', '{"t":3.75}', {
      traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
    });
    expect(invalid.status).toBe(201);
    expect(invalid.body.trace).toMatch(hexTrace);
    expect(invalid.body.trace).not.toBe('0'.repeat(32));

    const rows = await waitFor(
      'the readings in Postgres with their trace ids',
      async () => {
        const r = await db
          .query<{ id: string; station: string; trace_id: string | null }>(
            'SELECT id, station, trace_id FROM observations ORDER BY station, variable',
          )
          .catch(() => undefined);
        return r && r.rows.length === 6 ? r.rows : undefined;
      },
      60_000,
    );
    const barn = rows.filter((r) => r.station === 'barn');
    expect(barn).toHaveLength(2);
    mqttTrace = barn[0]?.trace_id as string;
    expect(mqttTrace).toMatch(hexTrace);
    // Every reading of one message shares its trace.
    expect(barn[1]?.trace_id).toBe(mqttTrace);
    expect(rows.filter((r) => r.station === 'shed').map((r) => r.trace_id)).toEqual([
      CALLER_TRACE,
      CALLER_TRACE,
    ]);
  });

  it('follows the caller’s trace from the edge to the dataset versions', async () => {
    const path = await completePath([CALLER_TRACE], 2);
    expect(path.trace).toBe(CALLER_TRACE);
    // Received at the edge: time, source, topic.
    for (const r of path.readings) {
      expect(r).toMatchObject({
        edge: 'gw-trace',
        source: 'mqtt',
        station: 'shed',
        topic: 'sensors/shed/env',
      });
      expect(Date.parse(r.received)).toBeGreaterThan(0);
      expect(httpIds).toContain(r.id);
    }
    // The batch: edge buffer rows and JetStream sequence, one message carrying both readings.
    expect(path.batches).toHaveLength(1);
    const batch = path.batches[0] as TracePath['batches'][number];
    expect(batch.edge).toBe('gw-trace');
    expect(batch.streamSeq).toBeGreaterThan(0);
    expect(batch.rows[1]).toBeGreaterThanOrEqual(batch.rows[0]);
    expect(batch.observations).toBeGreaterThanOrEqual(2);
    expect(path.readings.every((r) => r.batches[0] === batch.streamSeq)).toBe(true);
    // Ingested: the time (the rows' ingest time) and the round.
    expect(batch.round).toMatch(/^\d+$/);
    expect(path.readings.every((r) => r.ingested === batch.ingested)).toBe(true);
    // The window it touched and the versions built since.
    expect(path.windows.map((w) => w.dataset)).toEqual(['hourly']);
    const window = path.windows[0] as TracePath['windows'][number];
    expect(window).toMatchObject({ batch: batch.streamSeq, readings: 2 });
    expect(Date.parse(window.markedAt)).toBeGreaterThanOrEqual(Date.parse(batch.ingested));
    for (const v of path.versions) {
      expect(v).toMatchObject({ dataset: 'hourly', windowStart: window.windowStart });
      expect(Date.parse(v.builtAt)).toBeGreaterThan(Date.parse(window.markedAt));
      expect(v.rows).toBeGreaterThanOrEqual(2);
    }

    const text = await cli(['trace', CALLER_TRACE]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`trace ${CALLER_TRACE}: 2 reading(s)`);
    expect(text.stdout).toContain('topic sensors/shed/env');
    expect(text.stdout).toContain(`JetStream FB_OBS seq ${batch.streamSeq}`);
    expect(text.stdout).toContain(`rows ${batch.rows[0]}-${batch.rows[1]}`);
    expect(text.stdout).toContain(`round ${batch.round}`);
    expect(text.stdout).toMatch(/hourly .* version \d+ /);
    // The window's audit trail names the message's round and traces.
    const audit = await cli(['datasets', '--dataset', 'hourly', '--window', window.windowStart]);
    expect(audit.code).toBe(0);
    expect(audit.stdout).toMatch(
      new RegExp(`FB_OBS:${batch.streamSeq} .* round ${batch.round} .*${CALLER_TRACE}`),
    );
    // A whole traceparent is taken too.
    const byHeader = await cli(['trace', `00-${CALLER_TRACE}-00f067aa0ba902b7-01`, '--json']);
    expect((JSON.parse(byHeader.stdout) as TracePath).readings).toHaveLength(2);
  });

  it('follows an MQTT message’s trace and a bare POST’s new trace', async () => {
    const mq = await completePath([mqttTrace], 2);
    expect(mq.readings.map((r) => r.topic)).toEqual(['sensors/barn/env', 'sensors/barn/env']);
    expect(mq.batches).toHaveLength(1);
    const bare = await completePath([newTrace], 1);
    expect(bare.readings[0]).toMatchObject({ station: 'yard', variable: 'air_temperature', value: 3.5 });
  });

  it('follows one reading from its observation id', async () => {
    const id = httpIds[0] as string;
    const path = await completePath(['--reading', id], 1);
    expect(path.trace).toBe(CALLER_TRACE);
    expect(path.readings[0]?.id).toBe(id);
    const byTrace = await completePath([CALLER_TRACE], 2);
    expect(path.batches).toEqual(byTrace.batches);
    expect(path.versions.map((v) => v.version)).toEqual(
      byTrace.versions.filter((v) => v.windowStart === path.windows[0]?.windowStart).map((v) => v.version),
    );
  });

  it('says so for a trace it has none of, and refuses what is no trace id', async () => {
    const none = await cli(['trace', 'f'.repeat(32)]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no reading of trace/);
    const bad = await cli(['trace', 'not-a-trace']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/not a W3C trace-id/);
    const both = await cli(['trace', CALLER_TRACE, '--reading', 'a'.repeat(64)]);
    expect(both.code).toBe(2);
  });

  it('edge log lines about a rejected request carry its trace id', async () => {
    const rejectedTrace = '0af7651916cd43dd8448eb211c80319c';
    const r = await post('sensors/shed/env', 'not json', {
      traceparent: `00-${rejectedTrace}-b7ad6b7169203331-01`,
    });
    expect(r.status).toBe(400);
    await waitFor(
      'the reject warning with its trace id',
      async () => (edge.process?.output().includes(`"trace_id":"${rejectedTrace}"`) ? true : undefined),
      10_000,
    );
  });
});
