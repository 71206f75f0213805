import {
  accessSync,
  chmodSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { centralSensors, controlServiceName, isSubjectToken, subjects } from '@fieldbeam/protocol';
import { createUser, fromSeed } from '@nats-io/nkeys';

/** One registered edge: its id and the public half of its NATS nkey. The seed never stays here. */
export interface EdgeRecord {
  id: string;
  publicKey: string;
  created: string;
}

export interface IdentityFiles {
  /** `edges.json`: the registry of edges. */
  registry: string;
  /** `nats-authorization.conf`: include it in nats-server's config (then `nats-server --signal reload`). */
  authorization: string;
  /** The collector's own nkey seed (created on first use). */
  collectorSeed: string;
}

export function identityFiles(dir: string): IdentityFiles {
  return {
    registry: join(dir, 'edges.json'),
    authorization: join(dir, 'nats-authorization.conf'),
    collectorSeed: join(dir, 'collector.nk'),
  };
}

/**
 * The collector's NATS identity: its inbox is `_INBOX.collector`, where its JetStream pull deliveries
 * (every edge's data) arrive. No edge may be registered under this name, or its inbox permission
 * would cover the collector's.
 */
export const COLLECTOR_IDENTITY = 'collector';

/**
 * What an edge may do on NATS: publish its own observation batches and status, and receive the
 * replies (JetStream acks) on its own inbox, `_INBOX.<id>.>` (the agent connects with that
 * `inboxPrefix`). A JetStream publish is a request to the stream subject with a reply inbox, so it
 * needs nothing on `$JS.API`. Nothing else: no stream or consumer API (reading streams), no other
 * edge's subjects, no other identity's inbox (the collector's pull deliveries carry every edge's data).
 */
export function edgePermissions(id: string) {
  return {
    publish: { allow: [subjects.obs(id), subjects.edgeStatus(id), ...centralSensorReads(id)] },
    subscribe: { allow: [`${subjects.inbox(id)}.>`, ...controlSubscriptions(id)] },
    // The control service answers on the reply subject of a request it received, once, within a
    // minute; no other publish. It receives only its own requests (below), so it answers no one else's.
    allow_responses: { max: 1, expires: '1m' },
  };
}

/**
 * The edge's control service (a NATS service named after the edge): its endpoints `fb.ctl.<id>.>`,
 * and the `$SRV` discovery subjects of its own name. The services API also subscribes to the
 * name-less `$SRV.PING|INFO|STATS` (discovery of every service, as `nats micro ls` asks); refused,
 * they are a permission violation at every start, and the service stops if the client closes a
 * refused subscription. They carry only a discovery request (no edge may publish there) and the
 * asker's reply subject, so they are allowed. Nothing of another edge: its requests and its replies
 * stay out of reach.
 */
function controlSubscriptions(id: string): string[] {
  const name = controlServiceName(id);
  return [
    subjects.controlAll(id),
    ...['PING', 'INFO', 'STATS'].map((verb) => `$SRV.${verb}`),
    `$SRV.*.${name}`,
    `$SRV.*.${name}.*`,
  ];
}

/**
 * Reading the edge's two keys of the central sensor bucket (its own, `edge.<id>`, and `all`), and
 * nothing else of it: a direct get with the key's subject in the request subject (the server answers
 * a last-by-subject get only with an empty body, so a body cannot name another key). No consumer
 * create: a consumer's deliver subject is in the request body, which permissions do not check, so an
 * edge allowed one could have the server publish into any subject (another edge's status, the
 * JetStream API) and leave durable consumers behind; the edge polls instead. No stream info, message
 * get by sequence or write: another edge's key stays unreadable and the bucket is the collector's.
 */
function centralSensorReads(id: string): string[] {
  const stream = centralSensors.stream;
  const keys = [centralSensors.edgeKey(id), centralSensors.allKey].map(centralSensors.subject);
  return keys.map((k) => `$JS.API.DIRECT.GET.${stream}.${k}`);
}

function checkEdgeId(id: string): void {
  if (!isSubjectToken(id)) throw new Error(`edge id "${id}" must be 1-64 of A-Z a-z 0-9 _ -`);
  if (id === COLLECTOR_IDENTITY) {
    throw new Error(`edge id "${id}" is reserved: it names the collector's own NATS identity and inbox`);
  }
}

const q = (s: string) => JSON.stringify(s);

/** The nats-server `authorization` block for the collector and every edge (nkey users). */
export function renderAuthorization(edges: readonly EdgeRecord[], collectorPublicKey: string): string {
  const users = [
    `    # fieldbeam collector: full access (streams, consumers, events); inbox ${subjects.inbox(COLLECTOR_IDENTITY)}\n    { nkey: ${q(collectorPublicKey)} }`,
    ...edges.map((e) => {
      checkEdgeId(e.id);
      const p = edgePermissions(e.id);
      return `    # edge ${e.id} (added ${e.created})
    { nkey: ${q(e.publicKey)}, permissions: {
        publish: { allow: [${p.publish.allow.map(q).join(', ')}] },
        subscribe: { allow: [${p.subscribe.allow.map(q).join(', ')}] },
        allow_responses: { max: ${p.allow_responses.max}, expires: ${q(p.allow_responses.expires)} } } }`;
    }),
  ];
  return `# Generated by fieldbeam-cloud edge add|remove|authorize: do not edit, run one of them instead.
authorization {
  users = [
${users.join('\n')}
  ]
}
`;
}

function readRegistry(file: string): EdgeRecord[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  try {
    const edges = JSON.parse(text) as unknown;
    if (!Array.isArray(edges)) throw new Error('not a JSON array');
    return edges as EdgeRecord[];
  } catch (err) {
    throw new Error(
      `${file} is not a registry of edges (${(err as Error).message}); restore it from a backup`,
    );
  }
}

function readIfExists(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

function writeSecret(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/**
 * Writes `text` beside `file` under a temporary name; `rename` then puts it in place in one step, so
 * a reader (nats-server reloading, another command) sees the old file or the new one, never half.
 */
function stage(file: string, text: string, mode: number): { rename(): void; discard(): void } {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  return { rename: () => renameSync(tmp, file), discard: () => rmSync(tmp, { force: true }) };
}

const newSeed = () => new TextDecoder().decode(createUser().getSeed());

/** The collector's nkey seed, created on first use. */
export function collectorSeed(dir: string): string {
  const files = identityFiles(dir);
  mkdirSync(dir, { recursive: true });
  if (!existsSync(files.collectorSeed)) writeSecret(files.collectorSeed, `${newSeed()}\n`);
  return readFileSync(files.collectorSeed, 'utf8').trim();
}

export interface AddedEdge {
  id: string;
  publicKey: string;
  /** The edge's secret: goes into its config (`nats.nkey_seed`) and nowhere else. */
  seed: string;
  files: IdentityFiles;
}

/** A registration checked and computed in memory; nothing is on disk until `commit`. */
export interface PreparedEdge extends AddedEdge {
  /** Writes the registration (collector key if new, authorization, then the registry) or nothing. */
  commit(): void;
}

/**
 * Checks that `id` can be registered in `dir` (a valid, unreserved id; free unless `rotate`; the
 * registry and the collector's key readable; the folder writable) and computes the new key, registry
 * and authorization, without touching the disk. `commit` then writes them.
 */
export function prepareEdge(
  dir: string,
  id: string,
  opts: { rotate?: boolean; now?: Date } = {},
): PreparedEdge {
  checkEdgeId(id);
  const files = identityFiles(dir);
  const registryText = readIfExists(files.registry);
  const edges = readRegistry(files.registry);
  const existing = edges.findIndex((e) => e.id === id);
  if (existing >= 0 && !opts.rotate) {
    throw new Error(
      `edge "${id}" is already registered; use --rotate to issue a new key (the old one stops working)`,
    );
  }
  checkWritable(dir);
  const storedCollectorSeed = existsSync(files.collectorSeed)
    ? readFileSync(files.collectorSeed, 'utf8').trim()
    : undefined;
  const collector = storedCollectorSeed ?? newSeed();
  let collectorKey: string;
  try {
    collectorKey = fromSeed(new TextEncoder().encode(collector)).getPublicKey();
  } catch (err) {
    throw new Error(`${files.collectorSeed} does not hold an nkey seed: ${(err as Error).message}`);
  }
  const kp = createUser();
  const record: EdgeRecord = {
    id,
    publicKey: kp.getPublicKey(),
    created: (opts.now ?? new Date()).toISOString(),
  };
  const next = existing >= 0 ? edges.map((e, i) => (i === existing ? record : e)) : [...edges, record];
  next.sort((a, b) => a.id.localeCompare(b.id));
  const authorization = renderAuthorization(next, collectorKey);
  return {
    id,
    publicKey: record.publicKey,
    seed: new TextDecoder().decode(kp.getSeed()),
    files,
    commit() {
      // Another edge add that committed meanwhile would otherwise be overwritten and its edge lost.
      if (readIfExists(files.registry) !== registryText)
        throw new Error(`${files.registry} changed while this command ran (another edge add?); run it again`);
      mkdirSync(dir, { recursive: true });
      const staged = [
        ...(storedCollectorSeed === undefined ? [stage(files.collectorSeed, `${collector}\n`, 0o600)] : []),
        stage(files.authorization, authorization, 0o644),
        stage(files.registry, `${JSON.stringify(next, null, 2)}\n`, 0o644),
      ];
      try {
        // The registry last: until it names the edge, running the command again starts afresh.
        for (const s of staged) s.rename();
      } finally {
        for (const s of staged) s.discard();
      }
    },
  };
}

/** The identity folder (or, before it exists, the nearest existing parent) must be writable. */
function checkWritable(dir: string): void {
  let at = resolve(dir);
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  try {
    if (!statSync(at).isDirectory()) throw new Error('not a folder');
    accessSync(at, constants.W_OK);
  } catch (err) {
    throw new Error(`identity folder ${dir}: cannot write to ${at} (${(err as Error).message})`);
  }
}

/**
 * Registers an edge (or rotates its key with `rotate`) and rewrites the server authorization.
 * Returns the new seed: it is shown once and not stored on the collector.
 */
export function addEdge(dir: string, id: string, opts: { rotate?: boolean; now?: Date } = {}): AddedEdge {
  const { commit, ...added } = prepareEdge(dir, id, opts);
  commit();
  return added;
}

export function listEdges(dir: string): EdgeRecord[] {
  return readRegistry(identityFiles(dir).registry);
}

/** The authorization this version renders from the registry and the collector's key, beside the file's. */
function authorizationState(dir: string): { file: string; wanted?: string; current?: string } {
  const files = identityFiles(dir);
  const current = readIfExists(files.authorization);
  const seed = readIfExists(files.collectorSeed)?.trim();
  if (seed === undefined) return { file: files.authorization, ...(current === undefined ? {} : { current }) };
  const collectorKey = fromSeed(new TextEncoder().encode(seed)).getPublicKey();
  return {
    file: files.authorization,
    wanted: renderAuthorization(readRegistry(files.registry), collectorKey),
    ...(current === undefined ? {} : { current }),
  };
}

/**
 * Whether nats-authorization.conf grants what this version's edges and collector need. A file written
 * by an older version lacks newer permissions (an edge's control service, its central sensor keys),
 * which nats-server then refuses: `edge authorize` rewrites it.
 */
export function authorizationIsCurrent(dir: string): boolean {
  const { wanted, current } = authorizationState(dir);
  return wanted === undefined || wanted === current;
}

/**
 * Rewrites nats-authorization.conf from the registry with this version's permissions (after an
 * upgrade); `changed` says whether the file differed, i.e. whether nats-server needs a reload.
 */
export function rewriteAuthorization(dir: string): { file: string; changed: boolean } {
  const { file, wanted, current } = authorizationState(dir);
  if (wanted === undefined) {
    throw new Error(
      `${identityFiles(dir).collectorSeed} does not exist: no edge was added with this identity folder (FB_IDENTITY_DIR)`,
    );
  }
  if (wanted === current) return { file, changed: false };
  const staged = stage(file, wanted, 0o644);
  try {
    staged.rename();
  } finally {
    staged.discard();
  }
  return { file, changed: true };
}

/**
 * Takes edge `id` out of the registry and the authorization: its key stops working at nats-server's
 * next reload. Returns false when it was not registered (nothing changed).
 */
export function removeEdge(dir: string, id: string): boolean {
  checkEdgeId(id);
  const files = identityFiles(dir);
  const edges = readRegistry(files.registry);
  if (!edges.some((e) => e.id === id)) return false;
  const seed = readIfExists(files.collectorSeed)?.trim();
  if (seed === undefined) throw new Error(`${files.collectorSeed} is missing; restore it from a backup`);
  const next = edges.filter((e) => e.id !== id);
  const collectorKey = fromSeed(new TextEncoder().encode(seed)).getPublicKey();
  const staged = [
    stage(files.authorization, renderAuthorization(next, collectorKey), 0o644),
    stage(files.registry, `${JSON.stringify(next, null, 2)}\n`, 0o644),
  ];
  try {
    for (const s of staged) s.rename();
  } finally {
    for (const s of staged) s.discard();
  }
  return true;
}
