import { describe, expect, it } from 'vitest';
import { ReusedAnswers } from './reused-answers.js';

describe('ReusedAnswers', () => {
  it('asks once per key while an answer is pending or fresh, again once it is stale', async () => {
    let t = 0;
    const answers = new ReusedAnswers<number>(5000, 10, () => t);
    let asked = 0;
    const ask = async () => ++asked;
    const first = await Promise.all(Array.from({ length: 20 }, () => answers.get('gw-1', ask)));
    expect(first).toEqual(Array(20).fill(1));
    t = 4999;
    expect(await answers.get('gw-1', ask)).toBe(1);
    t = 5000;
    expect(await answers.get('gw-1', ask)).toBe(2);
    expect(await answers.get('gw-2', ask)).toBe(3);
    expect(asked).toBe(3);
  });

  it('does not keep a failed answer', async () => {
    const answers = new ReusedAnswers<string>(5000, 10, () => 0);
    await expect(answers.get('gw-1', () => Promise.reject(new Error('no responders')))).rejects.toThrow();
    expect(await answers.get('gw-1', async () => 'ok')).toBe('ok');
  });

  it('keeps at most maxKeys keys, dropping the stalest', async () => {
    let t = 0;
    const answers = new ReusedAnswers<number>(60_000, 3, () => t);
    for (let i = 0; i < 10; i++) {
      t = i;
      await answers.get(`gw-${i}`, async () => i);
    }
    expect(answers.size).toBe(3);
    expect(await answers.get('gw-9', async () => -1)).toBe(9);
    expect(await answers.get('gw-0', async () => -1)).toBe(-1);
  });
});
