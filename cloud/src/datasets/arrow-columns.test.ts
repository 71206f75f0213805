import {
  Field,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  tableFromIPC,
} from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import {
  DictColumn,
  DictValues,
  Float64Column,
  StringListColumn,
  sortOrder,
  TimeColumn,
  tableOf,
} from './arrow-columns.js';

const enc = new TextEncoder();
const push = (c: DictColumn, s: string | null) => {
  if (s === null) c.pushNull();
  else {
    const b = enc.encode(s);
    c.push(b, 0, b.length);
  }
};

describe('Arrow column builders', () => {
  it('sorts by time with ties kept in order, and says when nothing needs sorting', () => {
    expect(sortOrder(new Float64Array([1, 2, 2, 3]))).toBeUndefined();
    expect([...(sortOrder(new Float64Array([5, 1, 5, 0])) ?? [])]).toEqual([3, 1, 0, 2]);
    // Keys too wide to pack into 53 bits take the comparator path.
    expect([...(sortOrder(new Float64Array([1e16, -1e16, 0])) ?? [])]).toEqual([1, 2, 0]);
  });

  it('permutes every column type consistently, nulls included', () => {
    const time = new TimeColumn();
    const station = new DictColumn(new DictValues(0));
    const value = new Float64Column();
    const quality = new StringListColumn();
    const rows: [number, string | null, number | null, string[] | null][] = [
      [30, 'b', 3, ['x', 'yy']],
      [10, null, null, null],
      [20, 'a', 2, []],
      [10, 'b', 1, ['z']],
    ];
    for (const [t, s, v, q] of rows) {
      time.push(t);
      push(station, s);
      if (v === null) value.pushNull();
      else value.push(v);
      if (q === null) quality.pushNull();
      else {
        quality.begin();
        for (const f of q) {
          const b = enc.encode(f);
          quality.item(b, 0, b.length);
        }
      }
    }
    const perm = sortOrder(time.values());
    if (!perm) throw new Error('expected a permutation');
    for (const c of [time, station, value, quality]) c.permute(perm);
    const table = tableOf(
      [
        [
          { name: 'time', data: time.data(), nullable: false },
          { name: 'station', data: station.data(), nullable: true },
          { name: 'value', data: value.data(), nullable: true },
          { name: 'quality', data: quality.data(), nullable: true },
        ],
      ],
      new Map(),
    );
    const out = table.toArray().map((r) => {
      const o = r.toJSON();
      return [Number(o.time), o.station, o.value, o.quality ? [...o.quality] : null];
    });
    expect(out).toEqual([
      [10, null, null, null],
      [10, 'b', 1, ['z']],
      [20, 'a', 2, []],
      [30, 'b', 3, ['x', 'yy']],
    ]);
  });
});

describe('dictionaries shared by batches written one at a time', () => {
  it('sends values a later batch adds as a delta, which an Arrow file accepts and reads back', () => {
    const dict = new DictValues(0);
    const writer = new RecordBatchFileWriter();
    const schema = new Schema([new Field('station', dict.type(), true)]);
    writer.reset(undefined, schema);
    const batch = (values: (string | null)[]) => {
      const c = new DictColumn(dict);
      for (const v of values) push(c, v);
      return new RecordBatch(
        schema,
        makeData({ type: new Struct(schema.fields), length: c.length, children: [c.data()] }),
      );
    };
    // Written before the second batch exists: the file writer refuses a dictionary that is replaced.
    writer.write(batch(['a', 'b', null]));
    writer.write(batch(['c', 'a']));
    writer.write(batch(['b']));
    const table = tableFromIPC(writer.finish().toUint8Array(true));
    expect(table.batches).toHaveLength(3);
    expect(table.getChild('station')?.toArray()).toEqual(['a', 'b', null, 'c', 'a', 'b']);
  });
});
