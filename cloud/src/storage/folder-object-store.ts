import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { checkKey, type ObjectInfo, type ObjectStore } from './object-store.js';

const notFound = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * Objects as files under a root folder. A put writes a temporary file, fsyncs it and renames it
 * into place, so a crash leaves the old object or the new one.
 */
export class FolderObjectStore implements ObjectStore {
  readonly describe: string;
  constructor(private readonly root: string) {
    this.describe = `folder ${root}`;
  }

  private path(key: string): string {
    return join(this.root, ...checkKey(key).split('/'));
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    await this.write(key, (tmp) => writeFile(tmp, body));
  }

  async putFile(key: string, from: string): Promise<void> {
    await this.write(key, (tmp) => copyFile(from, tmp));
  }

  private async write(key: string, fill: (tmp: string) => Promise<void>): Promise<void> {
    const path = this.path(key);
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await fill(tmp);
      const fh = await open(tmp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    try {
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return await readFile(this.path(key));
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
  }

  async getStream(key: string) {
    const info = await this.head(key);
    if (!info) return undefined;
    return { body: createReadStream(this.path(key)), size: info.size };
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? { key, size: s.size } : undefined;
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (notFound(err)) return;
        throw err;
      }
      for (const e of entries) {
        const full = join(dir, e.name);
        if (e.isDirectory()) await walk(full);
        else if (e.isFile() && !e.name.endsWith('.tmp')) {
          const key = relative(this.root, full).split(sep).join('/');
          if (key.startsWith(prefix)) out.push({ key, size: (await stat(full)).size });
        }
      }
    };
    // Walk only the folder the prefix names, not the whole store.
    const folder = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    await walk(folder ? join(this.root, ...checkKey(folder).split('/')) : this.root);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async close(): Promise<void> {}
}
