import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builtCli, freePort, startEdgeAgentProcess, type TempDir, tempDir } from '../harness/index.js';

/**
 * `fieldbeam-edge status` (and the other commands that read the agent's files) as a Pi owner runs
 * them: against a running agent, and as a user who may not read the agent's config or buffer.
 */

let dir: TempDir;
beforeEach(() => {
  dir = tempDir();
  // Other users may enter the test's folder; what they may not read is set per test.
  chmodSync(dir.path, 0o755);
});
afterEach(() => dir.remove());

/**
 * The built CLI as root, or as root without the capabilities that bypass file permissions
 * (`setpriv`): to files owned by another user it is then a user like any other. Unlike `runuser -u
 * nobody`, it can still reach the built CLI when the checkout sits under a private folder.
 */
function cli(args: string[], as: 'root' | 'unprivileged' = 'root') {
  const argv = [builtCli.edge, ...args];
  const r =
    as === 'unprivileged'
      ? spawnSync(
          'setpriv',
          ['--bounding-set', '-dac_override,-dac_read_search', '--', process.execPath, ...argv],
          { encoding: 'utf8' },
        )
      : spawnSync(process.execPath, argv, { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The service user's stand-in: owns the agent's files, as `fieldbeam` does on a Pi. */
const SERVICE_UID = 65534;

describe('fieldbeam-edge status: what a full buffer does', () => {
  it.each([
    ['block', 'when full   block: blocks intake (MQTT acknowledgements wait, sensors back off)'],
    ['drop_oldest', 'when full   drop_oldest: 0 readings dropped'],
  ])(
    'under %s prints the policy the agent runs with',
    async (policy, expected) => {
      const agent = await startEdgeAgentProcess({
        dir: dir.path,
        config: {
          edge: `gw-${policy.replace('_', '-')}`,
          // Nothing listens there: the uplink stays down, which status shows and which is fine here.
          nats: { servers: [`nats://127.0.0.1:${await freePort()}`] },
          buffer: { policy },
        },
      });
      try {
        expect((await agent.status())?.buffer).toMatchObject({ policy });
        const r = cli(['status', '--config', agent.configFile]);
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        const lines = r.stdout.split('\n');
        expect(lines).toContain(expected);
        expect(lines.filter((l) => l.includes('drop_oldest'))).toEqual(policy === 'block' ? [] : [expected]);
      } finally {
        await agent.stop();
      }
    },
    60_000,
  );
});

describe("as a user who may not read the agent's files", () => {
  const expectAdvice = (r: ReturnType<typeof cli>, file: string, command: string) => {
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`cannot read ${file}: permission denied (EACCES)`);
    expect(r.stderr).toContain(`\n  sudo fieldbeam-edge ${command}\n`);
    expect(r.stderr).toContain(`\n  sudo -u fieldbeam fieldbeam-edge ${command}\n`);
    // A message for a person, not a stack trace.
    expect(r.stderr).not.toMatch(/^\s+at /m);
  };

  it('status, check and rejects say to run them as root or the service user, as the package lays out the config', () => {
    // As the package installs it: /etc/fieldbeam root:root 0755, edge.yaml root:fieldbeam 0640.
    const etc = join(dir.path, 'etc');
    mkdirSync(etc, { mode: 0o755 });
    const config = join(etc, 'edge.yaml');
    writeFileSync(config, JSON.stringify({ edge: 'gw-perm', nats: { servers: ['nats://127.0.0.1:4222'] } }), {
      mode: 0o640,
    });
    // The package makes them root:fieldbeam; the asking user is neither, as root without its
    // capabilities is not when they belong to the service user's stand-in.
    chownSync(etc, SERVICE_UID, SERVICE_UID);
    chownSync(config, SERVICE_UID, SERVICE_UID);
    expect(cli(['check', '--config', config]).status).toBe(0); // root reads it

    expectAdvice(cli(['status', '--config', config], 'unprivileged'), config, `status --config ${config}`);
    expectAdvice(cli(['check', '--config', config], 'unprivileged'), config, `check --config ${config}`);
    expectAdvice(
      cli(['rejects', '--config', config], 'unprivileged'),
      config,
      `rejects --config ${config} --limit 20`,
    );
  });

  it('rejects names the buffer file when the config is readable and the buffer is not', () => {
    const data = join(dir.path, 'data');
    mkdirSync(data, { mode: 0o755 });
    // The agent's buffer, 0600 and owned by another user than the one asking.
    const buffer = join(data, 'gw-perm.buffer.sqlite');
    writeFileSync(buffer, '', { mode: 0o600 });
    chownSync(buffer, SERVICE_UID, SERVICE_UID);
    const config = join(dir.path, 'edge.yaml');
    writeFileSync(
      config,
      JSON.stringify({ edge: 'gw-perm', data_dir: data, nats: { servers: ['nats://127.0.0.1:4222'] } }),
      { mode: 0o644 },
    );
    expectAdvice(
      cli(['rejects', '--config', config, '--limit', '5'], 'unprivileged'),
      buffer,
      `rejects --config ${config} --limit 5`,
    );
  });
});
