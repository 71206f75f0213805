import { Command, CommanderError, Option } from 'commander';
import { type ExitStatus, finishCommandLine, runCommandLine } from '../cli/command-line.js';
import { DEFAULT_ISS_ITEMS } from '../iss/default-items.js';
import { loadIssCatalogue } from '../iss/isslive-catalogue.js';
import { ISS_CLOCK_ITEM } from '../iss/isslive-schema.js';
import { version } from '../version.js';
import { createTlcpReplayServer, type ReplayServerSource } from './tlcp-replay-server.js';

/** `fieldbeam-edge iss-replay`: a local ISSLIVE server for offline demos and manual tests. */

const DESCRIPTION =
  'Runs a local Lightstreamer (TLCP 2.5.0) server with the ISSLIVE adapter set, for offline demos and ' +
  "tests. Point an edge agent's ISS source at the printed URL. Stops on SIGINT/SIGTERM.";

const REPLAY_FILE_HELP = `
A replay file holds one update per line:
  {"item":"USLAB000058","TimeStamp":"7845.34","Value":"742.99","Status.Class":"24"}
Without --file, values are generated from the item catalogue.`;

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

/** The options as commander hands them over, before `replayArgs` checks them. */
interface RawOptions {
  port: string;
  host: string;
  file?: string;
  speed: string;
  items?: string;
  loop?: boolean;
  retime?: boolean;
  keepalive: string;
}

function positiveNumber(name: string, text: string, allowZero = false): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
    throw new Error(`--${name} expects a ${allowZero ? 'non-negative' : 'positive'} number, got "${text}"`);
  }
  return n;
}

/** The options checked against each other; throws with what is wrong. */
function replayArgs(o: RawOptions): IssReplayArgs {
  const port = positiveNumber('port', o.port, true);
  if (!Number.isInteger(port) || port > 65535) throw new Error(`--port expects 0..65535, got "${o.port}"`);
  const items = o.items === undefined ? undefined : positiveNumber('items', o.items);
  if (items !== undefined && !Number.isInteger(items)) throw new Error('--items expects a whole number');
  if (o.file === undefined && (o.loop || o.retime)) {
    throw new Error('--loop and --retime apply to a replayed --file');
  }
  if (o.file !== undefined && items !== undefined)
    throw new Error('--items applies to the generator, not to --file');
  const args: IssReplayArgs = {
    host: o.host,
    port,
    speed: positiveNumber('speed', o.speed),
    loop: o.loop === true,
    retime: o.retime === true,
    keepaliveMs: positiveNumber('keepalive', o.keepalive),
  };
  if (o.file !== undefined) args.file = o.file;
  if (items !== undefined) args.items = items;
  return args;
}

/** The command's options, with their defaults (shown by --help). */
function withReplayOptions(cmd: Command): Command {
  return cmd
    .summary('a local Lightstreamer (TLCP) server replaying ISSLIVE, for offline demos and tests')
    .description(DESCRIPTION)
    .addOption(new Option('--port <n>', 'port to listen on; 0 picks a free one').default('18080', '18080'))
    .option('--host <address>', 'address to bind', '127.0.0.1')
    .option('--file <file>', 'replay this JSON Lines recording (see below)')
    .addOption(
      new Option(
        '--speed <x>',
        'with --file: playback speed against the recorded TimeStamps; without: generator ticks per second',
      ).default('1', '1'),
    )
    .option(
      '--items <n>',
      `generator: number of items (default: the ${DEFAULT_ISS_ITEMS.length} default items; up to the whole catalogue)`,
    )
    .option('--loop', 'with --file: start again after the last line')
    .option(
      '--retime',
      'with --file: stamp updates with the time they are sent (looks live; a loop then yields new readings instead of repeats)',
    )
    .addOption(new Option('--keepalive <ms>', 'PROBE interval announced to clients').default('5000', '5000'))
    .addHelpText('after', REPLAY_FILE_HELP);
}

/** Reads the command line; never throws (a usage problem comes back as `error`). */
export function parseIssReplayArgs(argv: readonly string[]): Parsed {
  let parsed: Parsed = { kind: 'help' };
  const cmd = withReplayOptions(new Command('iss-replay'))
    .helpOption('-h, --help')
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {} })
    .action((o: RawOptions) => {
      try {
        parsed = { kind: 'run', args: replayArgs(o) };
      } catch (error) {
        parsed = { kind: 'error', message: (error as Error).message };
      }
    });
  try {
    cmd.parse([...argv], { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    return error.exitCode === 0 ? { kind: 'help' } : { kind: 'error', message: error.message };
  }
  return parsed;
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

/** The `iss-replay` command: its options, its help and its action, which serves until stopped. */
export function createIssReplayCommand(io: IssReplayIo, status: ExitStatus): Command {
  const cmd: Command = withReplayOptions(new Command('iss-replay')).action(async (o: RawOptions) => {
    let args: IssReplayArgs;
    try {
      args = replayArgs(o);
    } catch (error) {
      cmd.error(`error: ${(error as Error).message}`);
    }
    status.code = await serveReplay(args, io);
  });
  return cmd;
}

/** `fieldbeam-edge iss-replay ARGS` with its help and usage errors; resolves to the process exit code. */
export async function runIssReplayCommand(argv: string[], io: IssReplayIo = {}): Promise<number> {
  const out = io.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const err = io.err ?? ((l: string) => process.stderr.write(`${l}\n`));
  const status: ExitStatus = { code: 0 };
  const cmd = finishCommandLine(createIssReplayCommand(io, status), version, {
    writeOut: (text) => out(text.replace(/\n$/, '')),
    writeErr: (text) => err(text.replace(/\n$/, '')),
  });
  return runCommandLine(cmd, argv, status);
}

/** Serves the replay until stopped (SIGINT/SIGTERM, or `io.signal`). */
async function serveReplay(a: IssReplayArgs, io: IssReplayIo): Promise<number> {
  const out = io.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const err = io.err ?? ((l: string) => process.stderr.write(`${l}\n`));
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
