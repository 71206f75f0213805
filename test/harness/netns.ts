import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * A network namespace joined to the host by a veth pair, with a private /30 that exists only on that
 * pair. Programs run inside with `wrap()`. `blackhole(port)` drops (nftables, inside the namespace)
 * every TCP packet between the namespace and the host address on that port, both ways: connections
 * hang and new ones time out, nothing is refused. `restore()` removes the rule. The host side keeps
 * its link, so other traffic (MQTT, HTTP) between host and namespace keeps flowing.
 */
export interface NetnsLink {
  readonly name: string;
  readonly hostIf: string;
  readonly nsIf: string;
  /** Address of the host end of the pair (in the root namespace). */
  readonly hostAddr: string;
  /** Address of the namespace end. */
  readonly nsAddr: string;
  /** The command line that runs `cmd args` inside the namespace. */
  wrap(cmd: string, args: string[]): [string, string[]];
  blackhole(port: number): void;
  restore(): void;
  readonly blackholed: boolean;
  /** Deletes the namespace and the pair. Idempotent; call after the processes inside have stopped. */
  close(): void;
}

const run = (cmd: string, args: string[], input?: string) =>
  execFileSync(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], input, timeout: 10_000 }).toString();

const has = (cmd: string) => {
  try {
    run(cmd, ['--version']);
    return true;
  } catch {
    try {
      run(cmd, ['-V']);
      return true;
    } catch {
      return false;
    }
  }
};

/** Undefined when namespaces, veth and nftables can be used here; otherwise why not. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (!has('ip')) return 'the `ip` command is missing (Debian package iproute2)';
  if (!has('nft')) return 'the `nft` command is missing (Debian package nftables)';
  return undefined;
}

/** A /30 in 10.213.0.0/16 that no interface on this host uses yet. */
function pickSubnet(): [string, string] {
  const used = run('ip', ['-4', '-o', 'addr', 'show']);
  for (let i = 0; i < 100; i++) {
    const b = 1 + Math.floor(Math.random() * 254);
    const c = 4 * Math.floor(Math.random() * 63);
    const base = `10.213.${b}.`;
    const taken = [0, 1, 2, 3].some((k) => used.includes(` ${base}${c + k}/`));
    if (!taken) return [`${base}${c + 1}`, `${base}${c + 2}`];
  }
  throw new Error('no free /30 in 10.213.0.0/16');
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Deletes namespaces this helper made for a run whose process no longer exists (a runner that was
 * killed -9 could not clean up). Only names of the form `fbfaults-<pid>-<6 hex>` are touched.
 */
export function removeStaleNetns(): string[] {
  const removed: string[] = [];
  let list = '';
  try {
    list = run('ip', ['netns', 'list']);
  } catch {
    return removed;
  }
  for (const line of list.split('\n')) {
    const m = /^(fbfaults-(\d+)-[0-9a-f]{6})\b/.exec(line.trim());
    if (!m?.[1] || alive(Number(m[2]))) continue;
    try {
      run('ip', ['netns', 'del', m[1]]);
      removed.push(m[1]);
    } catch {}
  }
  return removed;
}

export function createNetnsLink(): NetnsLink {
  const why = netnsUnavailable();
  if (why) throw new Error(`cannot create a network namespace: ${why}`);
  removeStaleNetns();
  const id = randomBytes(3).toString('hex');
  const name = `fbfaults-${process.pid}-${id}`;
  const hostIf = `fbh${id}`;
  const nsIf = `fbe${id}`;
  const [hostAddr, nsAddr] = pickSubnet();
  const table = 'fb_blackhole';
  let blackholed = false;
  let closed = false;

  const close = () => {
    if (closed) return;
    closed = true;
    try {
      run('ip', ['netns', 'del', name]);
    } catch {}
    // Deleting the namespace deletes its end, which deletes the pair; this is for a half-made one.
    try {
      run('ip', ['link', 'del', hostIf]);
    } catch {}
  };

  try {
    run('ip', ['netns', 'add', name]);
    run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf, 'netns', name]);
    run('ip', ['addr', 'add', `${hostAddr}/30`, 'dev', hostIf]);
    run('ip', ['link', 'set', hostIf, 'up']);
    run('ip', ['-n', name, 'addr', 'add', `${nsAddr}/30`, 'dev', nsIf]);
    run('ip', ['-n', name, 'link', 'set', nsIf, 'up']);
    run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (err) {
    close();
    throw new Error(`could not set up namespace ${name}: ${(err as Error).message}`);
  }

  return {
    name,
    hostIf,
    nsIf,
    hostAddr,
    nsAddr,
    wrap: (cmd, args) => ['ip', ['netns', 'exec', name, cmd, ...args]],
    blackhole(port) {
      if (blackholed) return;
      run(
        'ip',
        ['netns', 'exec', name, 'nft', '-f', '-'],
        `table inet ${table} {
  chain out { type filter hook output priority 0; policy accept; ip daddr ${hostAddr} tcp dport ${port} drop; }
  chain in { type filter hook input priority 0; policy accept; ip saddr ${hostAddr} tcp sport ${port} drop; }
}
`,
      );
      blackholed = true;
    },
    restore() {
      if (!blackholed) return;
      run('ip', ['netns', 'exec', name, 'nft', 'delete', 'table', 'inet', table]);
      blackholed = false;
    },
    get blackholed() {
      return blackholed;
    },
    close,
  };
}
