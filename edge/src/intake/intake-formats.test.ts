import { describe, expect, it } from 'vitest';
import { type IntakeRequest, parseIntake } from './intake-formats.js';

const req = (topic: string, body: string, headers: Record<string, string> = {}): IntakeRequest => ({
  topic,
  body: Buffer.from(body),
  header: (name) => headers[name],
});
const text = (p: Uint8Array) => Buffer.from(p).toString('utf8');

describe('parseIntake', () => {
  it('hands a plain body to the topic as it came', () => {
    const m = parseIntake(req('sensors/barn/temperature', '21.5'));
    expect(m).toMatchObject({ ok: true, format: 'plain', topic: 'sensors/barn/temperature' });
    expect(m.ok && text(m.payload)).toBe('21.5');
    const json = parseIntake(req('t', '{"temperature": 3}'));
    expect(json).toMatchObject({ ok: true, format: 'plain', topic: 't' });
  });

  it('flattens a Sensor.Community push into value_type -> value on <topic>/<X-Sensor>[/<X-Pin>]', () => {
    const body = JSON.stringify({
      esp8266id: '15505091',
      software_version: 'NRZ-2020-133',
      sensordatavalues: [
        { value_type: 'SDS_P1', value: '12.30' },
        { value_type: 'SDS_P2', value: '4.10' },
        { value_type: 'signal', value: -71 },
        { value_type: 'GPS_date', value: '12/05/2026' },
      ],
    });
    const m = parseIntake(req('sc', body, { 'x-sensor': 'esp8266-15505091', 'x-pin': '1' }));
    expect(m).toMatchObject({ ok: true, format: 'sensor_community', topic: 'sc/esp8266-15505091/1' });
    expect(m.ok && JSON.parse(text(m.payload))).toEqual({
      SDS_P1: 12.3,
      SDS_P2: 4.1,
      signal: -71,
      GPS_date: '12/05/2026',
    });
    expect(parseIntake(req('sc', body, { 'x-sensor': 'esp32-1' }))).toMatchObject({ topic: 'sc/esp32-1' });
  });

  it.each([
    ['not JSON', 'nope', { 'x-sensor': 'esp8266-1' }, /not JSON/],
    ['no sensordatavalues', '{"a":1}', { 'x-sensor': 'esp8266-1' }, /no sensordatavalues/],
    [
      'an entry without value_type',
      '{"sensordatavalues":[{"value":"1"}]}',
      { 'x-sensor': 'e' },
      /value_type/,
    ],
    [
      'an object value',
      '{"sensordatavalues":[{"value_type":"a","value":{}}]}',
      { 'x-sensor': 'e' },
      /string or a number/,
    ],
    ['a wildcard in X-Sensor', '{"sensordatavalues":[]}', { 'x-sensor': 'a/#' }, /X-Sensor/],
    ['a bad X-Pin', '{"sensordatavalues":[]}', { 'x-sensor': 'e', 'x-pin': 'x' }, /X-Pin/],
  ])('refuses a Sensor.Community push with %s', (_what, body, headers, reason) => {
    const m = parseIntake(req('sc', body, headers));
    expect(m.ok).toBe(false);
    expect(!m.ok && m.reason).toMatch(reason);
  });

  const uplink = {
    end_device_ids: {
      device_id: 'field-node-7',
      application_ids: { application_id: 'farm' },
      dev_eui: '70B3D57ED0000001',
    },
    received_at: '2026-12-05T10:00:01.5Z',
    uplink_message: {
      f_port: 1,
      decoded_payload: { temperature: 4.5, humidity: 80 },
      received_at: '2026-12-05T10:00:01.123Z',
    },
  };

  it('takes a TTN uplink decoded payload on <topic>/<device_id>, timed by the network receipt', () => {
    const m = parseIntake(req('ttn', JSON.stringify(uplink)));
    expect(m).toMatchObject({
      ok: true,
      format: 'ttn',
      topic: 'ttn/field-node-7',
      carrierTimeMs: Date.parse('2026-12-05T10:00:01.123Z'),
    });
    expect(m.ok && JSON.parse(text(m.payload))).toEqual({ temperature: 4.5, humidity: 80 });
  });

  it('stores nothing for other TTN messages and names a missing payload formatter', () => {
    const join = { end_device_ids: { device_id: 'n1' }, join_accept: { session_key_id: 'x' } };
    expect(parseIntake(req('ttn', JSON.stringify(join)))).toMatchObject({ ok: true, empty: true });
    const raw = { ...uplink, uplink_message: { frm_payload: 'AQI=' } };
    const m = parseIntake(req('ttn', JSON.stringify(raw)));
    expect(!m.ok && m.reason).toMatch(/payload formatter/);
    const bad = { ...uplink, end_device_ids: { device_id: 'a/b' } };
    expect(parseIntake(req('ttn', JSON.stringify(bad))).ok).toBe(false);
  });
});
