import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type EdgeRelease, renderUserData } from '../provision/index.js';
import { addEdge, listEdges } from './edge-identity.js';

export const EDGE_HELP = `fieldbeam-cloud edge: identities of edge agents

Usage:
  fieldbeam-cloud edge add ID [--rotate] [--url COLLECTOR_URL --nats URL [--nats URL ...]
                              [--releases DIR] [--out FILE]]
      Registers edge ID with a new NATS key, rewrites nats-authorization.conf in the identity
      folder (then reload nats-server: nats-server --signal reload=PIDFILE, or systemctl reload)
      and prints the edge's seed once. The collector's own key, collector.nk, is created there
      on first use.
      With --url: writes a cloud-init user-data file (default ID.user-data) for Raspberry Pi OS
      that downloads the agent from the collector, installs it and starts it with this identity.
  fieldbeam-cloud edge list
      The registered edges.

The identity folder is FB_IDENTITY_DIR (default $FB_DATA_DIR/identity). --releases defaults to
FB_RELEASES_DIR (the folder the collector serves at /edge/releases/), else edge-releases/ beside the
identity folder.
`;

/**
 * `fieldbeam-cloud edge ...`. `releasesDir` is where `--url` finds the release the user-data points
 * at when `--releases` is not given: the collector's FB_RELEASES_DIR, which it serves.
 */
export function runEdgeCommand(
  args: string[],
  identityDir: string,
  out: NodeJS.WritableStream,
  releasesDir?: string,
): number {
  const [sub, ...rest] = args;
  if (sub === 'list') {
    for (const e of listEdges(identityDir)) out.write(`${e.id}\t${e.publicKey}\t${e.created}\n`);
    return 0;
  }
  if (sub !== 'add') {
    out.write(EDGE_HELP);
    return sub === undefined || sub === 'help' || sub === '--help' ? 0 : 2;
  }
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      rotate: { type: 'boolean' },
      url: { type: 'string' },
      nats: { type: 'string', multiple: true },
      releases: { type: 'string' },
      out: { type: 'string' },
    },
    allowPositionals: true,
  });
  const id = positionals[0];
  if (!id) throw new Error('edge add needs an ID');
  const added = addEdge(identityDir, id, values.rotate ? { rotate: true } : {});
  out.write(`edge ${id} registered; key ${added.publicKey}\n`);
  out.write(`seed (shown once; put it in the edge config as nats.nkey_seed): ${added.seed}\n`);
  out.write(
    `authorization written to ${added.files.authorization}: reload nats-server (nats-server --signal reload=<its pid file>)\n`,
  );
  if (values.url) {
    if (!values.nats?.length) throw new Error('--url needs --nats URL (where the edge reaches NATS)');
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
      nats: { servers: values.nats, nkeySeed: added.seed },
    });
    const file = values.out ?? `${id}.user-data`;
    writeFileSync(file, userData, { mode: 0o600 });
    out.write(`cloud-init user-data written to ${file}: add it to the SD card's boot partition\n`);
  }
  return 0;
}
