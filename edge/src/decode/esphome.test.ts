import { describe, expect, it } from 'vitest';
import { esphomeDecoder } from './esphome.js';
import type { DecodeOutcome, Decoder } from './types.js';

const send = (decoder: Decoder, topic: string, payload: string | Uint8Array): DecodeOutcome =>
  decoder({
    topic,
    payload: typeof payload === 'string' ? new TextEncoder().encode(payload) : payload,
    captures: {},
    receivedMs: 0,
  });

describe('esphome', () => {
  it('reads a plain number with its unit unknown, and the node as station', () => {
    expect(send(esphomeDecoder(), 'esp-weather/sensor/temperature/state', '20')).toEqual({
      kind: 'readings',
      station: 'esp-weather',
      readings: [{ variable: 'esphome:temperature', value: 20, unit: '', quality: ['unit_unknown'] }],
      skipped: [],
    });
  });

  it.each(['nan', 'None', 'unknown', 'unavailable', ''])('skips %j, never stores 0', (marker) => {
    expect(send(esphomeDecoder(), 'n/sensor/gas/state', marker)).toEqual({
      kind: 'readings',
      station: 'n',
      readings: [],
      skipped: [{ field: 'gas', reason: `no reading: ${JSON.stringify(marker)}` }],
    });
  });

  it('keeps text sensors and switch states as text, never coerced', () => {
    expect(send(esphomeDecoder(), 'a/sensor/mode/state', 'Normal')).toMatchObject({
      readings: [{ text: 'Normal', value: null }],
    });
    expect(send(esphomeDecoder(), 'a/switch/restart/state', 'OFF')).toMatchObject({
      readings: [{ text: 'OFF' }],
    });
  });

  it('learns the unit and device class from a discovery config, even one in Latin-1', () => {
    const d = esphomeDecoder();
    const config =
      '{"unit_of_measurement":"Ω","device_class":"temperature","state_topic":"bed/sensor/gas/state"}';
    expect(send(d, 'homeassistant/sensor/bed/gas/config', config).kind).toBe('ignored');
    expect(send(d, 'bed/sensor/gas/state', '1500')).toMatchObject({
      readings: [{ variable: 'air_temperature', value: 1500, unit: 'ohm' }],
    });
    const latin1 = Uint8Array.from(
      Buffer.from('{"~":"kit","stat_t":"~/sensor/t/state","unit_of_meas":"\xb0C"}', 'latin1'),
    );
    expect(send(d, 'homeassistant/sensor/kit/t/config', latin1).kind).toBe('ignored');
    expect(send(d, 'kit/sensor/t/state', '21.5')).toMatchObject({
      readings: [{ value: 21.5, unit: 'degC' }],
    });
    // An empty config deletes the entity: the unit is forgotten.
    send(d, 'homeassistant/sensor/kit/t/config', '');
    expect(send(d, 'kit/sensor/t/state', '21.5')).toMatchObject({ readings: [{ unit: '' }] });
  });

  it('lets configured sensors win, and knows climate temperatures are degC', () => {
    const d = esphomeDecoder({
      sensors: { power_demand: { unit: 'kW', variable: 'esphome:inverter_power' } },
    });
    expect(send(d, 'attic/sensor/power_demand/state', '0.19')).toMatchObject({
      readings: [{ variable: 'esphome:inverter_power', value: 190, unit: 'W' }],
    });
    expect(send(d, 'hall/climate/hvac/current_temperature/state', '21.5')).toMatchObject({
      station: 'hall',
      readings: [{ variable: 'esphome:hvac.current_temperature', value: 21.5, unit: 'degC' }],
    });
  });

  it('turns status into availability and ignores JSON states, commands and foreign topics', () => {
    expect(send(esphomeDecoder(), 'livingroom/status', 'online')).toEqual({
      kind: 'status',
      state: 'online',
      station: 'livingroom',
    });
    expect(send(esphomeDecoder(), 'livingroom/status', 'offline')).toEqual({
      kind: 'status',
      state: 'offline',
      station: 'livingroom',
    });
    expect(send(esphomeDecoder(), 'a/light/lamp/state', '{"state":"ON","brightness":255}').kind).toBe(
      'ignored',
    );
    expect(send(esphomeDecoder(), 'a/switch/relay/command', 'ON').kind).toBe('ignored');
    expect(send(esphomeDecoder(), 'kitchen/temperature', '21').kind).toBe('rejected');
    expect(send(esphomeDecoder(), 'a/sensor/x/state', Uint8Array.of(0xff)).kind).toBe('rejected');
  });
});
