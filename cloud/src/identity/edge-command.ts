import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { type EdgeRelease, renderUserData } from '../provision/index.js';
import { addEdge, listEdges } from './edge-identity.js';

const ADD_DETAILS = `
Registers edge ID with a new NATS key, rewrites nats-authorization.conf in the identity folder (then
reload nats-server: nats-server --signal reload=PIDFILE, or systemctl reload) and prints the edge's
seed once. The collector's own key, collector.nk, is created there on first use.
With --url: also writes a cloud-init user-data file for Raspberry Pi OS that downloads the agent
from the collector, installs it and starts it with this identity. The collector and every edge
command need the same identity folder (FB_IDENTITY_DIR).`;

/** Where `edge` commands read and write, resolved from the settings when a command runs. */
export interface EdgeCommandContext {
  identityDir: string;
  /** The collector's FB_RELEASES_DIR: where `--url` finds the release unless `--releases` names one. */
  releasesDir?: string | undefined;
}

interface AddOptions {
  rotate?: boolean;
  url?: string;
  nats?: string[];
  releases?: string;
  out?: string;
}

/** `fieldbeam-cloud edge add|list`: commands, options and help; `context` is read only by an action. */
export function createEdgeCommand(context: () => EdgeCommandContext, out: NodeJS.WritableStream): Command {
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
      'also write a first-boot user-data file; the collector as the edge reaches it',
    )
    .addOption(
      new Option(
        '--nats <url>',
        'with --url: a NATS server as the edge reaches it; repeat for several',
      ).argParser((url: string, previous: string[] | undefined) => [...(previous ?? []), url]),
    )
    .option(
      '--releases <dir>',
      'with --url: folder of release.json and the packages (default: FB_RELEASES_DIR, else edge-releases/ beside the identity folder)',
    )
    .option('--out <file>', 'with --url: the user-data file (default: ID.user-data)')
    .addHelpText('after', ADD_DETAILS)
    .action((id: string, options: AddOptions) => {
      // Checked before anything is registered: a usage error changes nothing.
      if (options.url && !options.nats?.length)
        add.error('error: --url needs --nats URL (where the edge reaches NATS)');
      addEdgeCommand(id, options, context(), out);
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
 * command propagate; returns 0, or 2 for a usage error (printed to `out` with the usage).
 */
export function runEdgeCommand(
  args: string[],
  identityDir: string,
  out: NodeJS.WritableStream,
  releasesDir?: string,
): number {
  const edge = createEdgeCommand(() => ({ identityDir, releasesDir }), out);
  for (const cmd of [edge, ...edge.commands]) {
    cmd.exitOverride().configureOutput({ writeOut: (s) => out.write(s), writeErr: (s) => out.write(s) });
  }
  try {
    edge.parse(args, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
}

function addEdgeCommand(
  id: string,
  values: AddOptions,
  context: EdgeCommandContext,
  out: NodeJS.WritableStream,
): void {
  const { identityDir, releasesDir } = context;
  const added = addEdge(identityDir, id, values.rotate ? { rotate: true } : {});
  out.write(`edge ${id} registered; key ${added.publicKey}\n`);
  out.write(`seed (shown once; put it in the edge config as nats.nkey_seed): ${added.seed}\n`);
  out.write(
    `authorization written to ${added.files.authorization}: reload nats-server (nats-server --signal reload=<its pid file>)\n`,
  );
  if (values.url) {
    const from = values.releases ?? releasesDir ?? join(identityDir, '..', 'edge-releases');
    let release: EdgeRelease;
    try {
      release = JSON.parse(readFileSync(join(from, 'release.json'), 'utf8')) as EdgeRelease;
    } catch (err) {
      throw new Error(
        `no edge release in ${from} (build one with deploy/pi/build.sh and copy deploy/pi/dist/* there): ${(err as Error).message}`,
      );
    }
    const userData = renderUserData({
      edgeId: id,
      collectorUrl: values.url,
      release,
      nats: { servers: values.nats ?? [], nkeySeed: added.seed },
    });
    const file = values.out ?? `${id}.user-data`;
    writeFileSync(file, userData, { mode: 0o600 });
    out.write(`cloud-init user-data written to ${file}: add it to the SD card's boot partition\n`);
  }
}
