import { describe, expect, it } from 'vitest';
import { type AutoRegisterConfig, parseEdgeConfig, type SensorConfig } from '../config.js';
import { type AutoRegisterSkip, AutoRegistry, type AutoSensor } from './auto-register.js';
import { SensorMap } from './sensor-map.js';

const settings = (auto: unknown): AutoRegisterConfig =>
  parseEdgeConfig({ edge: 'gw', auto_register: auto }, {}).auto_register;

const bytes = (s: string) => new TextEncoder().encode(s);
const tasmota = (t: number) =>
  bytes(JSON.stringify({ SI7021: { Temperature: t, Humidity: 50 }, TempUnit: 'C' }));

function registry(auto: unknown) {
  const registered: AutoSensor[] = [];
  const skipped: [AutoRegisterSkip, string][] = [];
  let full = 0;
  const r = new AutoRegistry(
    settings(auto),
    {
      registered: (s) => registered.push(s),
      skipped: (reason, topic) => skipped.push([reason, topic]),
      full: () => full++,
    },
    () => Date.UTC(2026, 0, 1),
  );
  return { r, registered, skipped, full: () => full };
}

describe('auto_register config', () => {
  it('is off by default; true is short for enabled with the defaults', () => {
    expect(parseEdgeConfig({ edge: 'gw' }, {}).auto_register).toEqual({
      enabled: false,
      topics: ['#'],
      max_sensors: 100,
      decoder: 'auto',
    });
    expect(settings(true)).toEqual({ enabled: true, topics: ['#'], max_sensors: 100, decoder: 'auto' });
  });

  it('refuses bad filters, bounds, families and zones with their paths', () => {
    expect(() =>
      settings({
        topics: ['a/#/b', 'x+'],
        max_sensors: 0,
        decoder: 'modbus',
        time_zone: 'Mars/Base',
        extra: 1,
      }),
    ).toThrow(
      /auto_register\.topics\[0\]: expected an MQTT topic filter[\s\S]*auto_register\.topics\[1\][\s\S]*auto_register\.max_sensors[\s\S]*auto_register\.decoder[\s\S]*auto_register\.time_zone[\s\S]*auto_register\.extra: unknown key/,
    );
  });
});

describe('AutoRegistry', () => {
  it('does nothing while off', () => {
    const { r, skipped } = registry(false);
    expect(r.decode('tele/kitchen/SENSOR', tasmota(21), 0)).toEqual({ matched: false });
    expect(r.size).toBe(0);
    expect(skipped).toEqual([]);
    expect(r.filters()).toEqual([]);
  });

  it('registers an unknown Tasmota topic and decodes its later messages as Tasmota', () => {
    const { r, registered } = registry({ enabled: true });
    const first = r.decode('tele/kitchen/SENSOR', tasmota(21), 0);
    expect(first.matched && first.origin).toEqual({ station: 'kitchen' });
    expect(first.matched && first.outcome.kind === 'readings' && first.outcome.readings.length).toBe(2);
    expect(registered).toEqual([
      {
        topic: 'tele/kitchen/SENSOR',
        family: 'tasmota',
        station: 'kitchen',
        since: '2026-01-01T00:00:00.000Z',
        variables: ['air_temperature', 'relative_humidity'],
        messages: 1,
        lastReadingMs: 0,
      },
    ]);
    const second = r.decode('tele/kitchen/SENSOR', tasmota(22), 5000);
    expect(second.matched && second.outcome.kind === 'readings' && second.outcome.readings[0]?.value).toBe(
      22,
    );
    // A registered sensor's bad payload is rejected with its reason, like a configured sensor's.
    const bad = r.decode('tele/kitchen/SENSOR', bytes('{"SI7021": '), 9000);
    expect(bad.matched && bad.outcome.kind).toBe('rejected');
    expect(r.status().sensors[0]?.messages).toBe(3);
    // The newest reading's receipt time; a rejected message gave none.
    expect(r.status().sensors[0]?.lastReadingMs).toBe(5000);
    expect(registered).toHaveLength(1);
  });

  it('leaves topics with nothing numeric unmatched, and remembers nothing about them', () => {
    const { r, skipped } = registry({ enabled: true });
    expect(r.decode('hall/light', bytes('ON'), 0)).toEqual({ matched: false });
    expect(r.decode('tele/kitchen/LWT', bytes('Online'), 0)).toEqual({ matched: false });
    expect(skipped.map(([reason]) => reason)).toEqual(['no_reading', 'no_reading']);
    expect(r.size).toBe(0);
  });

  it('registers only topics under auto_register.topics, never $SYS', () => {
    const { r, skipped } = registry({ enabled: true, topics: ['sensors/#', 'tele/+/SENSOR'] });
    expect(r.decode('other/garage/temperature', bytes('5'), 0)).toEqual({ matched: false });
    expect(r.decode('sensors/garage/temperature', bytes('5'), 0).matched).toBe(true);
    expect(r.decode('tele/kitchen/SENSOR', tasmota(20), 0).matched).toBe(true);
    expect(skipped).toEqual([]);
    const all = registry({ enabled: true }).r;
    expect(all.decode('$SYS/broker/load', bytes('5'), 0)).toEqual({ matched: false });
  });

  it('stops at max_sensors: further topics are counted and skipped, known ones still flow', () => {
    const { r, skipped, full } = registry({ enabled: true, max_sensors: 2 });
    for (const room of ['a', 'b', 'c', 'd']) r.decode(`rooms/${room}/temperature`, bytes('20'), 0);
    expect(r.size).toBe(2);
    expect(r.status().sensors.map((s) => s.topic)).toEqual(['rooms/a/temperature', 'rooms/b/temperature']);
    expect(skipped).toEqual([
      ['limit', 'rooms/c/temperature'],
      ['limit', 'rooms/d/temperature'],
    ]);
    expect(full()).toBe(1);
    expect(r.decode('rooms/a/temperature', bytes('21'), 0).matched).toBe(true);
  });

  it('a fixed decoder family skips the inference', () => {
    const { r } = registry({ enabled: true, decoder: 'json' });
    const m = r.decode('tele/kitchen/SENSOR', tasmota(21), 0);
    expect(m.matched && m.outcome.kind === 'readings' && m.outcome.readings[0]?.variable).toBe(
      'json:SI7021.Temperature',
    );
    expect(r.status().sensors[0]?.family).toBe('json');
  });

  describe('reconfigure (SIGHUP)', () => {
    const fill = (r: AutoRegistry) => {
      r.decode('tele/kitchen/SENSOR', tasmota(21), 0);
      r.decode('rooms/a/temperature', bytes('20'), 0);
      r.decode('rooms/b/temperature', bytes('20'), 0);
      expect(r.size).toBe(3);
    };

    it('keeps sensors the new settings still allow', () => {
      const { r } = registry({ enabled: true });
      fill(r);
      expect(r.reconfigure(settings({ enabled: true, max_sensors: 50 }), () => false)).toEqual({
        kept: 3,
        dropped: 0,
      });
    });

    it('drops them all when auto_register is turned off', () => {
      const { r } = registry({ enabled: true });
      fill(r);
      expect(r.reconfigure(settings(false), () => false)).toEqual({ kept: 0, dropped: 3 });
      expect(r.decode('rooms/a/temperature', bytes('20'), 0)).toEqual({ matched: false });
    });

    it('drops those a configured sensor now matches, out of scope, of another family, or past the bound', () => {
      const { r, full } = registry({ enabled: true, max_sensors: 3 });
      fill(r);
      r.decode('rooms/c/temperature', bytes('20'), 0);
      expect(full()).toBe(1);
      expect(r.reconfigure(settings({ enabled: true }), (t) => t === 'rooms/a/temperature')).toEqual({
        kept: 2,
        dropped: 1,
      });
      expect(
        r.reconfigure(
          settings({ enabled: true, topics: ['rooms/#', 'tele/#'], decoder: 'number' }),
          () => false,
        ),
      ).toEqual({ kept: 1, dropped: 1 });
      expect(r.status().sensors.map((s) => s.topic)).toEqual(['rooms/b/temperature']);
      r.decode('rooms/d/temperature', bytes('20'), 0);
      r.decode('rooms/e/temperature', bytes('20'), 0);
      // The oldest are kept when the bound shrinks.
      expect(r.reconfigure(settings({ enabled: true, max_sensors: 2 }), () => false)).toEqual({
        kept: 2,
        dropped: 1,
      });
      expect(r.status().sensors.map((s) => s.topic)).toEqual(['rooms/b/temperature', 'rooms/d/temperature']);
      r.decode('rooms/f/temperature', bytes('20'), 0);
      expect(full()).toBe(2);
    });
  });
});

describe('SensorMap with an AutoRegistry', () => {
  const configured: SensorConfig[] = parseEdgeConfig(
    {
      edge: 'gw',
      sensors: [{ topic: 'tele/+station/SENSOR', decoder: { type: 'json' }, station: 'fixed' }],
    },
    {},
  ).sensors;

  it('routes configured sensors first: they always win', () => {
    const { r } = registry({ enabled: true });
    const map = new SensorMap(configured, r);
    const m = map.decode('tele/kitchen/SENSOR', tasmota(21), 0);
    expect(m.matched && m.origin?.station).toBe('fixed');
    expect(r.size).toBe(0);
    expect(map.decode('rooms/a/temperature', bytes('20'), 0).matched).toBe(true);
    expect(r.size).toBe(1);
  });

  it('subscribes to the auto_register scope in external broker mode', () => {
    expect(new SensorMap(configured, registry({ enabled: true, topics: ['sensors/#'] }).r).filters()).toEqual(
      ['tele/+/SENSOR', 'sensors/#'],
    );
    expect(new SensorMap(configured, registry(false).r).filters()).toEqual(['tele/+/SENSOR']);
  });
});
