import { describe, expect, it } from 'vitest';
import { bufferAccount, mergeRanges, roundSpans } from './completeness.js';

describe('mergeRanges', () => {
  it('sorts, joins overlapping and adjacent ranges, keeps gaps', () => {
    expect(
      mergeRanges([
        [11, 20],
        [1, 10],
        [30, 40],
        [35, 36],
        [22, 25],
      ]),
    ).toEqual([
      [1, 20],
      [22, 25],
      [30, 40],
    ]);
    expect(mergeRanges([])).toEqual([]);
  });
});

describe('bufferAccount', () => {
  it('a hole between received ranges that the edge did not explain is an unexplained gap', () => {
    expect(
      bufferAccount(
        1,
        [
          [1, 20],
          [31, 50],
        ],
        [],
      ),
    ).toEqual({
      readings: 40,
      lastSeq: 50,
      explained: { droppedOldest: 0 },
      unexplained: 10,
      unexplainedRanges: [[21, 30]],
    });
  });

  it('drops explain exactly the numbers they name; a missing start counts from start', () => {
    const a = bufferAccount(
      1,
      [
        [11, 20],
        [31, 40],
      ],
      [[21, 28]],
    );
    expect(a).toMatchObject({ readings: 20, explained: { droppedOldest: 8 }, unexplained: 12 });
    expect(a.unexplainedRanges).toEqual([
      [1, 10],
      [29, 30],
    ]);
  });

  it('numbers before the start (an older agent sent them) and after the highest known are no gap', () => {
    expect(
      bufferAccount(
        100,
        [
          [5, 10],
          [100, 120],
        ],
        [],
      ),
    ).toMatchObject({ readings: 27, unexplained: 0, lastSeq: 120 });
  });

  it('a dropped number that arrived all the same (sent before a restart) is counted once, as received', () => {
    expect(bufferAccount(1, [[1, 10]], [[5, 12]])).toMatchObject({
      readings: 10,
      explained: { droppedOldest: 2 },
      unexplained: 0,
    });
  });

  it('batches of agents that do not name their buffer are counted, with no gap analysis', () => {
    expect(
      bufferAccount(
        null,
        [
          [1, 5],
          [9, 10],
        ],
        [],
      ),
    ).toMatchObject({ readings: 7, unexplained: 0 });
  });
});

describe('roundSpans', () => {
  it("merges a round's batches per edge, buffer and kind", () => {
    const spans = roundSpans([
      { edge: 'a', seq: [1, 10], buffer: { id: 'x', start: 1 } },
      { edge: 'a', seq: [11, 20], buffer: { id: 'x', start: 1, dropped: [[30, 40]] } },
      { edge: 'a', seq: [1, 5], buffer: { id: 'y', start: 1 } },
      { edge: 'b', seq: [7, 9] },
    ]);
    expect(spans).toEqual([
      { edge: 'a', bufferId: 'x', start: 1, kind: 'received', first: 1, last: 20 },
      { edge: 'a', bufferId: 'x', start: 1, kind: 'dropped', first: 30, last: 40 },
      { edge: 'a', bufferId: 'y', start: 1, kind: 'received', first: 1, last: 5 },
      { edge: 'b', bufferId: '', start: undefined, kind: 'received', first: 7, last: 9 },
    ]);
  });
});
