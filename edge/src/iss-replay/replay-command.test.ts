import { describe, expect, it } from 'vitest';
import { DEFAULT_ISS_ITEMS } from '../iss/default-items.js';
import { generatorItems, parseIssReplayArgs } from './replay-command.js';

describe('iss-replay arguments', () => {
  it('has defaults for a local demo', () => {
    expect(parseIssReplayArgs([])).toEqual({
      kind: 'run',
      args: { host: '127.0.0.1', port: 18080, speed: 1, loop: false, retime: false, keepaliveMs: 5000 },
    });
  });

  it('reads every option', () => {
    expect(
      parseIssReplayArgs([
        '--port',
        '0',
        '--host',
        '::1',
        '--file',
        'r.jsonl',
        '--speed',
        '60',
        '--loop',
        '--retime',
      ]),
    ).toEqual({
      kind: 'run',
      args: { host: '::1', port: 0, file: 'r.jsonl', speed: 60, loop: true, retime: true, keepaliveMs: 5000 },
    });
    expect(parseIssReplayArgs(['--items', '120', '--keepalive', '1000'])).toMatchObject({
      args: { items: 120, keepaliveMs: 1000 },
    });
    expect(parseIssReplayArgs(['-h'])).toEqual({ kind: 'help' });
  });

  it('explains what is wrong', () => {
    const error = (argv: string[]) => {
      const r = parseIssReplayArgs(argv);
      return r.kind === 'error' ? r.message : `not an error: ${r.kind}`;
    };
    expect(error(['--port', 'x'])).toMatch(/--port expects/);
    expect(error(['--port', '70000'])).toMatch(/0\.\.65535/);
    expect(error(['--speed', '0'])).toMatch(/--speed expects a positive number/);
    expect(error(['--items', '2.5'])).toMatch(/whole number/);
    expect(error(['--loop'])).toMatch(/--file/);
    expect(error(['--file', 'a', '--items', '3'])).toMatch(/generator/);
    expect(error(['--bogus'])).toMatch(/bogus/);
  });

  it('picks generator items from the defaults, then the catalogue', () => {
    expect(generatorItems(undefined)).toEqual(DEFAULT_ISS_ITEMS.slice(1));
    expect(generatorItems(3)).toEqual(DEFAULT_ISS_ITEMS.slice(1, 4));
    const many = generatorItems(200);
    expect(many).toHaveLength(200);
    expect(new Set(many).size).toBe(200);
    expect(many).not.toContain('TIME_000001');
  });
});
