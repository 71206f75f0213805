import { describe, expect, it } from 'vitest';
import { shellyDecoder } from './shelly.js';
import type { DecodeOutcome } from './types.js';

const decode = (topic: string, payload: string, opts = {}): DecodeOutcome =>
  shellyDecoder(opts)({ topic, payload: new TextEncoder().encode(payload), captures: {}, receivedMs: 0 });
const readings = (o: DecodeOutcome) => (o.kind === 'readings' ? o.readings : []);
const brief = (o: DecodeOutcome) => readings(o).map((r) => [r.variable, r.value ?? r.text, r.unit, r.sensor]);

describe('shelly Gen1', () => {
  it('converts watt-minute energy counters to Wh and keeps Wh totals', () => {
    expect(brief(decode('shellies/plug/relay/0/energy', '4107'))).toEqual([
      ['shelly:energy', 68.45, 'Wh', 'relay:0'],
    ]);
    expect(brief(decode('shellies/em3/emeter/2/energy', '60'))).toEqual([
      ['shelly:energy', 1, 'Wh', 'emeter:2'],
    ]);
    expect(brief(decode('shellies/em3/emeter/2/total', '4107.8'))).toEqual([
      ['shelly:energy_total', 4107.8, 'Wh', 'emeter:2'],
    ]);
    expect(brief(decode('shellies/em3/emeter/2/total_returned', '186.9'))).toEqual([
      ['shelly:returned_energy_total', 186.9, 'Wh', 'emeter:2'],
    ]);
  });

  it('keeps negative (exported) power and the id as station even when renamed', () => {
    expect(decode('shellies/NAPPALITV/emeter/2/power', '-2.23')).toMatchObject({
      station: 'NAPPALITV',
      readings: [{ variable: 'shelly:power', value: -2.23, unit: 'W', sensor: 'emeter:2' }],
    });
  });

  it('reads the H&T sensor topics; the temperature unit is a device setting', () => {
    expect(readings(decode('shellies/ht/sensor/temperature', '24.75'))).toEqual([
      { variable: 'air_temperature', value: 24.75, unit: 'degC', quality: ['unit_assumed'] },
    ]);
    expect(readings(decode('shellies/ht/sensor/temperature', '76.55', { temperatureUnit: 'F' }))).toEqual([
      { variable: 'air_temperature', value: 24.75, unit: 'degC' },
    ]);
    expect(brief(decode('shellies/ht/sensor/humidity', '43.5'))).toEqual([
      ['relative_humidity', 43.5, '%', undefined],
    ]);
    expect(decode('shellies/ht/sensor/battery', '-1')).toMatchObject({
      readings: [],
      skipped: [{ field: 'sensor/battery' }],
    });
    expect(brief(decode('shellies/ht/sensor/ext_power', 'false'))).toEqual([
      ['shelly:ext_power', 'false', '', undefined],
    ]);
  });

  it('separates the device temperature and add-on probes from the room, and drops °F twins', () => {
    expect(brief(decode('shellies/sw25/temperature', '58.32'))).toEqual([
      ['shelly:device_temperature', 58.32, 'degC', undefined],
    ]);
    expect(brief(decode('shellies/s1/ext_temperature/1', '35.75'))).toEqual([
      ['shelly:external_temperature', 35.75, 'degC', 'ext_temperature:1'],
    ]);
    expect(decode('shellies/s1/ext_temperature_f/1', '96.35').kind).toBe('ignored');
    expect(decode('shellies/sw25/temperature_f', '136.98').kind).toBe('ignored');
  });

  it('reads relay states as text, inputs as 0/1, input events and light status JSON', () => {
    expect(brief(decode('shellies/s1/relay/0', 'off'))).toEqual([['shelly:output', 'off', '', 'relay:0']]);
    expect(brief(decode('shellies/s1/input/0', '0'))).toEqual([['shelly:input', 0, '1', 'input:0']]);
    expect(brief(decode('shellies/s1/input_event/0', '{\n"event":"S",\n"event_cnt":73\n}'))).toEqual([
      ['shelly:input_event', 'S', '', 'input:0'],
      ['shelly:input_event_count', 73, '1', 'input:0'],
    ]);
    expect(
      brief(decode('shellies/dim/light/0/status', '{"ison":false,"mode":"white","brightness":100}')),
    ).toEqual([
      ['shelly:output', 'false', '', 'light:0'],
      ['shelly:brightness', 100, '%', 'light:0'],
    ]);
  });

  it('handles online, JSON arrays on plain topics, and unknown topics', () => {
    expect(decode('shellies/s1/online', 'true')).toEqual({ kind: 'status', state: 'online', station: 's1' });
    expect(decode('shellies/s1/online', 'false')).toEqual({
      kind: 'status',
      state: 'offline',
      station: 's1',
    });
    expect(decode('shellies/ht/sensor/act_reasons', '["sensor"]').kind).toBe('ignored');
    expect(decode('shellies/s1/info', '{"wifi_sta":{}}').kind).toBe('ignored');
    expect(decode('shellies/s1/relay/0/command', 'on').kind).toBe('ignored');
    expect(readings(decode('shellies/s1/mystery', '5'))[0]).toMatchObject({
      variable: 'shelly:mystery',
      quality: ['unit_unknown'],
    });
    expect(decode('shellies/announce', '{"id":"shelly1-1"}').kind).toBe('ignored');
    expect(decode('garage/door', '1').kind).toBe('rejected');
  });
});

describe('shelly Gen2/Gen3', () => {
  const fullStatus = JSON.stringify({
    src: 'shellyplusplugs-80646fd031f8',
    method: 'NotifyFullStatus',
    params: {
      ts: 1698999954.77,
      'switch:0': {
        id: 0,
        output: true,
        apower: 0.0,
        voltage: 229.1,
        aenergy: { total: 30473.355, by_minute: [1000, 0, 0], minute_ts: 1698999953 },
        temperature: { tC: 34.8, tF: 94.7 },
      },
      'temperature:100': { id: 100, tC: 55.5, tF: 131.9 },
      'input:0': { id: 0, state: true },
      wifi: { rssi: -73 },
      sys: { uptime: 21 },
      'script:1': { running: true, mem_used: 2786 },
    },
  });

  it('reads NotifyFullStatus: src is the station, ts the time, components the sensors', () => {
    const o = decode('custom/prefix/events/rpc', fullStatus);
    const ts = 1698999954770;
    expect(o).toMatchObject({ kind: 'readings', station: 'shellyplusplugs-80646fd031f8' });
    expect(readings(o).map((r) => [r.variable, r.value ?? r.text, r.unit, r.sensor, r.timeMs])).toEqual([
      ['shelly:power', 0, 'W', 'switch:0', ts],
      ['shelly:voltage', 229.1, 'V', 'switch:0', ts],
      ['shelly:energy_total', 30473.355, 'Wh', 'switch:0', ts],
      ['shelly:device_temperature', 34.8, 'degC', 'switch:0', ts],
      ['shelly:output', 'true', '', 'switch:0', ts],
      ['shelly:energy_last_minute', 1, 'Wh', 'switch:0', 1698999953000],
      ['shelly:external_temperature', 55.5, 'degC', 'temperature:100', ts],
      ['shelly:input', 1, '1', 'input:0', ts],
      ['shelly:wifi_rssi', -73, 'dBm', 'wifi', ts],
    ]);
  });

  it('treats battery readings on external power as no reading', () => {
    const o = decode(
      'x/events/rpc',
      '{"src":"ht","method":"NotifyStatus","params":{"ts":1669541352.21,"devicepower:0":{"id": 0,"battery":{"V":0.43, "percent":0},"external":{"present":true}}}}',
    );
    expect(o).toMatchObject({
      readings: [],
      skipped: [{ field: 'devicepower:0.battery.V' }, { field: 'devicepower:0.battery.percent' }],
    });
    const onBattery = decode(
      'ht/status/devicepower:0',
      '{"id": 0,"battery":{"V":5.46, "percent":73},"external":{"present":false}}',
    );
    expect(brief(onBattery)).toEqual([
      ['shelly:battery_voltage', 5.46, 'V', 'devicepower:0'],
      ['shelly:battery', 73, '%', 'devicepower:0'],
    ]);
  });

  it('reads status/<component> topics with the prefix as station', () => {
    expect(decode('shellyht-livingroom/status/temperature:0', '{"id": 0,"tC":20.1, "tF":68.3}')).toEqual({
      kind: 'readings',
      station: 'shellyht-livingroom',
      readings: [{ variable: 'air_temperature', value: 20.1, unit: 'degC', sensor: 'temperature:0' }],
      skipped: [],
    });
    expect(decode('shellies/shellyplusht-x/status/humidity:0', '{"rh":57}')).toMatchObject({
      station: 'shellyplusht-x',
    });
  });

  it('reads Pro 3EM phases as sensors', () => {
    const o = decode(
      'pro3em/status/em:0',
      '{"id":0,"a_current":1.2,"a_act_power":250.5,"b_voltage":231,"total_act_power":300}',
    );
    expect(brief(o)).toEqual([
      ['shelly:current', 1.2, 'A', 'em:0.a'],
      ['shelly:power', 250.5, 'W', 'em:0.a'],
      ['shelly:voltage', 231, 'V', 'em:0.b'],
      ['shelly:power', 300, 'W', 'em:0'],
    ]);
  });

  it('ignores events, and rejects frames that are not notifications', () => {
    expect(decode('x/events/rpc', '{"src":"a","method":"NotifyEvent","params":{"events":[]}}').kind).toBe(
      'ignored',
    );
    expect(
      decode(
        'x/events/rpc',
        '{"src":"a","method":"NotifyStatus","params":{"ts":1701105095.28,"mqtt":{"connected":true}}}',
      ),
    ).toMatchObject({
      kind: 'readings',
      readings: [],
      station: 'a',
    });
    expect(decode('x/events/rpc', '{"src":"a"}').kind).toBe('rejected');
    expect(decode('x/events/rpc', 'not json').kind).toBe('rejected');
  });
});
