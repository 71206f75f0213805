import { type Document, isMap, isScalar, isSeq, LineCounter, parseDocument, type YAMLSeq } from 'yaml';
import { shq, shWord } from './install-script.js';

/**
 * The cloud-init `user-data` of an enrolled edge: no config and no seed, only a runcmd entry that
 * fetches the one-time install link on first boot (the same script `curl ... | sudo sh` runs by hand).
 * The boot partition so holds a token that is useless once the Pi has used it, or once it expires.
 * With Raspberry Pi Imager's own `user-data` (hostname, user, SSH, locale), the entry is appended to
 * its `runcmd`, keeping every key and comment of Imager's file.
 */

export interface EnrollUserDataOptions {
  edgeId: string;
  /** `<collector>/edge/install/<token>` */
  installUrl: string;
  expires: string;
  mqtt?: { user: string; password: string; port: number };
}

/** cloud-init runs a string entry of runcmd with `sh -c`; curl retries while the network comes up. */
export function installRuncmd(installUrl: string): string {
  const fetch = `curl -fsSL --retry 30 --retry-delay 5 --retry-all-errors ${shWord(installUrl)} | sh`;
  return `sh -c ${shq(fetch)}`;
}

/** The comment lines (without `#`) that name the edge, the link's expiry and the sensors' MQTT login. */
function commentLines(o: EnrollUserDataOptions): string[] {
  return [
    ` Fieldbeam edge ${o.edgeId}: on first boot, installs the edge agent from the collector with a`,
    ` one-time link, valid until ${o.expires} (then: fieldbeam-cloud edge add ${o.edgeId} --rotate ...).`,
    ...(o.mqtt
      ? [` MQTT for sensors: mqtt://<this Pi>:${o.mqtt.port} user ${o.mqtt.user} password ${o.mqtt.password}`]
      : []),
  ];
}

/** A `#cloud-config` of its own (for an image with cloud-init and nothing from Imager). */
export function renderEnrollUserData(o: EnrollUserDataOptions): string {
  return `#cloud-config
${commentLines(o)
  .map((l) => `#${l}`)
  .join('\n')}
runcmd:
  - ${JSON.stringify(installRuncmd(o.installUrl))}
`;
}

/** Imager's user-data refused, with the line that shows why. */
export class UserDataProblem extends Error {}

/**
 * `imager` (the text of Raspberry Pi Imager's user-data, from `source` for messages) with our runcmd
 * entry appended to its `runcmd` list (created if absent). Refused: a file that is not a
 * `#cloud-config` mapping, a YAML error, and duplicate keys anywhere (two `runcmd:` make cloud-init
 * keep the last and drop the other's commands without a word).
 */
export function mergeImagerUserData(imager: string, source: string, o: EnrollUserDataOptions): string {
  const text = imager.replace(/^\uFEFF/, '');
  if (!/^#cloud-config[ \t]*\r?\n/.test(text)) {
    throw new UserDataProblem(
      `${source}:1: not a cloud-init user-data file (its first line must be "#cloud-config"); ` +
        'give the user-data file Raspberry Pi Imager wrote on the boot partition',
    );
  }
  const lines = new LineCounter();
  // Edited below: typed as a plain document, not the parser's read-only view of one.
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false }) as Document;
  const at = (pos: number) => `${source}:${lines.linePos(pos).line}`;
  for (const e of doc.errors) {
    if (e.code === 'DUPLICATE_KEY') {
      throw new UserDataProblem(
        `${at(e.pos[0])}: duplicate key "${keyAt(text, e.pos[0]) ?? '?'}": cloud-init keeps only the last ` +
          'one and drops the other without a word; merge the two into one list',
      );
    }
    throw new UserDataProblem(`${at(e.pos[0])}: not valid YAML (${e.message})`);
  }
  // Only comments (an emptied file): an empty mapping to add to.
  if (doc.contents === null) doc.contents = doc.createNode({});
  if (!isMap(doc.contents)) {
    const start = (doc.contents as { range?: number[] } | null)?.range?.[0] ?? 0;
    throw new UserDataProblem(`${at(start)}: the document is not a mapping of cloud-config keys`);
  }
  const entry = doc.createNode(installRuncmd(o.installUrl));
  entry.commentBefore = commentLines(o).join('\n');
  const runcmd: unknown = doc.contents.get('runcmd', true);
  let seq: YAMLSeq;
  if (runcmd === undefined || (isScalar(runcmd) && runcmd.value === null)) {
    seq = doc.createNode([]) as YAMLSeq;
    doc.contents.set('runcmd', seq);
  } else if (isSeq(runcmd)) {
    seq = runcmd;
  } else {
    const start = (runcmd as { range?: number[] }).range?.[0] ?? 0;
    throw new UserDataProblem(`${at(start)}: runcmd is not a list; cloud-init expects a list of commands`);
  }
  // Appended as a block item: a flow list (`[a, b]`) is rewritten as a block one, same entries.
  seq.flow = false;
  seq.items.push(entry);
  return doc.toString({ lineWidth: 0 });
}

/** The mapping key that starts at `pos` (the duplicate's position), for the message. */
function keyAt(text: string, pos: number): string | undefined {
  return /^\s*["']?([^"':\n]+)/.exec(text.slice(pos))?.[1]?.trim();
}
