import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { numberDecoder } from '../decode/number.js';
import { runDecodeCommand } from './decode-command.js';

async function run(args: string[], lines: string[], hooks = {}) {
  const output = new PassThrough();
  const chunks: Buffer[] = [];
  output.on('data', (c: Buffer) => chunks.push(c));
  const code = await runDecodeCommand(args, Readable.from(lines.map((l) => `${l}\n`)), output, hooks);
  const text = Buffer.concat(chunks).toString('utf8');
  return {
    code,
    text,
    json: () =>
      text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const line = (topic: string, payload: unknown, extra = {}) =>
  JSON.stringify({ topic, ...(typeof payload === 'string' ? { payload } : { payload }), ...extra });

describe('decode command', () => {
  it('prints one line of readings per input, with station and sensor from the conventions', async () => {
    const r = await run(
      ['--format', 'tasmota'],
      [
        line(
          'tele/caldera/SENSOR',
          '{"Time":"2021-06-27T15:03:44+02:00","DS18B20-1":{"Id":"0316863E26FF","Temperature":21.4}}',
        ),
        line('tele/caldera/LWT', 'Offline'),
        line('stat/caldera/RESULT', '{"POWER":"ON"}'),
      ],
    );
    expect(r.code).toBe(0);
    expect(r.json()).toEqual([
      {
        topic: 'tele/caldera/SENSOR',
        station: 'caldera',
        readings: [
          {
            variable: 'air_temperature',
            value: 21.4,
            unit: 'degC',
            timeMs: Date.parse('2021-06-27T13:03:44Z'),
            time: '2021-06-27T13:03:44.000Z',
            sensor: '0316863E26FF',
            station: 'caldera',
            quality: ['unit_assumed'],
          },
        ],
        skipped: [],
      },
      { topic: 'tele/caldera/LWT', station: 'caldera', status: 'offline' },
      { topic: 'stat/caldera/RESULT', ignored: 'Tasmota RESULT messages carry no sensor readings' },
    ]);
  });

  it('turns bad lines into error lines and keeps going, exit status 1', async () => {
    const r = await run(
      ['--format', 'zigbee2mqtt'],
      [
        'not json',
        '{"payload":"1"}',
        line('zigbee2mqtt/a', '{"temperature":'),
        '',
        line('zigbee2mqtt/a', '{"temperature":21}'),
      ],
    );
    expect(r.code).toBe(1);
    const out = r.json();
    expect(out).toHaveLength(4); // the blank line is not an input
    expect(out[0]?.error).toMatch(/^line 1: not JSON/);
    expect(out[1]?.error).toMatch(/^line 2: expected an object/);
    expect(out[2]).toMatchObject({ topic: 'zigbee2mqtt/a', error: expect.stringContaining('not JSON') });
    expect(out[3]).toMatchObject({ station: 'a', readings: [{ variable: 'air_temperature', value: 21 }] });
  });

  it('takes raw bytes as payload_hex, JSON values as payload, and an explicit receipt time', async () => {
    const r = await run(
      ['--format', 'senml'],
      [
        JSON.stringify({ topic: 'senml/dev1', payload_hex: '81a3006161016156023ff0' }),
        JSON.stringify({ topic: 'senml/dev1', payload_hex: '81a300616101615602fb3ff0000000000000' }),
        line('senml/dev1', [{ n: 'a', u: 'W', v: 5, t: -10 }], { received: '2026-01-01T00:00:10Z' }),
        JSON.stringify({ topic: 'senml/dev1', payload_hex: 'xyz' }),
      ],
    );
    const out = r.json();
    expect(out[0]?.error).toContain('CBOR');
    expect(out[1]).toMatchObject({
      station: 'senml/dev1',
      readings: [{ variable: 'senml:voltage', value: 1, sensor: 'a' }],
    });
    expect(out[2]).toMatchObject({
      readings: [{ value: 5, time: '2026-01-01T00:00:00.000Z', quality: ['edge_time'] }],
    });
    expect(out[3]?.error).toContain('hex');
  });

  it('derives the number variable and station from the topic, and skips no-reading markers', async () => {
    const r = await run(
      ['--format', 'number'],
      [line('greenhouse/north/temperature', '21.5'), line('kitchen/temperature', 'nan')],
    );
    expect(r.json()).toEqual([
      {
        topic: 'greenhouse/north/temperature',
        station: 'greenhouse/north',
        readings: [
          {
            variable: 'mqtt:temperature',
            value: 21.5,
            unit: '',
            quality: ['unit_unknown'],
            station: 'greenhouse/north',
          },
        ],
        skipped: [],
      },
      {
        topic: 'kitchen/temperature',
        station: 'kitchen',
        readings: [],
        skipped: [{ field: '(payload)', reason: 'no reading: "nan"' }],
      },
    ]);
  });

  it('places device-local times with --time-zone', async () => {
    const r = await run(
      ['--format', 'tasmota', '--time-zone', 'Europe/Berlin'],
      [line('tele/t/SENSOR', '{"Time":"2019-11-03T19:34:28","BME280":{"Humidity":66.6}}')],
    );
    expect(r.json()[0]).toMatchObject({ readings: [{ time: '2019-11-03T18:34:28.000Z' }] });
  });

  it('routes by the sensors hook when the config is wired', async () => {
    const sensors = (topic: string) =>
      topic.startsWith('lab/')
        ? {
            decoder: numberDecoder({ variable: 'air_temperature', unit: 'degF' }),
            captures: { station: 'lab' },
          }
        : undefined;
    const r = await run(['--config', 'edge.yaml'], [line('lab/t', '212'), line('other/t', '1')], { sensors });
    expect(r.json()).toEqual([
      {
        topic: 'lab/t',
        station: 'lab',
        readings: [{ variable: 'air_temperature', value: 100, unit: 'degC', station: 'lab' }],
        skipped: [],
      },
      { topic: 'other/t', ignored: 'no sensor in the config matches this topic' },
    ]);
  });

  it('prints help, and usage errors with exit status 2', async () => {
    const help = await run(['--help'], []);
    expect(help.code).toBe(0);
    expect(help.text).toContain('-f, --format <family>');
    expect(help.text).toContain('Exit status: 0 every line decoded');
    const none = await run([], []);
    expect(none.code).toBe(2);
    expect(none.text).toContain('--format FAMILY or --config FILE is required');
    const lorawan = await run(['--format', 'lorawan'], []);
    expect(lorawan.code).toBe(2);
    expect(lorawan.text).toMatch(/argument 'lorawan' is invalid\. Allowed choices are number, json/);
    const mars = await run(['--format', 'tasmota', '--time-zone', 'Mars/Olympus'], []);
    expect(mars.code).toBe(2);
    expect(mars.text).toContain('unknown time zone "Mars/Olympus"');
    expect((await run(['--config', 'edge.yaml'], [])).text).toContain('--config is not available');
    const bogus = await run(['--bogus'], []);
    expect(bogus.code).toBe(2);
    expect(bogus.text).toContain("unknown option '--bogus'");
    // Every usage error comes with the usage.
    for (const r of [none, lorawan, mars, bogus]) expect(r.text).toContain('Usage: decode [options]');
  });
});
