import { describe, expect, it } from 'vitest';
import { createEdgeMetrics } from './metrics.js';

const families = (text: string) =>
  new Set(text.split('\n').flatMap((l) => (l.startsWith('# TYPE ') ? [l.split(' ')[2]] : [])));

describe('the agent metrics', () => {
  it("keep Node's and the process's standard names beside the agent's own fb_edge_ ones", async () => {
    const names = families(await createEdgeMetrics().registry.metrics());
    expect(names).toContain('process_cpu_seconds_total');
    expect(names).toContain('process_resident_memory_bytes');
    expect(names).toContain('nodejs_heap_size_used_bytes');
    expect([...names].filter((n) => n?.startsWith('fb_edge_process'))).toEqual([]);
  });

  it('say what runs in fb_edge_build_info', async () => {
    const m = createEdgeMetrics({ version: '1.2.3', commit: 'abc1234', node: 'v24.0.0' });
    expect(await m.registry.metrics()).toContain(
      'fb_edge_build_info{version="1.2.3",commit="abc1234",node="v24.0.0"} 1',
    );
  });

  it("read the buffer's depth and oldest unsent reading's age when scraped", async () => {
    const m = createEdgeMetrics();
    const stats = { depth: 0, bytes: 0, oldestReceivedMs: null as number | null };
    m.observeBuffer(() => stats);
    expect(await m.registry.metrics()).toContain('fb_edge_buffer_oldest_unsent_age_seconds 0\n');
    Object.assign(stats, { depth: 7, bytes: 700, oldestReceivedMs: Date.now() - 3_600_000 });
    const text = await m.registry.metrics();
    expect(text).toContain('fb_edge_buffer_depth 7\n');
    const age = Number(/^fb_edge_buffer_oldest_unsent_age_seconds (\S+)$/m.exec(text)?.[1]);
    expect(age).toBeGreaterThanOrEqual(3600);
    expect(age).toBeLessThan(3600 + 600);
  });

  it("show the buffer thread's heap as it last reported it", async () => {
    const m = createEdgeMetrics();
    let heap: { used: number; total: number } | undefined;
    m.observeBufferThreadHeap(() => heap);
    // Before its first report (and on one thread) the gauges stay at prom-client's 0.
    expect(await m.registry.metrics()).toContain('fb_edge_buffer_thread_heap_used_bytes 0\n');
    heap = { used: 5_000_000, total: 8_000_000 };
    const text = await m.registry.metrics();
    expect(text).toContain('fb_edge_buffer_thread_heap_used_bytes 5000000\n');
    expect(text).toContain('fb_edge_buffer_thread_heap_total_bytes 8000000\n');
  });
});
