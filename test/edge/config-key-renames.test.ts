import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type EdgeAgentProcess,
  edgeCli,
  freePort,
  startEdgeAgentProcess,
  type TempDir,
  tempDir,
  waitFor,
} from '../harness/index.js';

const run = promisify(execFile);

/** A config written before decoder options were snake_case. */
const OLD_DECODER = { type: 'tasmota', tempUnit: 'F', timeZone: 'Europe/Berlin' };
const WARNINGS = [
  'sensors[0].decoder.tempUnit is deprecated; write temperature_unit',
  'sensors[0].decoder.timeZone is deprecated; write time_zone',
];

let dir: TempDir | undefined;
let agent: EdgeAgentProcess | undefined;
afterEach(async () => {
  await agent?.stop();
  dir?.remove();
  agent = undefined;
  dir = undefined;
});

describe('config keys in an old spelling', () => {
  it('fieldbeam-edge check prints the config with the new keys and names each old one on stderr', async () => {
    dir = tempDir('fb-renames-');
    const file = join(dir.path, 'edge.yaml');
    writeFileSync(
      file,
      `edge: gw\nsensors:\n  - topic: tele/+station/SENSOR\n    decoder: ${JSON.stringify(OLD_DECODER)}\n`,
    );
    const { stdout, stderr } = await run(process.execPath, [edgeCli, 'check', '--config', file]);
    expect(JSON.parse(stdout).sensors[0].decoder).toEqual({
      type: 'tasmota',
      temperature_unit: 'F',
      time_zone: 'Europe/Berlin',
    });
    expect(stderr.trim().split('\n').sort()).toEqual(WARNINGS.map((w) => `warning: ${file}: ${w}`));
  });

  it('the agent logs one warning per old key at start, and again at a reload', async () => {
    dir = tempDir('fb-renames-');
    const config = {
      edge: 'gw-renames',
      nats: { servers: [`nats://127.0.0.1:${await freePort()}`] },
      sensors: [{ topic: 'tele/+station/SENSOR', decoder: OLD_DECODER }],
    };
    agent = await startEdgeAgentProcess({ dir: dir.path, config });
    const warned = () => {
      const out = agent?.process?.output() ?? '';
      return WARNINGS.map((w) => out.split(`${agent?.configFile}: ${w}`).length - 1);
    };
    await waitFor('the warnings', async () => (warned().every((n) => n === 1) ? true : undefined));
    agent.signal('SIGHUP');
    await waitFor('the warnings after the reload', async () =>
      warned().every((n) => n === 2) ? true : undefined,
    );
  });
});
