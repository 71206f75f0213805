import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';
import { readParquet, Table as WasmTable, WriterPropertiesBuilder, writeParquet } from 'parquet-wasm';
import { describe, expect, it } from 'vitest';
import { keyValuesOf, setParquetKeyValues, withKeyValues } from './parquet-footer.js';

/** A small Parquet file with `entries` key-value metadata (and Arrow's own `ARROW:schema`). */
function parquetWith(entries: [string, string][]): Uint8Array {
  const table = tableFromArrays({ value: Float64Array.of(1.5, 2.5, 3.5), name: ['a', 'bb', 'ccc'] });
  const props = new WriterPropertiesBuilder().setKeyValueMetadata(new Map(entries)).build();
  return writeParquet(WasmTable.fromIPCStream(tableToIPC(table, 'stream')), props);
}

const rowsOf = (file: Uint8Array) =>
  tableFromIPC(readParquet(file).intoIPCStream())
    .toArray()
    .map((r) => r.toJSON());

describe('Parquet footer key-value metadata', () => {
  it('replaces values in place, keeps the other entries and the rows readable', async () => {
    // More than 14 entries (the list's long header) and values longer than 127 bytes (2-byte lengths).
    const entries = Array.from({ length: 20 }, (_, i) => [`k${i}`, `v${i}`] as [string, string]);
    const file = parquetWith([['geo', '{"bbox":null}'], ...entries]);
    const before = keyValuesOf(file);
    expect(before.get('geo')).toBe('{"bbox":null}');
    expect(before.has('ARROW:schema')).toBe(true);
    const long = JSON.stringify({ bbox: [1, 2, 3, 4], pad: 'x'.repeat(300) });
    const dir = mkdtempSync(join(tmpdir(), 'fieldbeam-footer-'));
    try {
      const path = join(dir, 'f.parquet');
      writeFileSync(path, file);
      const size = await setParquetKeyValues(
        path,
        new Map([
          ['geo', long],
          ['added', 'at the end'],
        ]),
      );
      const out = readFileSync(path);
      expect(out.length).toBe(size);
      const after = keyValuesOf(out);
      expect(after.get('geo')).toBe(long);
      expect(after.get('added')).toBe('at the end');
      expect(after.get('k19')).toBe('v19');
      expect(after.get('ARROW:schema')).toBe(before.get('ARROW:schema'));
      expect([...after.keys()].slice(0, 3)).toEqual([...before.keys()].slice(0, 3));
      expect(rowsOf(out)).toEqual(rowsOf(file));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses what is not a Parquet footer', () => {
    expect(() => keyValuesOf(new Uint8Array(20))).toThrow(/not a Parquet file/);
    expect(() => withKeyValues(Uint8Array.of(0x15, 0x02, 0x00), new Map([['a', 'b']]))).toThrow(
      /no key-value metadata/,
    );
  });
});
