import { describe, expect, it } from 'vitest';
import { CloudError, CloudErrorCode } from './errors.js';
import { asCloudError, describeError, MAX_RETRY_DELAY_MS, retryDelayMs } from './retry.js';

describe('retryDelayMs', () => {
  it('doubles from the first delay and stops at the cap', () => {
    expect([1, 2, 3, 4].map((a) => retryDelayMs(a, 2000))).toEqual([2000, 4000, 8000, 16000]);
    expect(retryDelayMs(9, 2000)).toBe(MAX_RETRY_DELAY_MS);
    expect(retryDelayMs(10_000, 2000)).toBe(MAX_RETRY_DELAY_MS);
  });
  it('treats a missing or odd attempt count as the first', () => {
    expect(retryDelayMs(0, 500)).toBe(500);
    expect(retryDelayMs(Number.NaN, 500)).toBe(500);
  });
});

describe('asCloudError', () => {
  it('keeps a coded error and classifies anything else', () => {
    const coded = new CloudError(CloudErrorCode.EXPORT_ENCODE, 'bad', false);
    expect(asCloudError(coded, () => new CloudError(CloudErrorCode.OBJECT_STORE, 'x', true))).toBe(coded);
    const other = asCloudError(
      new Error('ECONNREFUSED'),
      (e) => new CloudError(CloudErrorCode.OBJECT_STORE, (e as Error).message, true),
    );
    expect(other).toMatchObject({ code: 'FB_CLOUD_OBJECT_STORE', retryable: true });
    expect(describeError(other)).toBe('FB_CLOUD_OBJECT_STORE: ECONNREFUSED');
  });
});
