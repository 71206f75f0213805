import { randomBytes } from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseDuration } from '@fieldbeam/protocol';
import { Command, CommanderError, Option } from 'commander';
import { type ExitStatus, integerIn } from '../cli/command-line.js';
import type { CloudConfig } from '../config.js';
import { CloudError, CloudErrorCode } from '../errors.js';
import { sensorSetup } from '../provision/edge-sensors.js';
import { mergeImagerUserData, renderEnrollUserData } from '../provision/enroll-user-data.js';
import {
  DEFAULT_TOKEN_TTL,
  isoSeconds,
  prepareEnrollment,
  removeEnrollments,
} from '../provision/enrollment.js';
import { releaseFileUrl, renderEdgeConfig, renderFirstBootScript } from '../provision/index.js';
import { COLLECTOR_LISTEN_HINT, reachabilityWarnings } from '../provision/reachability.js';
import { readRelease } from '../provision/release.js';
import { prepareEdge, rewriteAuthorization } from './edge-identity.js';

const ADD_DETAILS = `
Registers edge ID with a new NATS key, rewrites nats-authorization.conf in the identity folder (then
reload nats-server: nats-server --signal reload=PIDFILE, or systemctl reload) and prints the edge's
seed once. The collector's own key, collector.nk, is created there on first use.
With --url: the edge's config and seed are sealed in a one-time enrollment (enrollments/ in the
identity folder) instead of being printed, and the command prints a one-time install link for the Pi:
  curl -fsSL URL/edge/install/TOKEN | sudo sh
It works once, until --token-ttl (default P7D) runs out; --rotate issues a new one. The command also
writes a cloud-init user-data file (ID.user-data, or --out) whose runcmd runs that link at first boot;
--user-data-from FILE appends it to Raspberry Pi Imager's user-data instead, keeping its keys.
The agent's embedded MQTT broker listens on the network (port 1883) for one user whose password is
generated and printed once; without --sensor it turns the readings of Zigbee2MQTT, Tasmota, Shelly
and ESPHome topics into sensors.
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
  /** The collector's settings: the fleet commands (list, status...) find the database and NATS as `run` does. */
  config?: CloudConfig;
}

const FLEET_DETAILS = `
An edge is online while it heartbeats: offline once 3 heartbeats in a row are missing (no heartbeat
for 3 times the interval its last one announced, its status_interval_ms; 10 s for agents that do
not say). For an offline or never seen edge, status, rejects, ping and reload answer at once from
the fleet registry and exit with status 3; an edge that is online is asked over NATS (--timeout).`;

interface AddOptions {
  rotate?: boolean;
  url?: string;
  nats?: string[];
  releases?: string;
  out?: string;
  userDataFrom?: string;
  tokenTtl: string;
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
  status: ExitStatus = { code: 0 },
): Command {
  const edge = new Command('edge')
    .summary('the fleet of edge agents: register (edge add), list, status, rejects, ping, reload')
    .description(
      'The fleet of edge agents: their identities (NATS keys and the server authorization), which are ' +
        'online and what they buffer (fleet registry), and requests to one edge over NATS.',
    );
  const add = edge
    .command('add')
    .summary("register an edge: issue its NATS key, update the server's authorization")
    .description("Registers an edge: issues its NATS key and updates the server's authorization.")
    .argument('<id>', 'the edge id (as in its config: edge)')
    .option(
      '--rotate',
      'issue a new key for an edge already registered (the old key and its install links stop working)',
    )
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
    .option(
      '--user-data-from <file>',
      "with --url: Raspberry Pi Imager's user-data; the install runcmd is appended to it, its keys kept",
    )
    .addOption(
      new Option(
        '--token-ttl <duration>',
        'with --url: how long the install link works, ISO-8601 (PT12H, P7D)',
      ).default(DEFAULT_TOKEN_TTL),
    )
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
        const ttl = tokenTtlProblem(options.tokenTtl);
        if (ttl) add.error(`error: --token-ttl ${options.tokenTtl}: ${ttl}`);
      } else {
        const needUrl = ['nats', 'releases', 'out', 'sensor'].filter(
          (k) => options[k as keyof AddOptions] !== undefined,
        );
        if (options.userDataFrom !== undefined) needUrl.push('user-data-from');
        for (const [k, flag] of [
          ['mqttUser', 'mqtt-user'],
          ['mqttPort', 'mqtt-port'],
          ['tokenTtl', 'token-ttl'],
        ] as const)
          if (add.getOptionValueSource(k) === 'cli') needUrl.push(flag);
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
  const fleet = async () => {
    const { config } = context();
    if (!config) throw new Error('the fleet commands need the collector settings');
    return { deps: { config, out, err }, commands: await import('../fleet/fleet-commands.js') };
  };
  const timeout = () =>
    new Option('--timeout <ms>', 'how long to wait for the edge to answer')
      .default(5000)
      .argParser(integerIn(100, 600_000));
  edge
    .command('list')
    .summary('the fleet: id, online, last seen, version, buffer, oldest unsent, sensors')
    .description(
      'The fleet: every edge that sent a heartbeat and every registered edge (never seen ones offline): ' +
        'id, online, last seen, version, buffer (readings, bytes, share of its capacity), age of the ' +
        'oldest unsent reading, sensors.',
    )
    .option(
      '--json',
      'print a JSON array (id, online, lastSeen, version, bufferDepth, oldestUnsentAgeS, ...)',
    )
    .addHelpText('after', FLEET_DETAILS)
    .action(async (options: { json?: boolean }) => {
      const { deps, commands } = await fleet();
      status.code = await commands.listFleetCommand(deps, options);
    });
  edge
    .command('status')
    .summary('one edge: its own answer when online, else its last heartbeat (exit 3: offline)')
    .description(
      'One edge: version, uplink, clock, buffer, rates, rejects, sensors with their last reading, central ' +
        'config revision. Online, the edge answers itself; offline, its last heartbeat is shown and the ' +
        'command exits with status 3.',
    )
    .argument('<id>', 'the edge id')
    .option('--json', 'print JSON: the fleet entry, its last heartbeat and the live answer')
    .addOption(timeout())
    .addHelpText('after', FLEET_DETAILS)
    .action(async (id: string, options: { json?: boolean; timeout: number }) => {
      const { deps, commands } = await fleet();
      status.code = await commands.edgeStatusCommand(deps, id, { ...options, timeoutMs: options.timeout });
    });
  edge
    .command('rejects')
    .summary('the inputs an edge could not use, with the reason, newest first')
    .description(
      'The rejects an edge keeps (inputs it could not decode or accept), newest first, asked over NATS.',
    )
    .argument('<id>', 'the edge id')
    .addOption(new Option('--limit <n>', 'how many at most (default: 20)').argParser(integerIn(1, 200)))
    .option('--json', 'print JSON instead of text')
    .addOption(timeout())
    .addHelpText('after', FLEET_DETAILS)
    .action(async (id: string, options: { limit?: number; json?: boolean; timeout: number }) => {
      const { deps, commands } = await fleet();
      status.code = await commands.edgeRejectsCommand(deps, id, { ...options, timeoutMs: options.timeout });
    });
  edge
    .command('ping')
    .summary('whether an edge answers over NATS, and how fast')
    .description('Asks an edge over NATS and prints how long its answer took, its version and uptime.')
    .argument('<id>', 'the edge id')
    .addOption(timeout())
    .addHelpText('after', FLEET_DETAILS)
    .action(async (id: string, options: { timeout: number }) => {
      const { deps, commands } = await fleet();
      status.code = await commands.edgePingCommand(deps, id, { timeoutMs: options.timeout });
    });
  edge
    .command('remove')
    .summary('take an edge out: its key stops working, the fleet registry forgets it')
    .description(
      'Decommissions an edge: removes its key from the registry and nats-authorization.conf (reload ' +
        'nats-server, then the key stops working), deletes its unused install links and removes it from ' +
        'the fleet registry, so it no longer shows or alerts as offline. Its central sensors stay ' +
        '(fieldbeam-cloud sensors clear ID). To replace a lost key instead, use edge add ID --rotate.',
    )
    .argument('<id>', 'the edge id')
    .action(async (id: string) => {
      const { deps, commands } = await fleet();
      status.code = await commands.removeEdgeCommand(deps, id);
    });
  edge
    .command('authorize')
    .summary("rewrite nats-authorization.conf with this version's permissions (after an upgrade)")
    .description(
      "Rewrites nats-authorization.conf from the registry with this version's permissions. A file " +
        "written by an older version lacks newer ones (the edges' control service, their central sensor " +
        'keys), which nats-server then refuses; the collector logs a warning at start when the file is ' +
        'not current. Prints whether the file changed: if it did, reload nats-server.',
    )
    .action(() => {
      const { identityDir } = context();
      const { file, changed } = rewriteAuthorization(identityDir);
      out.write(
        changed
          ? `${file} rewritten: reload nats-server (nats-server --signal reload=<its pid file>, or systemctl reload nats-server)\n`
          : `${file} is current: nothing to do\n`,
      );
    });
  edge
    .command('reload')
    .summary('an edge reads its config file again and applies its sensors (as SIGHUP)')
    .description(
      'Has an edge read its config file again and apply its sensors without a restart; prints what ' +
        'changed. An invalid file is refused and the edge keeps its sensors.',
    )
    .argument('<id>', 'the edge id')
    .addOption(timeout())
    .addHelpText('after', FLEET_DETAILS)
    .action(async (id: string, options: { timeout: number }) => {
      const { deps, commands } = await fleet();
      status.code = await commands.edgeReloadCommand(deps, id, { timeoutMs: options.timeout });
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

/** The longest --token-ttl: a link that outlives a year is a key left lying around. */
const MAX_TOKEN_TTL_MS = 366 * 86_400_000;

function tokenTtlProblem(text: string): string | undefined {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (e) {
    return (e as Error).message;
  }
  if (ms < 60_000) return 'must be at least a minute (PT1M)';
  if (ms > MAX_TOKEN_TTL_MS) return 'must be at most P366D';
  return undefined;
}

/**
 * The user-data file, written under a temporary name beside it until everything else is ready. The
 * file it replaces (Imager's user-data, merged into itself) is kept in memory to be put back when the
 * registration fails after all.
 */
function stageUserData(file: string, text: string): { rename(): void; restore(): void; discard(): void } {
  const target = resolve(file);
  const dir = dirname(target);
  let before: Buffer | undefined;
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a folder');
    accessSync(dir, constants.W_OK);
    if (existsSync(target)) {
      if (statSync(target).isDirectory()) throw new Error(`${file} is a folder`);
      before = readFileSync(target);
    }
  } catch (e) {
    throw new Error(`--out ${file}: cannot write there (${(e as Error).message})`);
  }
  const tmp = join(dir, `.${basename(target)}.${process.pid}.tmp`);
  // A boot partition is FAT: the mode is ignored there, and no chmod follows that would fail.
  writeFileSync(tmp, text, { mode: 0o600 });
  return {
    rename: () => renameSync(tmp, target),
    restore: () => (before === undefined ? rmSync(target, { force: true }) : writeFileSync(target, before)),
    discard: () => rmSync(tmp, { force: true }),
  };
}

function readImagerUserData(file: string): string {
  try {
    if (!statSync(file).isFile()) throw new Error('not a file');
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(
      `--user-data-from ${file}: cannot read it (${(e as Error).message}); give the user-data file on the card's boot partition`,
    );
  }
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
  const lines = [`edge ${id} registered; key ${prepared.publicKey}`];
  if (!values.url)
    lines.push(`seed (shown once; put it in the edge config as nats.nkey_seed): ${prepared.seed}`);
  lines.push(
    `authorization written to ${prepared.files.authorization}: reload nats-server (nats-server --signal reload=<its pid file>)`,
  );
  let userData: ReturnType<typeof stageUserData> | undefined;
  let enrollment: ReturnType<typeof prepareEnrollment> | undefined;
  if (values.url) {
    const nats = values.nats ?? [];
    const release = readRelease(values.releases ?? releasesDir ?? join(identityDir, '..', 'edge-releases'));
    const setup = sensorSetup(values.sensor ?? []);
    // 18 random bytes: 24 URL-safe characters, nothing a shell or YAML quotes differently.
    const password = randomBytes(18).toString('base64url');
    const options = {
      edgeId: id,
      collectorUrl: values.url,
      release,
      nats: { servers: nats, nkeySeed: prepared.seed },
      mqtt: { host: '0.0.0.0', port: values.mqttPort, users: [{ username: values.mqttUser, password }] },
      sensors: setup.sensors,
      autoRegisterTopics: setup.autoRegisterTopics,
    };
    const config = renderEdgeConfig(options);
    // What the install link will run, checked now (the collector renders it again with its release).
    renderFirstBootScript(options);
    enrollment = prepareEnrollment(
      identityDir,
      id,
      { config, seed: prepared.seed, collectorUrl: values.url, natsServers: nats, kind: 'deb' },
      { ttlMs: parseDuration(values.tokenTtl) },
    );
    const expires = isoSeconds(enrollment.expires);
    const about = {
      edgeId: id,
      installUrl: enrollment.installUrl,
      expires,
      mqtt: { user: values.mqttUser, password, port: values.mqttPort },
    };
    const text = values.userDataFrom
      ? mergeImagerUserData(readImagerUserData(values.userDataFrom), values.userDataFrom, about)
      : renderEnrollUserData(about);
    for (const w of reachabilityWarnings({ url: values.url, nats, httpHost: context.httpHost }))
      err.write(`warning: ${w}\n`);
    const outFile = values.out ?? `${id}.user-data`;
    userData = stageUserData(outFile, text);
    lines.push(
      `enrollment ${enrollment.file}: the edge's config and seed, sealed with a one-time token, until ${expires}`,
      `one-line install (on the Pi, once, until ${expires}): curl -fsSL ${enrollment.installUrl} | sudo sh`,
      values.userDataFrom
        ? `cloud-init user-data written to ${outFile}: ${values.userDataFrom} with the install link appended to its runcmd`
        : `cloud-init user-data written to ${outFile}: copy it to the SD card's boot partition as user-data (images with cloud-init)`,
      `MQTT for sensors (shown once; also in ${outFile}): mqtt://<the Pi>:${values.mqttPort} user ${values.mqttUser} password ${password}`,
      setup.autoRegisterTopics.length > 0
        ? `sensors auto-registered from ${setup.autoRegisterTopics.join(' ')}${setup.sensors.length ? ` and ${setup.sensors.length} configured` : ''}`
        : `sensors: ${setup.sensors.length} configured, no auto-registration`,
      `the Pi downloads the agent from ${releaseFileUrl(values.url, release.deb.file)}: ${COLLECTOR_LISTEN_HINT}`,
    );
  }
  try {
    userData?.rename();
    try {
      enrollment?.commit();
      // Last: once the registry names the edge, only --rotate registers it again.
      prepared.commit();
    } catch (e) {
      enrollment?.discard();
      userData?.restore();
      throw e;
    }
  } finally {
    userData?.discard();
  }
  // The earlier key no longer works: neither do links that would install it.
  if (values.rotate) removeEnrollments(identityDir, id, enrollment?.file);
  out.write(`${lines.join('\n')}\n`);
}
