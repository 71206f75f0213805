import { readFileSync, readlinkSync } from 'node:fs';

/**
 * Where a process's resident memory sits, from /proc/<pid>/smaps (Linux): what RSS alone cannot say.
 * The node binary's own pages (its code and read-only data, the same for every Node process) are
 * not the agent's doing; shared libraries (libc, better-sqlite3's .node) neither; anonymous memory
 * is the heaps (V8's and malloc's: SQLite's page cache, Buffers, thread stacks of the pool).
 */
export interface SmapsBreakdown {
  total_mb: number;
  /** File-backed mappings of the node executable itself. */
  node_binary_mb: number;
  /** Other file-backed mappings: shared libraries incl. native addons, mapped files. */
  other_files_mb: number;
  /** Anonymous memory: no path, `[heap]` (malloc's brk arena) and `[anon:...]` names. */
  anonymous_mb: number;
  /** The rest: `[stack]`, `[vdso]`, `[vvar]` and other special mappings. */
  other_mb: number;
  /** The largest other file-backed mappings by RSS, path -> MiB (at most 4). */
  top_files_mb: Record<string, number>;
}

/** A library's file name, or its path inside node_modules for a native addon. */
const shortPath = (p: string) => {
  const i = p.lastIndexOf('node_modules/');
  return i >= 0 ? p.slice(i + 'node_modules/'.length) : p.slice(p.lastIndexOf('/') + 1);
};

const round1 = (kb: number) => Math.round((kb / 1024) * 10) / 10;

/** Groups the Rss of every mapping in `text` (the contents of smaps); `exe` is the node executable's path. */
export function parseSmaps(text: string, exe: string): SmapsBreakdown {
  const kb = { node: 0, files: 0, anon: 0, other: 0 };
  const perFile = new Map<string, number>();
  let group: keyof typeof kb = 'other';
  let path = '';
  for (const line of text.split('\n')) {
    // A mapping's header: "start-end perms offset dev inode [path]"; its fields follow as "Name: N kB".
    const h = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (h) {
      const inode = h[1] as string;
      path = (h[2] as string).trim();
      if (path === '' || path === '[heap]' || path.startsWith('[anon:')) group = 'anon';
      else if (path.startsWith('[')) group = 'other';
      else if (path.replace(/ \(deleted\)$/, '') === exe) group = 'node';
      else if (inode !== '0' || path.startsWith('/')) group = 'files';
      else group = 'other';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) {
      const n = Number(rss[1]);
      kb[group] += n;
      if (group === 'files') perFile.set(path, (perFile.get(path) ?? 0) + n);
    }
  }
  const top = [...perFile.entries()].sort((a, b) => b[1] - a[1]).slice(0, 4);
  return {
    total_mb: round1(kb.node + kb.files + kb.anon + kb.other),
    node_binary_mb: round1(kb.node),
    other_files_mb: round1(kb.files),
    anonymous_mb: round1(kb.anon),
    other_mb: round1(kb.other),
    top_files_mb: Object.fromEntries(top.map(([p, n]) => [shortPath(p), round1(n)])),
  };
}

/** The breakdown of a running process, or undefined when it is gone or smaps cannot be read. */
export function smapsBreakdown(pid: number): SmapsBreakdown | undefined {
  try {
    return parseSmaps(readFileSync(`/proc/${pid}/smaps`, 'utf8'), readlinkSync(`/proc/${pid}/exe`));
  } catch {
    return undefined;
  }
}
