import {
  type CentralSensorConfig,
  centralSensors,
  type EdgeStatus,
  isSubjectToken,
  type SensorConfig,
} from '@fieldbeam/protocol';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { CloudConfig } from '../config.js';
import { CloudError, CloudErrorCode } from '../errors.js';
import {
  CentralSensorStore,
  checkSensor,
  lastHeartbeat,
  promotedSensors,
  type SensorTarget,
  targetKey,
} from '../fleet/central-sensors.js';
import { printable } from '../fleet/fleet-view.js';
import { collectorConnectOptions, explainConnectError } from '../nats/connection.js';

type Out = { write(s: string): unknown };

export interface SensorsCommandDeps {
  /** The collector's settings, read when a command runs (NATS is found as `run` finds it). */
  config(): CloudConfig;
  out: Out;
}

interface TargetOptions {
  all?: boolean;
}

const number = (min: number, max: number) => (text: string) => {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max)
    throw new InvalidArgumentError(`expected a number from ${min} to ${max}`);
  return n;
};

/** EDGE or --all, exactly one. */
function targetOf(edge: string | undefined, opts: TargetOptions): SensorTarget {
  if (opts.all && edge !== undefined) throw new InvalidArgumentError('give an edge id or --all, not both');
  if (opts.all) return { all: true };
  if (edge === undefined) throw new InvalidArgumentError('give an edge id, or --all for every edge');
  if (!isSubjectToken(edge))
    throw new InvalidArgumentError(`"${edge}" is not an edge id (1-64 of A-Z a-z 0-9 _ -)`);
  return { edge };
}

async function withNats<T>(config: CloudConfig, f: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connect({ ...collectorConnectOptions(config), reconnect: false, timeout: 5000 }).catch(
    (err: unknown) => {
      throw explainConnectError(err, config);
    },
  );
  try {
    return await f(nc);
  } finally {
    await nc.close();
  }
}

/** `sensors add`: the decoder given as `--decoder` with its options from `--decoder-json`. */
function sensorFromOptions(o: AddOptions): SensorConfig {
  let options: Record<string, unknown> = {};
  if (o.decoderJson !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(o.decoderJson);
    } catch (err) {
      throw new CloudError(
        CloudErrorCode.SENSOR_CONFIG_INVALID,
        `--decoder-json is not JSON (${(err as Error).message}); e.g. '{"variable":"air_temperature","unit":"Cel"}'`,
        false,
      );
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new CloudError(
        CloudErrorCode.SENSOR_CONFIG_INVALID,
        '--decoder-json must be a JSON object',
        false,
      );
    options = parsed as Record<string, unknown>;
    if ('type' in options && options.type !== o.decoder)
      throw new CloudError(
        CloudErrorCode.SENSOR_CONFIG_INVALID,
        `--decoder-json says type ${JSON.stringify(options.type)} but --decoder is ${o.decoder}; give the type once`,
        false,
      );
  }
  return checkSensor({
    topic: o.topic,
    decoder: { ...options, type: o.decoder },
    ...(o.station !== undefined ? { station: o.station } : {}),
    ...(o.sensor !== undefined ? { sensor: o.sensor } : {}),
    ...(o.lat !== undefined ? { lat: o.lat } : {}),
    ...(o.lon !== undefined ? { lon: o.lon } : {}),
    ...(o.alt !== undefined ? { alt: o.alt } : {}),
  });
}

interface AddOptions extends TargetOptions {
  topic: string;
  decoder: string;
  decoderJson?: string;
  station?: string;
  sensor?: string;
  lat?: number;
  lon?: number;
  alt?: number;
}

const who = (target: SensorTarget) => ('edge' in target ? target.edge : 'every edge');

export async function addSensor(
  deps: SensorsCommandDeps,
  target: SensorTarget,
  o: AddOptions,
): Promise<number> {
  // Checked before connecting: a refused sensor needs no NATS to be told so.
  const sensor = sensorFromOptions(o);
  const key = targetKey(target);
  const { before, after } = await withNats(deps.config(), async (nc) =>
    (await CentralSensorStore.open(nc)).change(key, (v) => ({
      ...v,
      sensors: [...v.sensors.filter((s) => s.topic !== sensor.topic), sensor],
    })),
  );
  const replaced = before.value.sensors.some((s) => s.topic === sensor.topic);
  deps.out.write(
    `${key}: ${replaced ? 'replaced' : 'added'} ${sensor.topic} (decoder ${sensor.decoder.type}), revision ${after.revision}\n` +
      `${who(target)} applies it without a restart once connected; its heartbeat reports the revision applied (sensors list).\n`,
  );
  return 0;
}

export async function removeSensor(
  deps: SensorsCommandDeps,
  target: SensorTarget,
  topic: string,
): Promise<number> {
  const key = targetKey(target);
  const { after } = await withNats(deps.config(), async (nc) =>
    (await CentralSensorStore.open(nc)).change(key, (v) => {
      if (!v.sensors.some((s) => s.topic === topic))
        throw new CloudError(
          CloudErrorCode.SENSOR_CONFIG_INVALID,
          `${key} has no sensor on ${topic} (sensors list ${'edge' in target ? target.edge : '--all'} shows them)`,
          false,
        );
      return { ...v, sensors: v.sensors.filter((s) => s.topic !== topic) };
    }),
  );
  deps.out.write(`${key}: removed ${topic}, revision ${after.revision}\n`);
  return 0;
}

export async function clearSensors(deps: SensorsCommandDeps, target: SensorTarget): Promise<number> {
  const key = targetKey(target);
  const after = await withNats(deps.config(), async (nc) => (await CentralSensorStore.open(nc)).clear(key));
  deps.out.write(`${key}: cleared (no central sensors), revision ${after.revision}\n`);
  return 0;
}

export async function promoteSensors(
  deps: SensorsCommandDeps,
  edge: string,
  topics: readonly string[],
): Promise<number> {
  const key = centralSensors.edgeKey(edge);
  const { promoted, after } = await withNats(deps.config(), async (nc) => {
    const promoted = promotedSensors(await lastHeartbeat(nc, edge), edge, topics);
    const topicsSet = new Set(promoted.map((s) => s.topic));
    const { after } = await (await CentralSensorStore.open(nc)).change(key, (v) => ({
      ...v,
      sensors: [...v.sensors.filter((s) => !topicsSet.has(s.topic)), ...promoted],
    }));
    return { promoted, after };
  });
  for (const s of promoted)
    deps.out.write(`${key}: promoted ${s.topic} (decoder ${s.decoder.type}, station ${s.station ?? '-'})\n`);
  deps.out.write(`revision ${after.revision}; ${edge} now decodes these topics as central sensors\n`);
  return 0;
}

const cell = (v: unknown) => (v === undefined || v === null ? '-' : String(v));

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function decoderOptions(s: SensorConfig): string {
  const { type: _type, ...rest } = s.decoder;
  return Object.keys(rest).length ? JSON.stringify(rest) : '';
}

function sensorRows(value: CentralSensorConfig, from: string): string[][] {
  return value.sensors.map((s) => [
    s.topic,
    s.decoder.type,
    cell(s.station),
    cell(s.lat),
    cell(s.lon),
    from,
    decoderOptions(s),
  ]);
}

export async function listSensors(
  deps: SensorsCommandDeps,
  target: SensorTarget,
  json: boolean,
): Promise<number> {
  const key = targetKey(target);
  const { own, all, heartbeat } = await withNats(deps.config(), async (nc) => {
    const store = await CentralSensorStore.open(nc);
    const own = await store.read(key);
    // An edge runs with the fleet-wide sensors too; shown beside its own.
    const all = 'edge' in target ? await store.read(centralSensors.allKey) : undefined;
    const heartbeat: EdgeStatus | undefined =
      'edge' in target ? await lastHeartbeat(nc, target.edge) : undefined;
    return { own, all, heartbeat };
  });
  if (json) {
    deps.out.write(
      `${JSON.stringify(
        {
          key,
          ...own,
          ...(all ? { all } : {}),
          ...(heartbeat ? { applied: heartbeat.config ?? null, reported: heartbeat.sensors ?? [] } : {}),
        },
        null,
        2,
      )}\n`,
    );
    return 0;
  }
  const rows = [...sensorRows(own.value, key), ...(all ? sensorRows(all.value, 'all') : [])];
  const out: string[] = [
    `${key}: revision ${cell(own.revision)}${all ? `; all: revision ${cell(all.revision)}` : ''}`,
  ];
  for (const [k, v] of [
    [key, own],
    [centralSensors.allKey, all],
  ] as const)
    if (v?.invalid)
      out.push(
        `INVALID ${k} revision ${v.revision}: edges refuse it and keep their last good config: ${v.invalid}` +
          ` (sensors clear ${k === centralSensors.allKey ? '--all' : (target as { edge: string }).edge} empties it)`,
      );
  const auto = own.value.auto_register ?? all?.value.auto_register;
  if (auto) out.push(`auto_register: ${JSON.stringify(auto)}`);
  out.push(
    rows.length
      ? table(['TOPIC', 'DECODER', 'STATION', 'LAT', 'LON', 'FROM', 'OPTIONS'], rows)
      : '(no central sensors)',
  );
  if ('edge' in target) {
    if (!heartbeat) out.push(`${target.edge} has sent no heartbeat yet`);
    else {
      const c = heartbeat.config;
      out.push(
        `\n${target.edge} (heartbeat ${heartbeat.time}): central revision ${cell(c?.revision)} applied ${cell(c?.appliedAt)}` +
          (c?.error ? `\n  REFUSED revision ${c.refusedRevision}: ${printable(c.error)}` : ''),
      );
      const reported = heartbeat.sensors ?? [];
      if (reported.length)
        out.push(
          table(
            ['TOPIC', 'DECODER', 'STATION', 'ORIGIN', 'LAST READING'],
            // What the edge reports is printed as text only (no escape sequences reach the terminal).
            reported.map((s) => [
              printable(s.topic),
              printable(s.decoder),
              printable(cell(s.station)),
              s.origin,
              cell(s.lastReadingTime),
            ]),
          ) +
            (heartbeat.sensorCount !== undefined && heartbeat.sensorCount > reported.length
              ? `\n(${heartbeat.sensorCount - reported.length} more not listed in the heartbeat)`
              : ''),
        );
    }
  }
  deps.out.write(`${out.join('\n')}\n`);
  return 0;
}

/**
 * An action whose argument problems (`InvalidArgumentError`) are usage errors like commander's own:
 * the message and the usage on stderr, status 2. Options are checked for presence here rather than
 * with `requiredOption`, so that an unknown option is named first.
 */
function usage<A extends unknown[]>(run: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      await run(...args);
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) throw err;
      (args[args.length - 1] as Command).error(`error: ${err.message}`, { exitCode: 2 });
    }
  };
}

function required<O extends object>(o: O, names: (keyof O & string)[]): void {
  for (const n of names)
    if (o[n] === undefined)
      throw new InvalidArgumentError(
        `required option '--${n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}' not specified`,
      );
}

/** `fieldbeam-cloud sensors`: the central sensor config in the KV bucket fb_sensors. */
export function createSensorsCommand(deps: SensorsCommandDeps, status: { code: number }): Command {
  const sensors = new Command('sensors')
    .summary('sensors configured centrally, per edge or for every edge (applied live by the edges)')
    .description(
      'The central sensor config (NATS KV bucket fb_sensors): key edge.<id> per edge, key all for every ' +
        "edge. Edges watch their keys and apply changes without a restart; an edge's own YAML sensors win " +
        'for the same topic, then its own key, then all.',
    );
  const allOption = () => new Option('--all', 'the fleet-wide defaults (key all) instead of one edge');

  sensors
    .command('add')
    .description(
      'add (or replace, for the same topic) a sensor; refused with the reason if an edge would refuse it',
    )
    .argument('[edge]', 'the edge id')
    .addOption(allOption())
    .option('--topic <pattern>', "MQTT topic pattern, e.g. 'zigbee2mqtt/+station' (+name/#name capture)")
    .option('--decoder <type>', 'number, json, senml, zigbee2mqtt, tasmota, shelly or esphome')
    .option(
      '--decoder-json <json>',
      `the decoder's options, e.g. '{"variable":"air_temperature","unit":"Cel"}'`,
    )
    .option('--station <id>', 'fixed station id (else the +station capture or the device name)')
    .option('--sensor <id>', 'fixed sensor id')
    .addOption(new Option('--lat <deg>', 'latitude').argParser(number(-90, 90)))
    .addOption(new Option('--lon <deg>', 'longitude').argParser(number(-180, 180)))
    .addOption(new Option('--alt <m>', 'altitude').argParser(number(-1e5, 1e5)))
    .action(
      usage(async (edge: string | undefined, o: AddOptions) => {
        required(o, ['topic', 'decoder']);
        status.code = await addSensor(deps, targetOf(edge, o), o);
      }),
    );

  sensors
    .command('remove')
    .description('remove the sensor on a topic')
    .argument('[edge]', 'the edge id')
    .addOption(allOption())
    .option('--topic <pattern>', 'the topic pattern as listed')
    .action(
      usage(async (edge: string | undefined, o: TargetOptions & { topic: string }) => {
        required(o, ['topic']);
        status.code = await removeSensor(deps, targetOf(edge, o), o.topic);
      }),
    );

  sensors
    .command('list')
    .description(
      'the central sensors of an edge (with the fleet-wide ones and what its last heartbeat reports) or of --all',
    )
    .argument('[edge]', 'the edge id')
    .addOption(allOption())
    .option('--json', 'print JSON')
    .action(
      usage(async (edge: string | undefined, o: TargetOptions & { json?: boolean }) => {
        status.code = await listSensors(deps, targetOf(edge, o), o.json === true);
      }),
    );

  sensors
    .command('clear')
    .description(
      'remove every central sensor of an edge (or --all), whatever the key holds, an invalid value too',
    )
    .argument('[edge]', 'the edge id')
    .addOption(allOption())
    .action(
      usage(async (edge: string | undefined, o: TargetOptions) => {
        status.code = await clearSensors(deps, targetOf(edge, o));
      }),
    );

  sensors
    .command('promote')
    .description(
      'make sensors an edge auto-registered (origin auto in its heartbeat) part of its central config',
    )
    .argument('<edge>', 'the edge id')
    .argument('<topics...>', 'the auto-registered topics, as its heartbeat lists them (sensors list EDGE)')
    .action(
      usage(async (edge: string, topics: string[]) => {
        targetOf(edge, {});
        status.code = await promoteSensors(deps, edge, topics);
      }),
    );

  return sensors;
}
