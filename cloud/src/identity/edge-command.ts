import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { integerIn } from '../cli/command-line.js';
import { CloudError, CloudErrorCode } from '../errors.js';
import { sensorSetup } from '../provision/edge-sensors.js';
import { renderProvisioning } from '../provision/index.js';
import { COLLECTOR_LISTEN_HINT, reachabilityWarnings } from '../provision/reachability.js';
import { readRelease } from '../provision/release.js';
import { listEdges, prepareEdge } from './edge-identity.js';

const ADD_DETAILS = `
Registers edge ID with a new NATS key, rewrites nats-authorization.conf in the identity folder (then
reload nats-server: nats-server --signal reload=PIDFILE, or systemctl reload) and prints the edge's
seed once. The collector's own key, collector.nk, is created there on first use.
With --url: also writes a cloud-init user-data file for Raspberry Pi OS that downloads the agent
from the collector, installs it and starts it with this identity. Its embedded MQTT broker listens
on the network (port 1883) for one user whose password is generated and printed once; without
--sensor it turns the readings of Zigbee2MQTT, Tasmota, Shelly and ESPHome topics into sensors.
The collector must listen where Pis reach it (FB_HTTP_HOST=0.0.0.0 or its LAN address; the default
127.0.0.1 is this machine only): --url warns when it or the URL is loopback.
Every argument and input is checked first: when the command fails, nothing is registered or written.
The collector and every edge command need the same identity folder (FB_IDENTITY_DIR).`;

/** Where `edge` commands read and write, resolved from the settings when a command runs. */
export interface EdgeCommandContext {
  identityDir: string;
  /** The collector's FB_RELEASES_DIR: where `--url` finds the release unless `--releases` names one. */
  releasesDir?: string | undefined;
  /** The collector's FB_HTTP_HOST: `--url` warns when it is loopback (a Pi cannot download). */
  httpHost?: string | undefined;
}

interface AddOptions {
  rotate?: boolean;
  url?: string;
  nats?: string[];
  releases?: string;
  out?: string;
  sensor?: string[];
  mqttUser: string;
  mqttPort: number;
}

const repeatable = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** `fieldbeam-cloud edge add|list`: commands, options and help; `context` is read only by an action. */
export function createEdgeCommand(
  context: () => EdgeCommandContext,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream = process.stderr,
): Command {
  const edge = new Command('edge')
    .summary('identities of edge agents: issue keys (edge add), list them (edge list)')
    .description('Identities of edge agents: their NATS keys and the server authorization.');
  const add = edge
    .command('add')
    .summary("register an edge: issue its NATS key, update the server's authorization")
    .description("Registers an edge: issues its NATS key and updates the server's authorization.")
    .argument('<id>', 'the edge id (as in its config: edge)')
    .option('--rotate', 'issue a new key for an edge already registered (the old key stops working)')
    .option(
      '--url <collector-url>',
      'also write a first-boot user-data file; the collector as the Pi reaches it (not localhost)',
    )
    .addOption(
      new Option(
        '--nats <url>',
        'with --url: a NATS server as the edge reaches it; repeat for several',
      ).argParser(repeatable),
    )
    .option(
      '--releases <dir>',
      'with --url: folder of release.json and the packages (default: FB_RELEASES_DIR, else edge-releases/ beside the identity folder)',
    )
    .option('--out <file>', 'with --url: the user-data file (default: ID.user-data)')
    .addOption(
      new Option(
        '--sensor <topic[=decoder]>',
        'with --url: TOPIC=DECODER a sensor (zigbee2mqtt, tasmota, shelly, esphome, senml, json, number:VARIABLE:UNIT; ' +
          'number and json need +station in TOPIC), a bare TOPIC an MQTT filter whose topics are auto-registered; ' +
          'repeat for several (default: auto-register the Zigbee2MQTT, Tasmota, Shelly and ESPHome topics)',
      ).argParser(repeatable),
    )
    .addOption(new Option('--mqtt-user <name>', "with --url: the sensors' MQTT user").default('sensors'))
    .addOption(
      new Option('--mqtt-port <port>', "with --url: the Pi's MQTT port")
        .default(1883)
        .argParser(integerIn(1, 65535)),
    )
    .addHelpText('after', ADD_DETAILS)
    .action((id: string, options: AddOptions) => {
      // Usage problems first: they are reported with the usage and change nothing.
      if (options.url) {
        if (!options.nats?.length) add.error('error: --url needs --nats URL (where the edge reaches NATS)');
        if (/^\s*$/.test(options.mqttUser) || /[\s:]/.test(options.mqttUser))
          add.error('error: --mqtt-user must be one word without ":"');
      } else {
        const needUrl = ['nats', 'releases', 'out', 'sensor'].filter(
          (k) => options[k as keyof AddOptions] !== undefined,
        );
        for (const k of ['mqttUser', 'mqttPort'] as const)
          if (add.getOptionValueSource(k) === 'cli')
            needUrl.push(k === 'mqttUser' ? 'mqtt-user' : 'mqtt-port');
        if (needUrl.length > 0)
          add.error(
            `error: ${needUrl.map((k) => `--${k}`).join(', ')} only apply with --url (the user-data file)`,
          );
      }
      try {
        addEdgeCommand(id, options, context(), out, err);
      } catch (e) {
        if (e instanceof CloudError) throw e;
        throw new CloudError(
          CloudErrorCode.EDGE_ADD_INVALID,
          `edge add ${id}: ${(e as Error).message} (nothing was registered or written)`,
          false,
          { cause: e },
        );
      }
    });
  edge
    .command('list')
    .description('the registered edges: id, public key, when registered')
    .action(() => {
      for (const e of listEdges(context().identityDir)) out.write(`${e.id}\t${e.publicKey}\t${e.created}\n`);
    });
  return edge;
}

/**
 * `fieldbeam-cloud edge ARGS` without the rest of the CLI (tests, embedding): errors thrown by the
 * command propagate; returns 0, or 2 for a usage error (printed to `err` with the usage).
 */
export function runEdgeCommand(
  args: string[],
  context: EdgeCommandContext,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream = out,
): number {
  const edge = createEdgeCommand(() => context, out, err);
  for (const cmd of [edge, ...edge.commands]) {
    cmd.exitOverride().configureOutput({ writeOut: (s) => out.write(s), writeErr: (s) => err.write(s) });
  }
  try {
    edge.parse(args, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
}

/** The user-data file, written under a temporary name beside it until everything else is ready. */
function stageUserData(file: string, text: string): { rename(): void; discard(): void } {
  const target = resolve(file);
  const dir = dirname(target);
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a folder');
    accessSync(dir, constants.W_OK);
    if (existsSync(target) && statSync(target).isDirectory()) throw new Error(`${file} is a folder`);
  } catch (e) {
    throw new Error(`--out ${file}: cannot write there (${(e as Error).message})`);
  }
  const tmp = join(dir, `.${basename(target)}.${process.pid}.tmp`);
  writeFileSync(tmp, text, { mode: 0o600 });
  return { rename: () => renameSync(tmp, target), discard: () => rmSync(tmp, { force: true }) };
}

function addEdgeCommand(
  id: string,
  values: AddOptions,
  context: EdgeCommandContext,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): void {
  const { identityDir, releasesDir } = context;
  // Checked and computed in memory: the key, the registry and the authorization.
  const prepared = prepareEdge(identityDir, id, values.rotate ? { rotate: true } : {});
  const lines = [
    `edge ${id} registered; key ${prepared.publicKey}`,
    `seed (shown once; put it in the edge config as nats.nkey_seed): ${prepared.seed}`,
    `authorization written to ${prepared.files.authorization}: reload nats-server (nats-server --signal reload=<its pid file>)`,
  ];
  let userData: { rename(): void; discard(): void } | undefined;
  let outFile: string | undefined;
  if (values.url) {
    const nats = values.nats ?? [];
    const release = readRelease(values.releases ?? releasesDir ?? join(identityDir, '..', 'edge-releases'));
    const setup = sensorSetup(values.sensor ?? []);
    // 18 random bytes: 24 URL-safe characters, nothing a shell or YAML quotes differently.
    const password = randomBytes(18).toString('base64url');
    const provisioning = renderProvisioning({
      edgeId: id,
      collectorUrl: values.url,
      release,
      nats: { servers: nats, nkeySeed: prepared.seed },
      mqtt: { host: '0.0.0.0', port: values.mqttPort, users: [{ username: values.mqttUser, password }] },
      sensors: setup.sensors,
      autoRegisterTopics: setup.autoRegisterTopics,
    });
    for (const w of reachabilityWarnings({ url: values.url, nats, httpHost: context.httpHost }))
      err.write(`warning: ${w}\n`);
    outFile = values.out ?? `${id}.user-data`;
    userData = stageUserData(outFile, provisioning.userData);
    lines.push(
      `cloud-init user-data written to ${outFile}: add it to the SD card's boot partition`,
      `MQTT for sensors (shown once; also in ${outFile}): mqtt://<the Pi>:${values.mqttPort} user ${values.mqttUser} password ${password}`,
      setup.autoRegisterTopics.length > 0
        ? `sensors auto-registered from ${setup.autoRegisterTopics.join(' ')}${setup.sensors.length ? ` and ${setup.sensors.length} configured` : ''}`
        : `sensors: ${setup.sensors.length} configured, no auto-registration`,
      `the Pi downloads the agent from ${provisioning.downloadUrl}: ${COLLECTOR_LISTEN_HINT}`,
    );
  }
  try {
    userData?.rename();
    try {
      // Last: once the registry names the edge, only --rotate registers it again.
      prepared.commit();
    } catch (e) {
      if (outFile) rmSync(outFile, { force: true });
      throw e;
    }
  } finally {
    userData?.discard();
  }
  out.write(`${lines.join('\n')}\n`);
}
