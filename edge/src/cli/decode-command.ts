import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import {
  createDefaultDecoder,
  DECODER_FAMILIES,
  type DecoderFamily,
  defaultTopicPattern,
  type TopicConvention,
} from '../decode/registry.js';
import { isTimeZone, parseTime } from '../decode/time.js';
import type { DecodeOutcome, Decoder } from '../decode/types.js';

export const DECODE_HELP = `fieldbeam-edge decode: decode MQTT payloads offline and print what the agent would store

Usage:
  fieldbeam-edge decode --format FAMILY [--time-zone ZONE] < messages.jsonl
  fieldbeam-edge decode --help

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

Options:
  --format FAMILY      one of ${DECODER_FAMILIES.join(', ')}
  --time-zone ZONE     IANA zone (e.g. Europe/Berlin) for device times without a UTC offset
                       (Tasmota's default "Time"); without it such readings get receipt time and
                       the quality flag time_offset_unknown
  --help               this text

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

/**
 * `fieldbeam-edge decode`: JSON lines of MQTT messages in, one JSON line of decoded readings out per
 * input line. A bad line yields an error line, never an exception. Returns the exit status.
 */
export async function runDecodeCommand(
  args: string[],
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
  hooks: DecodeCommandHooks = {},
): Promise<number> {
  const write = async (text: string) => {
    if (!output.write(text)) await once(output, 'drain');
  };
  let values: { format?: string; 'time-zone'?: string; config?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        format: { type: 'string', short: 'f' },
        'time-zone': { type: 'string' },
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    await write(`decode: ${(err as Error).message}\nRun with --help for usage.\n`);
    return 2;
  }
  if (values.help) {
    await write(DECODE_HELP);
    return 0;
  }
  const usage = usageError(values, hooks);
  if (usage !== undefined) {
    await write(`decode: ${usage}\nRun with --help for usage.\n`);
    return 2;
  }

  const family = values.format as DecoderFamily | undefined;
  const fallback =
    family === undefined
      ? undefined
      : {
          decoder: createDefaultDecoder(family, values['time-zone'] ? { timeZone: values['time-zone'] } : {}),
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

function usageError(
  values: { format?: string; 'time-zone'?: string; config?: string },
  hooks: DecodeCommandHooks,
): string | undefined {
  if (values.config !== undefined && hooks.sensors === undefined) {
    return '--config is not available in this build yet; use --format FAMILY';
  }
  if (values.format === undefined && hooks.sensors === undefined)
    return `--format is required (${DECODER_FAMILIES.join(', ')})`;
  if (values.format !== undefined && !(DECODER_FAMILIES as readonly string[]).includes(values.format)) {
    return `unknown format "${values.format}"; expected one of ${DECODER_FAMILIES.join(', ')}`;
  }
  const tz = values['time-zone'];
  if (tz !== undefined && !isTimeZone(tz))
    return `unknown time zone "${tz}"; use an IANA name such as Europe/Berlin`;
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
