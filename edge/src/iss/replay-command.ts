import { parseArgs } from 'node:util';
import { DEFAULT_ISS_ITEMS } from './default-items.js';
import { loadIssCatalogue } from './isslive-catalogue.js';
import { ISS_CLOCK_ITEM } from './isslive-schema.js';
import { createTlcpReplayServer, type ReplayServerSource } from './tlcp-replay-server.js';

/** `fieldbeam-edge iss-replay`: a local ISSLIVE server for offline demos and manual tests. */

export const ISS_REPLAY_USAGE = `Usage: fieldbeam-edge iss-replay [options]

Runs a local Lightstreamer (TLCP 2.5.0) server with the ISSLIVE adapter set, for offline demos and
tests. Point an edge agent's ISS source at the printed URL. Stops on SIGINT/SIGTERM.

Options:
  --port N        port to listen on (default 18080; 0 picks a free one)
  --host H        address to bind (default 127.0.0.1)
  --file F        replay a JSON Lines recording, one update per line:
                  {"item":"USLAB000058","TimeStamp":"7845.34","Value":"742.99","Status.Class":"24"}
                  without --file, values are generated from the item catalogue
  --speed X       with --file: playback speed against the recorded TimeStamps (default 1);
                  without: generator ticks per second (default 1)
  --items N       generator: number of items (default: the ${DEFAULT_ISS_ITEMS.length} default items; up to the
                  whole catalogue)
  --loop          with --file: start again after the last line
  --retime        with --file: stamp updates with the time they are sent (looks live; a loop
                  then yields new readings instead of repeats)
  --keepalive MS  PROBE interval announced to clients (default 5000)
  -h, --help      show this help
`;

export interface IssReplayArgs {
  host: string;
  port: number;
  file?: string;
  speed: number;
  items?: number;
  loop: boolean;
  retime: boolean;
  keepaliveMs: number;
}

type Parsed = { kind: 'run'; args: IssReplayArgs } | { kind: 'help' } | { kind: 'error'; message: string };

function positiveNumber(name: string, text: string | undefined, fallback: number, allowZero = false): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
    throw new Error(`--${name} expects a ${allowZero ? 'non-negative' : 'positive'} number, got "${text}"`);
  }
  return n;
}

/** Reads the command line; never throws (a usage problem comes back as `error`). */
export function parseIssReplayArgs(argv: readonly string[]): Parsed {
  try {
    const { values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        file: { type: 'string' },
        speed: { type: 'string' },
        items: { type: 'string' },
        loop: { type: 'boolean', default: false },
        retime: { type: 'boolean', default: false },
        keepalive: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) return { kind: 'help' };
    const port = positiveNumber('port', values.port, 18080, true);
    if (!Number.isInteger(port) || port > 65535)
      throw new Error(`--port expects 0..65535, got "${values.port}"`);
    const items = values.items === undefined ? undefined : positiveNumber('items', values.items, 0);
    if (items !== undefined && !Number.isInteger(items)) throw new Error(`--items expects a whole number`);
    if (values.file === undefined && (values.loop || values.retime)) {
      throw new Error('--loop and --retime apply to a replayed --file');
    }
    if (values.file !== undefined && items !== undefined)
      throw new Error('--items applies to the generator, not to --file');
    const args: IssReplayArgs = {
      host: values.host ?? '127.0.0.1',
      port,
      speed: positiveNumber('speed', values.speed, 1),
      loop: values.loop,
      retime: values.retime,
      keepaliveMs: positiveNumber('keepalive', values.keepalive, 5_000),
    };
    if (values.file !== undefined) args.file = values.file;
    if (items !== undefined) args.items = items;
    return { kind: 'run', args };
  } catch (error) {
    return { kind: 'error', message: (error as Error).message };
  }
}

/** The generator's items: the default list first, then the rest of the catalogue, `count` in all. */
export function generatorItems(count: number | undefined): string[] {
  const defaults = DEFAULT_ISS_ITEMS.filter((i) => i !== ISS_CLOCK_ITEM);
  if (count === undefined) return defaults;
  const rest = loadIssCatalogue()
    .items.map((i) => i.id)
    .filter((id) => id !== ISS_CLOCK_ITEM && !defaults.includes(id));
  return [...new Set([...defaults, ...rest])].slice(0, count);
}

export interface IssReplayIo {
  out?: (line: string) => void;
  err?: (line: string) => void;
  /** Stops the server (default: SIGINT or SIGTERM). */
  signal?: AbortSignal;
}

/** Entry point for `fieldbeam-edge iss-replay …`; resolves to the process exit code. */
export async function runIssReplayCommand(argv: string[], io: IssReplayIo = {}): Promise<number> {
  const out = io.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const err = io.err ?? ((l: string) => process.stderr.write(`${l}\n`));
  const parsed = parseIssReplayArgs(argv);
  if (parsed.kind === 'help') {
    out(ISS_REPLAY_USAGE);
    return 0;
  }
  if (parsed.kind === 'error') {
    err(`iss-replay: ${parsed.message}\n\n${ISS_REPLAY_USAGE}`);
    return 2;
  }
  const a = parsed.args;
  const source: ReplayServerSource =
    a.file !== undefined
      ? { kind: 'file', path: a.file, speed: a.speed, loop: a.loop, retime: a.retime }
      : { kind: 'generator', items: generatorItems(a.items), rate: a.speed };

  let server: Awaited<ReturnType<typeof createTlcpReplayServer>>;
  try {
    server = await createTlcpReplayServer({ host: a.host, port: a.port, keepaliveMs: a.keepaliveMs, source });
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    const hint =
      e.code === 'EADDRINUSE' ? ` (port ${a.port} is taken: choose another with --port, or 0)` : '';
    err(`iss-replay: cannot start: ${e.message}${hint}`);
    return 1;
  }

  const what =
    source.kind === 'file'
      ? `replaying ${a.file} at ${a.speed}x${a.loop ? ', looping' : ''}${a.retime ? ', retimed' : ''}`
      : `generating ${source.items?.length} items + ${ISS_CLOCK_ITEM} at ${a.speed} tick/s`;
  out(`ISSLIVE replay server on ${server.url} (adapter set ISSLIVE; ${what})`);

  await new Promise<void>((resolve) => {
    if (io.signal !== undefined) {
      if (io.signal.aborted) return resolve();
      io.signal.addEventListener('abort', () => resolve(), { once: true });
      return;
    }
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  out('ISSLIVE replay server stopped');
  return 0;
}
