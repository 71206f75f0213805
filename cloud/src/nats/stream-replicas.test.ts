import { streams } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import { loadCloudConfig } from '../config.js';
import { streamSpecs } from '../retention/retention-settings.js';

describe('FB_STREAM_REPLICAS', () => {
  it('is 1 by default and sets the replicas of every stream', () => {
    const count = Object.keys(streams).length;
    expect(streamSpecs(loadCloudConfig({})).map((s) => s.replicas)).toEqual(Array(count).fill(1));
    expect(streamSpecs(loadCloudConfig({ FB_STREAM_REPLICAS: '3' })).map((s) => s.replicas)).toEqual(
      Array(count).fill(3),
    );
  });

  it('refuses a count JetStream does not take', () => {
    expect(() => loadCloudConfig({ FB_STREAM_REPLICAS: '0' })).toThrow(/FB_STREAM_REPLICAS/);
    expect(() => loadCloudConfig({ FB_STREAM_REPLICAS: '7' })).toThrow(/FB_STREAM_REPLICAS/);
  });
});
