import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addEdge } from '@fieldbeam/cloud';
import { formatIssTimestamp } from '@fieldbeam/edge';
import { connect, nkeyAuthenticator } from '@nats-io/transport-node';
import mqtt, { type MqttClient } from 'mqtt';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  DatasetsAnswer,
  EdgeAnswer,
  FleetAnswer,
  FleetEdge,
} from '../../cloud/src/console/console-api.js';
// The replay server is a test and demo tool outside the agent's package entry.
import { createTlcpReplayServer } from '../../edge/src/iss-replay/index.js';
import {
  type CollectorProcess,
  type EdgeAgentProcess,
  launchChromium,
  type NatsServer,
  pageProblems,
  repoRoot,
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
 * The operator console in Debian's Chromium against real processes: nats-server with the edges' own
 * keys, Postgres, the collector (with a dataset of short windows and an admin token) and two edge
 * agents. Every check waits for what the page shows; none depends on how fast it shows it.
 * With FB_CONSOLE_SCREENSHOTS=docs the screenshots (always taken) replace docs/console/*.png.
 */
const EDGES = ['gw-a', 'gw-b'] as const;
const TOKEN = 'console-test-token-0123456789abcdef';
const LOCAL = {
  topic: 's/+station/t',
  decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' },
};

let nats: NatsServer;
let postgres: TestPostgres;
let dir: TempDir;
let collector: CollectorProcess;
let browser: Browser;
const agents = new Map<string, EdgeAgentProcess>();
const clients: MqttClient[] = [];
const contexts: BrowserContext[] = [];
let seeds: Map<string, string>;
let iss: Awaited<ReturnType<typeof createTlcpReplayServer>>;
const ISS_ITEMS = ['USLAB000058', 'S0000003'];

const base = () => `http://127.0.0.1:${collector.httpPort}`;
const agent = (id: string) => agents.get(id) as EdgeAgentProcess;
const api = async <T>(path: string): Promise<T> => {
  const res = await fetch(`${base()}/console/api/${path}`);
  expect(res.status, path).toBe(200);
  return (await res.json()) as T;
};

/** A page in a context of its own (its own cookies), failing the test on any error it reports. */
async function openPage(path: string): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  contexts.push(context);
  const page = await context.newPage();
  const problems = pageProblems(page);
  await page.goto(base() + path);
  return { page, problems };
}

async function screenshot(page: Page, name: string): Promise<void> {
  const file = join(dir.path, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  expect(readFileSync(file).subarray(1, 4).toString()).toBe('PNG');
  if (process.env.FB_CONSOLE_SCREENSHOTS === 'docs') {
    mkdirSync(join(repoRoot(), 'docs', 'console'), { recursive: true });
    copyFileSync(file, join(repoRoot(), 'docs', 'console', `${name}.png`));
  }
}

async function sensorClient(id: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(agent(id).mqttUrl, { clientId: `sensor-${id}-${clients.length}` });
  clients.push(client);
  return client;
}

/** The text of each cell of an edge's fleet row, by column. */
async function fleetRow(page: Page, id: string): Promise<Record<string, string>> {
  return page
    .locator(`tr[data-edge="${id}"] td`)
    .evaluateAll((tds) =>
      Object.fromEntries(tds.map((td) => [td.getAttribute('data-col') ?? '', td.textContent ?? ''])),
    );
}

const dash = '–';
/** What the fleet page shows of the figures that do not move while an edge idles. */
const steady = (e: FleetEdge) => ({
  id: e.id,
  online: e.online ? 'online' : 'offline',
  version: e.version ?? dash,
  bufferDepth: e.bufferDepth === null ? dash : String(e.bufferDepth),
  clock: e.clock ?? dash,
  sensors: e.sensors === null ? dash : String(e.sensors),
});

beforeAll(async () => {
  dir = tempDir();
  const idDir = join(dir.path, 'identity');
  seeds = new Map(EDGES.map((id) => [id, addEdge(idDir, id).seed]));
  writeFileSync(
    join(dir.path, 'datasets.yaml'),
    `datasets:
  - name: co2
    title: Greenhouse CO2
    filter: { variables: [co2] }
    window: PT10S
    grace: PT1S
    debounce: PT0.3S
`,
  );
  [nats, postgres] = await Promise.all([
    startNatsServer({ extraConfig: readFileSync(join(idDir, 'nats-authorization.conf'), 'utf8') }),
    startPostgres(),
  ]);
  collector = await startCollectorProcess({
    name: 'console-1',
    natsUrl: nats.url,
    databaseUrl: postgres.url,
    dataDir: join(dir.path, 'collector'),
    env: {
      FB_IDENTITY_DIR: idDir,
      FB_ADMIN_TOKEN: TOKEN,
      FB_DATASETS_FILE: join(dir.path, 'datasets.yaml'),
      FB_BUILD_POLL_MS: '200',
      FB_CONSOLE_PUSH_MS: '500',
    },
  });
  // gw-a also follows the ISS feed, from a local Lightstreamer replay server the test feeds.
  iss = await createTlcpReplayServer({ keepaliveMs: 1000 });
  for (const id of EDGES) {
    agents.set(
      id,
      await startEdgeAgentProcess({
        dir: dir.path,
        config: {
          edge: id,
          status_interval_ms: 1000,
          nats: { servers: [nats.url], nkey_seed: seeds.get(id) },
          sensors: [LOCAL],
          ...(id === 'gw-a' ? { iss: { enabled: true, server_url: iss.url, items: ISS_ITEMS } } : {}),
        },
      }),
    );
  }
  await waitFor('both edges online in the console API', async () => {
    const f = await api<FleetAnswer>('fleet');
    return f.online === EDGES.length ? f : undefined;
  });
  browser = await launchChromium();
});

afterAll(async () => {
  await Promise.all(contexts.map((c) => c.close().catch(() => {})));
  await browser?.close();
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
  await Promise.all([...agents.values()].map((a) => a.stop()));
  await collector?.stop();
  await iss?.close();
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

describe('operator console in Chromium', () => {
  it('serves the console to a browser at / and keeps the JSON landing page for API clients', async () => {
    const html = await fetch(`${base()}/`, { headers: { Accept: 'text/html' } });
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    expect(html.headers.get('content-security-policy')).toContain("script-src 'self'");
    const body = await html.text();
    expect(body).toMatch(/<script type="module" src="\/console\/app\.[A-Z0-9]+\.js"><\/script>/);
    expect(body).not.toMatch(/<script>|<style>|style=/);
    const json = await fetch(`${base()}/`, { headers: { Accept: 'application/json' } });
    expect(json.headers.get('content-type')).toMatch(/json/);
    expect(((await json.json()) as { links?: unknown[] }).links).toBeDefined();
  });

  it('lists every edge on the fleet page with the values the API gives', async () => {
    const { page, problems } = await openPage('/');
    const answer = await api<FleetAnswer>('fleet');
    expect(answer.edges.map((e) => e.id).sort()).toEqual([...EDGES]);
    for (const edge of answer.edges) {
      const want = steady(edge);
      await waitFor(`${edge.id}'s fleet row equal to the API's`, async () => {
        const row = await fleetRow(page, edge.id);
        const shown = Object.fromEntries(Object.keys(want).map((k) => [k, row[k]]));
        return JSON.stringify(shown) === JSON.stringify(want) ? shown : undefined;
      });
    }
    await page.getByText('2 edges, 2 online, 0 offline').waitFor();
    await page.locator('.live.on').waitFor();
    // Sorting: by id descending puts gw-b first; the filter narrows to one edge.
    await page.locator('button[data-sort="id"]').click();
    await waitFor('rows sorted by id, descending', async () => {
      const ids = await page
        .locator('tbody tr')
        .evaluateAll((trs) => trs.map((t) => t.getAttribute('data-edge')));
      return ids.join() === 'gw-b,gw-a' ? ids : undefined;
    });
    await page.locator('input[name="filter"]').fill('gw-a');
    await waitFor('the filter leaving gw-a only', async () => {
      const ids = await page
        .locator('tbody tr')
        .evaluateAll((trs) => trs.map((t) => t.getAttribute('data-edge')));
      return ids.join() === 'gw-a' ? ids : undefined;
    });
    await page.locator('input[name="filter"]').fill('');
    await page.locator('tbody tr').nth(1).waitFor();
    expect(problems).toEqual([]);
  });

  it('shows a sensor added through the form on the edge page, and its readings in a live plot', async () => {
    const { page, problems } = await openPage('/console/edge?id=gw-a');
    await page.getByTestId('edge-id').getByText('gw-a').waitFor();
    await page.locator('tr[data-origin="local"][data-topic="s/+station/t"]').waitFor();

    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('input[name="token"]').fill(TOKEN);
    await page.locator('form.login').getByRole('button', { name: 'Log in' }).click();
    await page.getByText('logged in').waitFor();

    // A number decoder needs a unit: the collector's reasons are shown, nothing is stored.
    const form = page.locator('form.sensor-form');
    await form.locator('input[name="topic"]').fill('greenhouse/+station/co2');
    await form.locator('select[name="decoder"]').selectOption('number');
    await form.locator('input[name="options"]').fill('{"variable":"co2"}');
    await form.getByRole('button', { name: 'Add sensor' }).click();
    await form.locator('[role="alert"]').getByText('decoder.unit', { exact: false }).first().waitFor();
    expect((await api<EdgeAnswer>('edges/gw-a')).central.sensors).toEqual([]);

    await form.locator('input[name="options"]').fill('{"variable":"co2","unit":"ppm"}');
    await form.locator('input[name="lat"]').fill('52.52');
    await form.locator('input[name="lon"]').fill('13.4');
    await form.getByRole('button', { name: 'Add sensor' }).click();
    await form.getByText('added greenhouse/+station/co2', { exact: false }).waitFor();
    await page.locator('tr[data-central-topic="greenhouse/+station/co2"]').waitFor();
    await page
      .locator('tr[data-origin="central"][data-topic="greenhouse/+station/co2"]')
      .waitFor({ timeout: 60_000 });

    // Readings on the new topic reach Postgres, then the page's plot, which keeps growing live.
    const sensor = await sensorClient('gw-a');
    let value = 400;
    const plot = page.locator('figure[data-plot="gh1 co2"]');
    const pointsShown = async () => Number((await plot.getAttribute('data-points', { timeout: 1000 })) ?? 0);
    const first = await waitFor(
      'gh1 co2 readings in the edge page plot',
      async () => {
        await sensor.publishAsync('greenhouse/gh1/co2', String(value++), { qos: 1 });
        const n = (await plot.count()) > 0 ? await pointsShown() : 0;
        return n > 0 ? n : undefined;
      },
      90_000,
    );
    await waitFor(
      'more gh1 co2 readings arriving live',
      async () => {
        await sensor.publishAsync('greenhouse/gh1/co2', String(value++), { qos: 1 });
        const n = await pointsShown();
        return n > first ? n : undefined;
      },
      60_000,
    );
    // A reading its decoder refuses is kept by the edge; the page asks the edge for its rejects.
    await sensor.publishAsync('s/yard/t', 'not-a-number', { qos: 1 });
    await waitFor("the refused reading among the page's rejects", async () => {
      await page.getByRole('button', { name: 'Ask the edge again' }).click();
      const n = await page.locator('table.rejects tr', { hasText: 's/yard/t' }).count();
      return n > 0 ? n : undefined;
    });
    expect(await page.locator('table.rejects').textContent()).toContain('not-a-number');
    await screenshot(page, 'edge');
    // The refused sensor's answer is logged by the browser as a failed load, and so is a rejects
    // answer of 409 while the registry counts the edge offline (a heartbeat late by three intervals
    // on a busy machine); the page shows both as messages. Nothing else may appear.
    expect(problems.filter((p) => !/status of (422|409)/.test(p))).toEqual([]);
  });

  it('refuses a write without login and changes nothing', async () => {
    const { page, problems } = await openPage('/console/edge?id=gw-b');
    await page.getByRole('button', { name: 'Log in' }).waitFor();
    const form = page.locator('form.sensor-form');
    await form.locator('input[name="topic"]').fill('tele/+station/SENSOR');
    await form.locator('select[name="decoder"]').selectOption('tasmota');
    await form.getByRole('button', { name: 'Add sensor' }).click();
    const alert = form.locator('[role="alert"]');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/log ?in|admin token|session/i);
    // Straight from the page's script too: the collector refuses it, not only the form.
    const status = await page.evaluate(async () => {
      const res = await fetch('/console/api/edges/gw-b/sensors', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ sensor: { topic: 'x/+station', decoder: { type: 'tasmota' } } }),
      });
      return res.status;
    });
    expect([401, 403]).toContain(status);
    expect((await api<EdgeAnswer>('edges/gw-b')).central.sensors).toEqual([]);
    // The browser logs the refused requests themselves as console errors; nothing else may appear.
    expect(problems.filter((p) => !/status of 40[13]/.test(p))).toEqual([]);
  });

  it('shows a dataset window going from waiting to built, and downloads its GeoParquet', async () => {
    const { page, problems } = await openPage('/console/datasets');
    await page.locator('section[data-dataset="co2"]').waitFor();
    const client = await sensorClient('gw-b');
    // gw-b decodes CO2 once its central config has the sensor: added with a logged-in session's cookie
    // (the form's path is the test above), its readings carry no position.
    const res = await fetch(`${base()}/console/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: TOKEN }),
    });
    expect(res.status).toBe(200);
    const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const add = await fetch(`${base()}/console/api/edges/gw-b/sensors`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Cookie: cookie },
      body: JSON.stringify({
        sensor: {
          topic: 'greenhouse/+station/co2',
          decoder: { type: 'number', variable: 'co2', unit: 'ppm' },
        },
      }),
    });
    expect(add.status, await add.clone().text()).toBe(200);
    await waitFor('gw-b running the central CO2 sensor', async () => {
      const s = await agent('gw-b').status();
      return s?.sensors?.some((x) => x.origin === 'central' && x.topic === 'greenhouse/+station/co2')
        ? s
        : undefined;
    });

    // Readings into the current window until the page shows it waiting (open, with data).
    let value = 600;
    const waitingRow = await waitFor(
      'a co2 window shown waiting',
      async () => {
        await client.publishAsync('greenhouse/gh2/co2', String(value++), { qos: 1 });
        const start = await page
          .locator('section[data-dataset="co2"] tr[data-state="waiting"]')
          .first()
          .getAttribute('data-window', { timeout: 500 })
          .catch(() => null);
        return start ?? undefined;
      },
      60_000,
    );
    const row = page.locator(`section[data-dataset="co2"] tr[data-window="${waitingRow}"]`);
    await page
      .locator(`section[data-dataset="co2"] tr[data-window="${waitingRow}"][data-state="built"]`)
      .waitFor({
        timeout: 90_000,
      });
    const answer = await api<DatasetsAnswer>('datasets');
    const window = answer.datasets.find((d) => d.name === 'co2')?.windows.find((w) => w.start === waitingRow);
    expect(window?.state).toBe('built');
    expect(Number(await row.locator('td').nth(4).textContent())).toBe(window?.rows);

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      row.getByRole('link', { name: 'GeoParquet' }).click(),
    ]);
    const file = join(dir.path, 'window.parquet');
    await download.saveAs(file);
    const bytes = readFileSync(file);
    expect(bytes.subarray(0, 4).toString()).toBe('PAR1');
    expect(bytes.subarray(-4).toString()).toBe('PAR1');
    await screenshot(page, 'datasets');
    expect(problems).toEqual([]);
  });

  it('shows ingest health with a dead letter and its reason', async () => {
    const { page, problems } = await openPage('/console/ingest');
    await page.getByTestId('rate-1m').waitFor();
    // A batch that is not JSON, sent with gw-a's own key as a broken agent would: dead-lettered.
    const nc = await connect({
      servers: nats.url,
      authenticator: nkeyAuthenticator(new TextEncoder().encode(seeds.get('gw-a'))),
    });
    try {
      nc.publish('fb.obs.gw-a', '{"v":1,"edge":"gw-a", <broken');
      await nc.flush();
    } finally {
      await nc.close();
    }
    await page.locator('table.dead tr', { hasText: 'fb.obs.gw-a' }).waitFor({ timeout: 60_000 });
    await page.getByTestId('dead-total').getByText('1', { exact: true }).waitFor();
    const reason = await page.locator('table.reasons tbody tr td').first().textContent();
    expect(reason?.length).toBeGreaterThan(0);
    await screenshot(page, 'ingest');
    expect(problems).toEqual([]);
  });

  it("shows an edge's ISS connection state and its items' values in live plots", async () => {
    const { page, problems } = await openPage('/console/iss');
    await page.locator('section.iss[data-edge="gw-a"]').waitFor({ timeout: 60_000 });
    expect(await page.locator('section.iss').count()).toBe(1);
    let n = 0;
    const update = () => {
      const at = Date.now();
      n++;
      iss.publish(
        ISS_ITEMS.map((item, i) => ({
          item,
          TimeStamp: formatIssTimestamp(at),
          Value: String(i === 0 ? 700 + (n % 50) : 20 + (n % 7) / 10),
          'Status.Class': '24',
          'Status.Indicator': '',
          'Status.Color': 'Green',
          CalibratedData: '',
        })),
      );
    };
    const plot = page.locator('section.iss[data-edge="gw-a"] figure.plot').first();
    const points = async () =>
      (await plot.count()) > 0 ? Number((await plot.getAttribute('data-points', { timeout: 1000 })) ?? 0) : 0;
    const first = await waitFor(
      'ISS values in the ISS page plot',
      async () => {
        update();
        await page.waitForTimeout(200);
        const p = await points();
        return p > 0 ? p : undefined;
      },
      90_000,
    );
    await waitFor(
      'more ISS values arriving live',
      async () => {
        update();
        await page.waitForTimeout(200);
        const p = await points();
        return p > first ? p : undefined;
      },
      60_000,
    );
    const state = await page.locator('section.iss[data-edge="gw-a"]').getByTestId('iss-state').textContent();
    expect(state?.length).toBeGreaterThan(0);
    expect(state).toBe((await api<EdgeAnswer>('edges/gw-a')).iss?.state);
    await screenshot(page, 'iss');
    expect(problems).toEqual([]);
  });

  it('turns a killed edge offline on the fleet page', async () => {
    const { page, problems } = await openPage('/console/fleet');
    await page.locator('tr[data-edge="gw-b"] td[data-col="online"]').getByText('online').waitFor();
    await agent('gw-b').kill();
    await page
      .locator('tr[data-edge="gw-b"] td[data-col="online"]')
      .getByText('offline')
      .waitFor({ timeout: 90_000 });
    await page.getByText('2 edges, 1 online, 1 offline').waitFor();
    expect((await fleetRow(page, 'gw-a')).online).toBe('online');
    expect((await api<FleetAnswer>('fleet')).edges.find((e) => e.id === 'gw-b')?.online).toBe(false);
    // gw-a's CO2 sensor has a position: the map shows it.
    await page.locator('section.map canvas').first().waitFor({ timeout: 90_000 });
    await screenshot(page, 'fleet');
    expect(problems).toEqual([]);
  });
});
