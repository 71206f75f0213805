import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  createDefaultDecoder,
  DECODER_FAMILIES,
  type DecoderFamily,
  defaultTopicPattern,
  type TopicConvention,
} from '../decode/registry.js';
import { isTimeZone, parseTime } from '../decode/time.js';
import type { DecodeOutcome, Decoder } from '../decode/types.js';
import { version } from '../version.js';
import { type ExitStatus, finishCommandLine, runCommandLine } from './command-line.js';

/** What `decode --help` says after the options: the input and output formats and the families. */
export const DECODE_DETAILS = `
Input, one JSON object per line (blank lines are skipped):
  {"topic": "tele/kitchen/SENSOR", "payload": "{\\"Time\\":\\"...\\"}"}
  {"topic": "senml/dev1", "payload_hex": "81a3..."}      raw bytes: CBOR, invalid UTF-8
  "payload" may also be a JSON value, which is re-serialised. Optional "received": epoch ms or an
  ISO time, the receipt time used for relative SenML times (default: now).

Output, one JSON line per input line, in order:
  {"topic", "station", "readings": [{variable, value, unit, text?, time?, timeMs?, sensor?, station, quality?}], "skipped": [...]}
  {"topic", "station", "status": "online" | "offline" | ...}   availability, LWT, birth messages
  {"topic", "ignored": reason}                                 known but not a reading (discovery, commands)
  {"topic"?, "error": reason}                                  payload rejected, or the line unusable
  A reading without "time" has no sensor time: the agent stamps it with receipt time (edge_time).

Formats (each family's default topic conventions, no config needed):
  zigbee2mqtt  zigbee2mqtt/<friendly name>[/<attribute>|/availability], bridge/state
  tasmota      tele/<topic>/SENSOR|STATE|LWT, stat/<topic>/STATUS10, also .../<topic>/tele/SENSOR
  shelly       shellies/<id>/..., <prefix>/events/rpc, <prefix>/status/<component>:<n>, .../online
  esphome      <node>/<component>/<object_id>/state, <node>/status, homeassistant/.../config
  senml        RFC 8428 JSON or CBOR pack, or the draft {"e":[...]}; station = the topic
  json         every numeric field as json:<path>, unit unknown; station = the topic
  number       one plain number; variable mqtt:<last level>, station = the levels before it

Example:
  echo '{"topic":"tele/kitchen/SENSOR","payload":{"DS18B20":{"Temperature":21.4}}}' | fieldbeam-edge decode --format tasmota

Exit status: 0 every line decoded (or deliberately ignored), 1 some line gave an error, 2 usage error.
`;

/** A sensor route from the agent config: which decoder a topic goes to, and the ids the config fixes. */
export interface DecodeRoute {
  decoder: Decoder;
  captures: Readonly<Record<string, string>>;
  station?: string;
  sensor?: string;
}

export interface DecodeCommandHooks {
  /** Routes topics by the agent's `sensors` config (`--config FILE`); the config loader wires this. */
  sensors?: (topic: string) => DecodeRoute | undefined;
}

/** The options of `decode`, as parsed. */
export interface DecodeOptions {
  format?: DecoderFamily;
  timeZone?: string;
  config?: string;
}

/** What `decode` reads, writes and routes by. */
export interface DecodeCommandIo {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** The sensors hook for `--config FILE` (the CLI loads the agent config); none: `--config` is refused. */
  hooksFor?: (configFile: string) => DecodeCommandHooks;
  /** Receives the exit status. */
  status: ExitStatus;
}

/** The `decode` command: its options, its help and its action. */
export function createDecodeCommand(io: DecodeCommandIo): Command {
  const cmd = new Command('decode')
    .summary('decode JSON lines of MQTT messages from stdin and print what the agent would store')
    .description(
      'Decodes MQTT payloads offline and prints what the agent would store: by the conventions of a ' +
        "device family (--format), or through the sensors of the agent's config (--config).",
    )
    .addOption(
      new Option('-f, --format <family>', 'decode by the conventions of this device family').choices(
        DECODER_FAMILIES,
      ),
    )
    .addOption(
      new Option(
        '--time-zone <zone>',
        "IANA zone (e.g. Europe/Berlin) for device times without a UTC offset (Tasmota's default " +
          '"Time"); without it such readings get receipt time and the quality flag time_offset_unknown',
      ).argParser((zone) => {
        if (!isTimeZone(zone))
          throw new InvalidArgumentError(
            `unknown time zone "${zone}"; use an IANA name such as Europe/Berlin`,
          );
        return zone;
      }),
    )
    .option('-c, --config <file>', 'route topics by the sensors of this agent config (keys: edge/README.md)')
    .addHelpText('after', DECODE_DETAILS)
    .action(async (options: DecodeOptions) => {
      const hooks = options.config !== undefined && io.hooksFor ? io.hooksFor(options.config) : {};
      const usage = usageError(options, hooks);
      if (usage !== undefined) cmd.error(`error: ${usage}`);
      io.status.code = await decodeLines(options, io.input, io.output, hooks);
    });
  return cmd;
}

/**
 * `fieldbeam-edge decode ARGS` on the given streams (help and usage errors included), as the CLI
 * runs it. Returns the exit status.
 */
export async function runDecodeCommand(
  args: string[],
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
  hooks: DecodeCommandHooks = {},
): Promise<number> {
  const status: ExitStatus = { code: 0 };
  const write = (text: string) => {
    output.write(text);
  };
  const cmd = createDecodeCommand({
    input,
    output,
    status,
    ...(hooks.sensors ? { hooksFor: () => hooks } : {}),
  });
  return runCommandLine(finishCommandLine(cmd, version, { writeOut: write, writeErr: write }), args, status);
}

/**
 * JSON lines of MQTT messages in, one JSON line of decoded readings out per input line. A bad line
 * yields an error line, never an exception. Returns 0, or 1 when some line gave an error.
 */
async function decodeLines(
  options: DecodeOptions,
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
  hooks: DecodeCommandHooks,
): Promise<number> {
  const write = async (text: string) => {
    if (!output.write(text)) await once(output, 'drain');
  };
  const family = options.format;
  const fallback =
    family === undefined
      ? undefined
      : {
          decoder: createDefaultDecoder(family, options.timeZone ? { timeZone: options.timeZone } : {}),
          convention: defaultTopicPattern(family),
        };

  let failed = false;
  let lineNo = 0;
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === '') continue;
    const result = decodeLine(line, lineNo, hooks, fallback);
    if ('error' in result) failed = true;
    await write(`${JSON.stringify(result)}\n`);
  }
  return failed ? 1 : 0;
}

function usageError(options: DecodeOptions, hooks: DecodeCommandHooks): string | undefined {
  if (options.config !== undefined && hooks.sensors === undefined) {
    return '--config is not available in this build yet; use --format FAMILY';
  }
  if (options.format === undefined && hooks.sensors === undefined)
    return `--format FAMILY or --config FILE is required (families: ${DECODER_FAMILIES.join(', ')})`;
  return undefined;
}

type Fallback = { decoder: Decoder; convention: TopicConvention } | undefined;
type OutputLine = Record<string, unknown>;

function decodeLine(line: string, lineNo: number, hooks: DecodeCommandHooks, fallback: Fallback): OutputLine {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch (err) {
    return { error: `line ${lineNo}: not JSON: ${(err as Error).message}` };
  }
  if (
    typeof msg !== 'object' ||
    msg === null ||
    Array.isArray(msg) ||
    typeof (msg as { topic?: unknown }).topic !== 'string'
  ) {
    return { error: `line ${lineNo}: expected an object {"topic": "...", "payload": "..."}` };
  }
  const m = msg as Record<string, unknown>;
  const topic = m.topic as string;
  const payload = payloadOf(m);
  if (typeof payload === 'string') return { topic, error: `line ${lineNo}: ${payload}` };
  const receivedMs = receivedOf(m.received);
  if (receivedMs === undefined)
    return { topic, error: `line ${lineNo}: "received" must be epoch ms or an ISO time` };

  const route = hooks.sensors?.(topic);
  const decoder = route?.decoder ?? fallback?.decoder;
  if (decoder === undefined) return { topic, ignored: 'no sensor in the config matches this topic' };
  const captures = route?.captures ?? {};
  let outcome: DecodeOutcome;
  try {
    outcome = decoder({ topic, payload, captures, receivedMs });
  } catch (err) {
    outcome = { kind: 'rejected', reason: `decoder failed: ${(err as Error).message}` };
  }
  // Precedence as in types.ts: fixed in config, named by the decoder, captured by the pattern, convention.
  const station =
    route?.station ??
    ('station' in outcome ? outcome.station : undefined) ??
    captures.station ??
    (route === undefined ? fallback?.convention.stationOf(topic) : undefined);
  const base: OutputLine = station === undefined ? { topic } : { topic, station };
  switch (outcome.kind) {
    case 'rejected':
      return { topic, error: outcome.reason };
    case 'ignored':
      return { topic, ignored: outcome.reason };
    case 'status':
      return { ...base, status: outcome.state };
    case 'readings': {
      const fixedSensor = route?.sensor ?? captures.sensor;
      const readings = outcome.readings.map((r) => {
        const sensor = r.sensor ?? fixedSensor;
        return {
          ...r,
          ...(r.timeMs === undefined ? {} : { time: new Date(r.timeMs).toISOString() }),
          ...(sensor === undefined ? {} : { sensor }),
          ...(station === undefined ? {} : { station }),
        };
      });
      return { ...base, readings, skipped: outcome.skipped };
    }
  }
}

/** The payload bytes of an input line, or why there are none. */
function payloadOf(m: Record<string, unknown>): Uint8Array | string {
  if (m.payload_hex !== undefined) {
    if (typeof m.payload_hex !== 'string' || !/^(?:[0-9a-fA-F]{2})*$/.test(m.payload_hex)) {
      return '"payload_hex" must be an even number of hex digits';
    }
    return Uint8Array.from(Buffer.from(m.payload_hex, 'hex'));
  }
  if (typeof m.payload === 'string') return new TextEncoder().encode(m.payload);
  if (m.payload === undefined) return 'missing "payload" (or "payload_hex")';
  return new TextEncoder().encode(JSON.stringify(m.payload));
}

function receivedOf(raw: unknown): number | undefined {
  if (raw === undefined) return Date.now();
  const t = parseTime(raw);
  return t.kind === 'utc' ? t.ms : undefined;
}
