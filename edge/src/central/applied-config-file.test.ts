import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AppliedCentralConfig,
  appliedConfigPath,
  readAppliedConfig,
  writeAppliedConfig,
} from './applied-config-file.js';

const dirs: string[] = [];
const folder = () => {
  const d = mkdtempSync(join(tmpdir(), 'fb-central-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const state: AppliedCentralConfig = {
  v: 1,
  edge: 'gw-1',
  appliedAt: '2026-12-05T00:00:00.000Z',
  all: null,
  own: { revision: 7, value: { sensors: [{ topic: 'z/+station', decoder: { type: 'zigbee2mqtt' } }] } },
};

describe('applied central config file', () => {
  it('round-trips, mode 0600, leaving no temporary file', () => {
    const path = appliedConfigPath(folder(), 'gw-1');
    writeAppliedConfig(path, state);
    expect(readAppliedConfig(path, 'gw-1', (m) => expect.fail(m))).toEqual(state);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(path, '..'))).toEqual(['gw-1.central-sensors.json']);
  });

  it('is absent without a problem; a torn, foreign or invalid file is reported and ignored', () => {
    const dir = folder();
    const path = appliedConfigPath(dir, 'gw-1');
    const problems: string[] = [];
    expect(readAppliedConfig(path, 'gw-1', (m) => problems.push(m))).toBeUndefined();
    expect(problems).toEqual([]);
    writeFileSync(path, '{"v":1,"edge":"gw-1","appl');
    expect(readAppliedConfig(path, 'gw-1', (m) => problems.push(m))).toBeUndefined();
    writeAppliedConfig(path, { ...state, edge: 'gw-2' });
    expect(readAppliedConfig(path, 'gw-1', (m) => problems.push(m))).toBeUndefined();
    writeFileSync(
      path,
      JSON.stringify({ ...state, own: { revision: 1, value: { sensors: [{ topic: 'x' }] } } }),
    );
    expect(readAppliedConfig(path, 'gw-1', (m) => problems.push(m))).toBeUndefined();
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/not JSON/);
    expect(problems[1]).toMatch(/belongs to edge gw-2/);
  });
});
