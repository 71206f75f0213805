import { describe, expect, it } from 'vitest';
import type { DecodeOutcome } from './types.js';
import { zigbee2mqttDecoder } from './zigbee2mqtt.js';

const decode = (topic: string, payload: string, opts = {}): DecodeOutcome =>
  zigbee2mqttDecoder(opts)({
    topic,
    payload: new TextEncoder().encode(payload),
    captures: {},
    receivedMs: 0,
  });

const readings = (o: DecodeOutcome) => (o.kind === 'readings' ? o.readings : []);
const byVariable = (o: DecodeOutcome, variable: string) => readings(o).find((r) => r.variable === variable);

describe('zigbee2mqtt state', () => {
  it('maps keys to CF names and the device name (spaces, slashes) to the station', () => {
    const o = decode(
      'zigbee2mqtt/Garden/Air Quality Sensor',
      '{"temperature":21,"humidity":50,"pressure":1001.8,"pm25":6}',
    );
    expect(o).toMatchObject({ kind: 'readings', station: 'Garden/Air Quality Sensor' });
    expect(readings(o)).toEqual([
      { variable: 'air_temperature', value: 21, unit: 'degC' },
      { variable: 'relative_humidity', value: 50, unit: '%' },
      { variable: 'air_pressure', value: 1001.8, unit: 'hPa' },
      { variable: 'mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air', value: 6, unit: 'ug m-3' },
    ]);
  });

  it('reads voltage as mV on battery devices and V on plugs', () => {
    expect(
      byVariable(decode('zigbee2mqtt/s', '{"battery":93,"voltage":2990}'), 'zigbee2mqtt:battery_voltage'),
    ).toMatchObject({
      value: 2.99,
      unit: 'V',
    });
    expect(
      byVariable(decode('zigbee2mqtt/p', '{"power":14,"voltage":224}'), 'zigbee2mqtt:voltage'),
    ).toMatchObject({
      value: 224,
      unit: 'V',
    });
    // Alone (partial update, attribute topic): by magnitude.
    expect(
      byVariable(decode('zigbee2mqtt/s', '{"voltage":3045}'), 'zigbee2mqtt:battery_voltage')?.value,
    ).toBe(3.045);
    expect(byVariable(decode('zigbee2mqtt/p/voltage', '243'), 'zigbee2mqtt:voltage')?.value).toBe(243);
  });

  it('files the temperature of a metered wall switch as device temperature', () => {
    const o = decode('zigbee2mqtt/sw', '{"power":0,"consumption":0.32,"temperature":16}');
    expect(byVariable(o, 'zigbee2mqtt:device_temperature')?.value).toBe(16);
    expect(byVariable(o, 'air_temperature')).toBeUndefined();
    expect(byVariable(o, 'zigbee2mqtt:energy')).toMatchObject({ value: 320, unit: 'Wh' });
  });

  it('takes last_seen as the time, in epoch ms or ISO with offset', () => {
    expect(readings(decode('zigbee2mqtt/a', '{"co2":363,"last_seen":1765292604979}'))[0]?.timeMs).toBe(
      1765292604979,
    );
    expect(
      readings(decode('zigbee2mqtt/a', '{"co2":1,"last_seen":"2022-03-06T11:52:35+01:00"}'))[0]?.timeMs,
    ).toBe(Date.parse('2022-03-06T10:52:35Z'));
    expect(readings(decode('zigbee2mqtt/a', '{"co2":1}'))[0]?.timeMs).toBeUndefined();
  });

  it('keeps states as text, skips nulls, leaves out nested metadata', () => {
    const o = decode(
      'zigbee2mqtt/z1',
      '{"state":"OFF","identify":null,"water_leak":false,"update":{"state":"idle"},"device":{"ieeeAddr":"0x1"},"elapsed":156,"battery":"100.00"}',
    );
    expect(o).toEqual({
      kind: 'readings',
      station: 'z1',
      readings: [
        { variable: 'zigbee2mqtt:state', value: null, text: 'OFF', unit: '' },
        { variable: 'zigbee2mqtt:water_leak', value: null, text: 'false', unit: '' },
        { variable: 'zigbee2mqtt:battery', value: 100, unit: '%' },
      ],
      skipped: [{ field: 'identify', reason: 'no reading: null' }],
    });
  });

  it('skips battery -1 and lets a configured unit override the default', () => {
    expect(decode('zigbee2mqtt/a', '{"battery":-1}')).toMatchObject({
      readings: [],
      skipped: [{ field: 'battery' }],
    });
    expect(
      byVariable(decode('zigbee2mqtt/a', '{"voc":250}', { units: { voc: 'ug/m3' } }), 'zigbee2mqtt:voc')
        ?.unit,
    ).toBe('ug m-3');
  });

  it('flags a key whose unit nobody knows', () => {
    expect(byVariable(decode('zigbee2mqtt/a', '{"countdown":5}'), 'zigbee2mqtt:countdown')).toEqual({
      variable: 'zigbee2mqtt:countdown',
      value: 5,
      unit: '',
      quality: ['unit_unknown'],
    });
  });
});

describe('zigbee2mqtt topics', () => {
  it('reads attribute output as <name>/<key>, empty payloads as no reading', () => {
    expect(decode('zigbee2mqtt/z1/power', '0')).toMatchObject({
      station: 'z1',
      readings: [{ variable: 'zigbee2mqtt:power', value: 0 }],
    });
    expect(decode('zigbee2mqtt/z1/identify', '')).toMatchObject({
      station: 'z1',
      readings: [],
      skipped: [{ field: 'identify' }],
    });
    expect(decode('zigbee2mqtt/z1/update-state', 'idle').kind).toBe('ignored');
    expect(decode('zigbee2mqtt/z1/last_seen', '2024-01-01T00:00:00Z').kind).toBe('ignored');
  });

  it('turns availability and bridge state, JSON or plain, into status', () => {
    expect(decode('zigbee2mqtt/bulb/availability', '{"state":"online"}')).toEqual({
      kind: 'status',
      state: 'online',
      station: 'bulb',
    });
    expect(decode('zigbee2mqtt/0x00124b/availability', 'offline')).toEqual({
      kind: 'status',
      state: 'offline',
      station: '0x00124b',
    });
    expect(decode('zigbee2mqtt/bridge/state', 'online')).toEqual({
      kind: 'status',
      state: 'online',
      station: 'bridge',
    });
    expect(decode('zigbee2mqtt/bridge/state', '{"state":"offline"}')).toMatchObject({
      kind: 'status',
      state: 'offline',
    });
  });

  it('ignores bridge messages and commands; honours a configured base topic', () => {
    expect(decode('zigbee2mqtt/bridge/devices', '[]').kind).toBe('ignored');
    expect(decode('zigbee2mqtt/lamp/set', '{"state":"ON"}').kind).toBe('ignored');
    expect(decode('home/zigbee/lamp', '{"linkquality":9}', { baseTopic: 'home/zigbee' })).toMatchObject({
      station: 'lamp',
    });
    expect(decode('other/lamp', '{"linkquality":9}', { baseTopic: 'home/zigbee' }).kind).toBe('rejected');
  });

  it('rejects malformed JSON and a plain value without an attribute level', () => {
    expect(decode('zigbee2mqtt/a', '{"temperature":').kind).toBe('rejected');
    expect(decode('zigbee2mqtt/a', '21').kind).toBe('rejected');
    expect(decode('zigbee2mqtt', '21').kind).toBe('rejected');
  });
});
