import { describe, expect, it } from 'vitest';
import { parseTopic, tasmotaDecoder } from './tasmota.js';
import type { DecodeOutcome } from './types.js';

const decode = (topic: string, payload: string, opts = {}): DecodeOutcome =>
  tasmotaDecoder(opts)({ topic, payload: new TextEncoder().encode(payload), captures: {}, receivedMs: 0 });
const readings = (o: DecodeOutcome) => (o.kind === 'readings' ? o.readings : []);

describe('tasmota topics', () => {
  it.each([
    ['tele/kitchen/SENSOR', 'SENSOR', 'kitchen'],
    ['emoncms/ch2i/factory/denky_D6C0C0/tele/SENSOR', 'SENSOR', 'denky_D6C0C0'],
    ['tele/sensor/LWT', 'LWT', 'sensor'],
    ['tele/bridge/8F20/SENSOR', 'SENSOR', 'bridge'],
    ['Pracovna/tele/SENSOR', 'SENSOR', 'Pracovna'],
    ['stat/plug/STATUS10', 'STATUS10', 'plug'],
  ])('%s -> %s of %s', (topic, type, station) => {
    expect(parseTopic(topic)).toEqual({ type, station });
  });

  it('rejects topics that are not Tasmota, ignores message types without readings', () => {
    expect(decode('kitchen/temperature', '21').kind).toBe('rejected');
    expect(decode('stat/plug/RESULT', '{"POWER":"ON"}')).toEqual({
      kind: 'ignored',
      reason: 'Tasmota RESULT messages carry no sensor readings',
    });
    expect(decode('tele/plug/INFO1', '{}').kind).toBe('ignored');
  });
});

describe('tasmota SENSOR', () => {
  it('reads nested sensors with the object key as sensor and TempUnit F converted', () => {
    const o = decode(
      'tele/t/SENSOR',
      '{"Time":"2021-06-27T15:03:44+02:00","SHT3X":{"Temperature":74.8,"Humidity":18.9,"DewPoint":30.2},"TempUnit":"F"}',
    );
    const t = Date.parse('2021-06-27T13:03:44Z');
    expect(o).toEqual({
      kind: 'readings',
      station: 't',
      readings: [
        { variable: 'air_temperature', value: 23.78, unit: 'degC', sensor: 'SHT3X', timeMs: t },
        { variable: 'relative_humidity', value: 18.9, unit: '%', sensor: 'SHT3X', timeMs: t },
        { variable: 'dew_point_temperature', value: -1, unit: 'degC', sensor: 'SHT3X', timeMs: t },
      ],
      skipped: [],
    });
  });

  it('uses the DS18B20 Id as sensor, whatever the -n / _n numbering', () => {
    const o = decode(
      'tele/t/SENSOR',
      '{"DS18B20_1":{"Id":"00000566CC39","Temperature":13.3},"DS18B20-2":{"Id":"0000059352D4","Temperature":1.2},"TempUnit":"C"}',
    );
    expect(readings(o).map((r) => [r.sensor, r.value])).toEqual([
      ['00000566CC39', 13.3],
      ['0000059352D4', 1.2],
    ]);
  });

  it('keeps dotted keys whole (SDS0X1 PM2.5) and switch states as text', () => {
    const o = decode(
      'tele/sonoff/SENSOR',
      '{"Switch1":"ON","SDS0X1":{"PM2.5":2.1,"PM10":4.7},"PMS5003":{"PM1":3}}',
    );
    expect(readings(o).map((r) => [r.variable, r.value ?? r.text])).toEqual([
      ['tasmota:Switch1', 'ON'],
      ['mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air', 2.1],
      ['mass_concentration_of_pm10_ambient_aerosol_particles_in_air', 4.7],
      ['mass_concentration_of_pm1_ambient_aerosol_particles_in_air', 3],
    ]);
  });

  it('converts ENERGY kWh to Wh and splits multi-channel arrays', () => {
    const o = decode(
      'tele/pow/SENSOR',
      '{"ENERGY":{"TotalStartTime":"2018-11-14T18:39:40","Total":6.294,"Period": 9,"Power":[11,0],"Factor":0.99}}',
    );
    expect(readings(o).map((r) => [r.variable, r.value, r.unit, r.sensor])).toEqual([
      ['tasmota:energy_total', 6294, 'Wh', 'ENERGY'],
      ['tasmota:energy_period', 9, 'Wh', 'ENERGY'],
      ['tasmota:power', 11, 'W', 'ENERGY-1'],
      ['tasmota:power', 0, 'W', 'ENERGY-2'],
      ['tasmota:power_factor', 0.99, '1', 'ENERGY'],
    ]);
  });

  it('converts PressureUnit mmHg, and flags units it has to assume', () => {
    const mm = decode(
      'tele/t/SENSOR',
      '{"BMP280":{"Pressure":760,"Temperature":20},"PressureUnit":"mmHg","TempUnit":"C"}',
    );
    expect(readings(mm)[0]).toEqual({
      variable: 'air_pressure',
      value: 1013.25,
      unit: 'hPa',
      sensor: 'BMP280',
    });
    const old = decode('stat/t/STATUS10', '{"StatusSNS":{"BMP280":{"Temperature":80.9,"Pressure":984.4}}}');
    expect(readings(old).every((r) => r.quality?.includes('unit_assumed'))).toBe(true);
    const configured = decode('stat/t/STATUS10', '{"StatusSNS":{"BMP280":{"Temperature":80.9}}}', {
      temperatureUnit: 'F',
    });
    expect(readings(configured)[0]).toMatchObject({ value: 27.17, unit: 'degC' });
    expect(readings(configured)[0]?.quality).toBeUndefined();
  });

  it('reads ZbReceived devices in Zigbee units (volts, degC) with the device as sensor', () => {
    const o = decode(
      'tele/zb/SENSOR',
      '{"ZbReceived":{"Kitchen":{"Device":"0x8F20","Voltage":2.995,"Temperature":21.01,"LinkQuality":88}}}',
    );
    expect(readings(o)).toEqual([
      { variable: 'tasmota:Voltage', value: 2.995, unit: 'V', sensor: 'Kitchen' },
      { variable: 'air_temperature', value: 21.01, unit: 'degC', sensor: 'Kitchen' },
      { variable: 'tasmota:LinkQuality', value: 88, unit: '1', sensor: 'Kitchen' },
    ]);
  });

  it('files the chip temperature apart from the room temperature', () => {
    expect(
      readings(decode('tele/t/SENSOR', '{"ESP32":{"Temperature":36.1},"TempUnit":"C"}'))[0]?.variable,
    ).toBe('tasmota:device_temperature');
  });

  it('applies the time policy: Epoch wins, local Time is not guessed unless a zone is configured', () => {
    const both = decode(
      'tele/t/SENSOR',
      '{"Time":"2019-09-04T13:08:48","Epoch":1567595328,"ANALOG":{"A0":8}}',
    );
    expect(readings(both)[0]?.timeMs).toBe(Date.parse('2019-09-04T11:08:48Z'));
    const local = decode(
      'tele/t/SENSOR',
      '{"Time":"2019-11-03T19:34:28","DS18B20":{"Temperature":20.6},"TempUnit":"C"}',
    );
    expect(readings(local)[0]).toMatchObject({ quality: ['time_offset_unknown'] });
    expect(readings(local)[0]?.timeMs).toBeUndefined();
    const zoned = decode(
      'tele/t/SENSOR',
      '{"Time":"2019-11-03T19:34:28","DS18B20":{"Temperature":20.6},"TempUnit":"C"}',
      {
        timeZone: 'Europe/Berlin',
      },
    );
    expect(readings(zoned)[0]?.timeMs).toBe(Date.parse('2019-11-03T18:34:28Z'));
    const dotted = decode('tele/t/SENSOR', '{"Time":"2018.02.01 22:52:09","AM2301":{"Humidity":50.6}}', {
      timeZone: 'UTC',
    });
    expect(readings(dotted)[0]?.timeMs).toBe(Date.parse('2018-02-01T22:52:09Z'));
  });

  it('skips null readings and rejects broken payloads with the parser reason', () => {
    expect(decode('tele/t/SENSOR', '{"SHT3X":{"Temperature":null},"TempUnit":"C"}')).toMatchObject({
      readings: [],
      skipped: [{ field: 'SHT3X.Temperature', reason: 'no reading: null' }],
    });
    expect(decode('tele/t/SENSOR', '"StatusSNS": {},').kind).toBe('rejected');
    expect(decode('tele/t/SENSOR', '[1,2]')).toEqual({
      kind: 'rejected',
      reason: 'Tasmota SENSOR payload must be a JSON object',
    });
    expect(decode('stat/t/STATUS10', '{"Status":{}}').kind).toBe('rejected');
  });
});

describe('tasmota STATE and LWT', () => {
  it('reads device health: Wi-Fi RSSI is a quality in %, Signal is dBm', () => {
    const o = decode(
      'tele/demo/STATE',
      '{"Time":"2021-06-27T15:03:44+02:00","UptimeSec":13,"Vcc":3.423,"POWER1":"ON","Wifi":{"RSSI":86,"Signal":-57}}',
    );
    expect(readings(o).map((r) => [r.variable, r.value ?? r.text, r.unit])).toEqual([
      ['tasmota:uptime', 13, 's'],
      ['tasmota:vcc', 3.423, 'V'],
      ['tasmota:wifi_quality', 86, '%'],
      ['tasmota:wifi_signal', -57, 'dBm'],
      ['tasmota:POWER1', 'ON', ''],
    ]);
  });

  it('turns LWT into status', () => {
    expect(decode('tele/t/LWT', 'Online')).toEqual({ kind: 'status', state: 'online', station: 't' });
    expect(decode('tele/t/LWT', 'Offline')).toEqual({ kind: 'status', state: 'offline', station: 't' });
    expect(decode('tele/t/LWT', '')).toMatchObject({
      kind: 'readings',
      readings: [],
      skipped: [{ field: 'LWT' }],
    });
  });
});
