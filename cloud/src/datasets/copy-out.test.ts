import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CopyOut } from './copy-out.js';

/** A protocol message: code, length (counting itself), body. */
const msg = (code: string, body: Buffer) => {
  const h = Buffer.alloc(5);
  h.write(code, 0, 'latin1');
  h.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([h, body]);
};

const rows = [
  Buffer.from('first row, with the header'),
  Buffer.alloc(300, 7),
  Buffer.from('x'),
  Buffer.alloc(70_000, 1),
];
const after = Buffer.concat([msg('C', Buffer.from('COPY 3\0')), msg('Z', Buffer.from('T'))]);

/** Runs a COPY over `wire` cut into `size`-byte chunks; what the sink got and what pg got back. */
async function run(wire: Buffer, size: number) {
  const stream = new PassThrough();
  const toPg: Buffer[] = [];
  stream.on('data', (c: Buffer) => toPg.push(c));
  const got: Buffer[] = [];
  const copy = new CopyOut('COPY x TO STDOUT', (b, dv, start, end) => {
    expect(dv.byteLength).toBeGreaterThanOrEqual(end - start);
    got.push(Buffer.from(b.subarray(start, end)));
  });
  copy.submit({ stream, query: () => undefined });
  for (let p = 0; p < wire.length; p += size) {
    stream.write(wire.subarray(p, p + size));
    await new Promise((r) => setImmediate(r));
  }
  return { copy, got, toPg: () => Buffer.concat(toPg) };
}

describe('CopyOut', () => {
  const wire = Buffer.concat([
    msg('H', Buffer.from([1, 0, 0])),
    msg('d', rows[0] as Buffer),
    msg('N', Buffer.from('a notice\0')),
    ...rows.slice(1).map((r) => msg('d', r)),
    msg('c', Buffer.alloc(0)),
    after,
  ]);

  for (const size of [1, 2, 3, 5, 7, 4096, wire.length]) {
    it(`hands over each row whole however the socket cuts it (${size}-byte chunks), then gives the rest back to pg`, async () => {
      const { copy, got, toPg } = await run(wire, size);
      expect(got).toEqual(rows);
      expect(toPg()).toEqual(after);
      copy.handleReadyForQuery();
      await expect(copy.done).resolves.toBe(rows.length);
    });
  }

  it('gives pg the whole ErrorResponse, split or not, and fails with its error', async () => {
    const error = msg('E', Buffer.from('SERROR\0Mboom\0\0'));
    const bad = Buffer.concat([
      msg('H', Buffer.from([1])),
      msg('d', Buffer.from('row')),
      error,
      msg('Z', Buffer.from('I')),
    ]);
    for (const size of [1, 3, bad.length]) {
      const { copy, got, toPg } = await run(bad, size);
      expect(got).toEqual([Buffer.from('row')]);
      expect(toPg()).toEqual(bad.subarray(bad.length - error.length - 6));
      copy.handleError(new Error('boom'));
      await expect(copy.done).rejects.toThrow('boom');
    }
  });

  it('reads to the end after the sink refuses a row, then fails with the sink error', async () => {
    const stream = new PassThrough();
    const toPg: Buffer[] = [];
    stream.on('data', (c: Buffer) => toPg.push(c));
    let calls = 0;
    const copy = new CopyOut('COPY', () => {
      calls++;
      throw new Error('bad row');
    });
    copy.submit({ stream, query: () => undefined });
    stream.write(
      Buffer.concat([
        msg('d', Buffer.from('a')),
        msg('d', Buffer.from('b')),
        msg('c', Buffer.alloc(0)),
        after,
      ]),
    );
    await new Promise((r) => setImmediate(r));
    expect(calls).toBe(1);
    expect(Buffer.concat(toPg)).toEqual(after);
    copy.handleReadyForQuery();
    await expect(copy.done).rejects.toThrow('bad row');
  });
});
