import { describe, expect, it } from 'vitest';
import { ObservationBatch } from './messages.js';
import type { Observation } from './observation.js';
import { observationId } from './observation-id.js';
import { batchMsgId, edgeOfObsSubject, subjects } from './subjects.js';
import { decodeMessage } from './validate.js';

const obs = (edge: string): Observation => {
  const key = {
    source: 'mqtt',
    station: 's1',
    variable: 'air_temperature',
    time: '2026-11-30T12:00:00.000Z',
    value: 20,
  };
  return { id: observationId(key), edge, unit: 'degC', received: '2026-11-30T12:00:00.010Z', ...key };
};
const batch = (edge: string, observations: Observation[]) => ({
  v: 1,
  edge,
  seq: [1, observations.length],
  sent: '2026-11-30T12:00:01.000Z',
  observations,
});

describe('ObservationBatch', () => {
  it('accepts a well-formed batch', () => {
    const r = decodeMessage(ObservationBatch, JSON.stringify(batch('gw-1', [obs('gw-1')])));
    expect(r.ok).toBe(true);
  });

  it('rejects with a path and reason a person can act on', () => {
    const bad = batch('gw-1', [{ ...obs('gw-1'), value: 'hot' as unknown as number }]);
    const r = decodeMessage(ObservationBatch, JSON.stringify(bad));
    expect(r).toEqual({ ok: false, reason: expect.stringMatching(/observations\.0\.value: /) });
  });

  it('rejects observations that claim another edge than the batch', () => {
    const r = decodeMessage(ObservationBatch, JSON.stringify(batch('gw-1', [obs('gw-2')])));
    expect(r).toEqual({ ok: false, reason: expect.stringMatching(/carry the batch edge/) });
  });

  it('rejects non-JSON and invalid UTF-8 without throwing', () => {
    expect(decodeMessage(ObservationBatch, '{not json').ok).toBe(false);
    const r = decodeMessage(ObservationBatch, new Uint8Array([0x7b, 0xff, 0x7d]));
    expect(r).toEqual({ ok: false, reason: expect.stringMatching(/UTF-8/) });
  });

  it('rejects an empty or oversized batch', () => {
    expect(decodeMessage(ObservationBatch, JSON.stringify(batch('gw-1', []))).ok).toBe(false);
    const many = Array.from({ length: 501 }, () => obs('gw-1'));
    expect(decodeMessage(ObservationBatch, JSON.stringify(batch('gw-1', many))).ok).toBe(false);
  });
});

describe('subjects', () => {
  it('builds and parses observation subjects', () => {
    expect(subjects.obs('gw-1')).toBe('fb.obs.gw-1');
    expect(edgeOfObsSubject('fb.obs.gw-1')).toBe('gw-1');
    expect(edgeOfObsSubject('fb.obs.gw-1.x')).toBeUndefined();
  });

  it('refuses ids that would break subject tokens', () => {
    for (const bad of ['a.b', 'a*', '>', 'a b', '']) expect(() => subjects.obs(bad)).toThrow(/subject token/);
  });

  it('makes message ids unique per buffer and range', () => {
    expect(batchMsgId('gw-1', 'abc', 1, 500)).toBe('gw-1:abc:1-500');
    expect(batchMsgId('gw-1', 'abd', 1, 500)).not.toBe(batchMsgId('gw-1', 'abc', 1, 500));
  });
});
