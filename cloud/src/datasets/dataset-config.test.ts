import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { datasetMayMatch, loadDatasets, parseDatasets } from './dataset-config.js';

describe('dataset configuration', () => {
  it('parses durations and defaults', () => {
    const [d] = parseDatasets({
      datasets: [{ name: 'temp', window: 'PT1H', filter: { variables: ['air_temperature'] } }],
    });
    expect(d).toMatchObject({ name: 'temp', window: 3_600_000, grace: 0, debounce: 0, provisional: false });
    expect(Object.isFrozen(d)).toBe(true);
  });
  it('reports every problem with its path in one error', () => {
    let message = '';
    try {
      parseDatasets({
        datasets: [
          { name: 'a.b', window: 'P1M', grace: 'soon' },
          { name: 'ok', window: 'PT1H', filter: { stations: [] }, extra: 1 },
        ],
      });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('datasets.0.name');
    expect(message).toContain('datasets.0.window');
    expect(message).toContain('datasets.0.grace');
    expect(message).toContain('datasets.1.filter.stations');
    expect(message).toContain('datasets.1: Unrecognized key: "extra"');
    expect(() =>
      parseDatasets({
        datasets: [
          { name: 'ok', window: 'PT1H' },
          { name: 'ok', window: 'PT1H' },
        ],
      }),
    ).toThrow('datasets.1.name: duplicate dataset name "ok"');
  });
  it('tells whether a batch can touch a dataset', () => {
    const [d] = parseDatasets({ datasets: [{ name: 't', window: 'PT1H', filter: { variables: ['x'] } }] });
    if (!d) throw new Error('no dataset');
    expect(datasetMayMatch(d, { source: ['mqtt'], stations: ['s'], variables: ['x', 'y'] })).toBe(true);
    expect(datasetMayMatch(d, { source: ['mqtt'], stations: ['s'], variables: ['y'] })).toBe(false);
    expect(datasetMayMatch(d, { source: ['mqtt'], stations: ['s'] })).toBe(true);
  });
});

describe('dataset configuration: ${VAR} interpolation', () => {
  const yaml = [
    'datasets:',
    '  - name: ${DATASET:-minutely}',
    '    window: ${FB_TEST_UNSET_WINDOW}',
    '    provisional: ${PROVISIONAL:-false}',
    '    filter: { stations: ["${FB_TEST_UNSET_STATION}"] }',
  ].join('\n');

  it('replaces ${VAR} and ${VAR:-default}; $${...} is text; a whole reference can be a boolean', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fb-datasets-'));
    try {
      const file = join(dir, 'datasets.yaml');
      writeFileSync(file, yaml);
      const [d] = parseDatasets(
        {
          datasets: [
            { name: '${N:-a}', window: '${W}', provisional: '${P}', filter: { stations: ['${S}'] } },
          ],
        },
        'x',
        { W: 'PT1M', P: 'true', S: 'gh-1' },
      );
      expect(d).toMatchObject({
        name: 'a',
        window: 60_000,
        provisional: true,
        filter: { stations: ['gh-1'] },
      });
      expect(() => loadDatasets(file)).toThrow(
        new RegExp(
          `invalid dataset configuration in ${file.replace(/[.]/g, '\\.')}:\\n {2}datasets\\.0\\.window: environment variable FB_TEST_UNSET_WINDOW is not set\\n {2}datasets\\.0\\.filter\\.stations\\.0: environment variable FB_TEST_UNSET_STATION is not set`,
        ),
      );
      const [e] = parseDatasets(
        { datasets: [{ name: 'b', title: '$${WINDOW} is written so', window: 'PT1H' }] },
        'x',
        {},
      );
      expect(e?.title).toBe('${WINDOW} is written so');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads aggregate and max_delay, and refuses an interval that does not divide the window', () => {
    const [d] = parseDatasets({
      datasets: [
        {
          name: 'ten',
          window: 'PT1H',
          max_delay: 'PT30S',
          aggregate: { every: 'PT10M', stats: ['mean', 'count'], exclude_flags: ['time_invalid'] },
        },
      ],
    });
    expect(d).toMatchObject({
      maxDelay: 30_000,
      aggregate: { every: 600_000, stats: ['mean', 'count'], excludeFlags: ['time_invalid'] },
    });
    const [all] = parseDatasets({ datasets: [{ name: 'a', window: 'PT1H', aggregate: { every: 'PT1M' } }] });
    expect(all?.aggregate?.stats).toEqual(['mean', 'min', 'max', 'count', 'sum', 'first', 'last']);
    expect(all?.aggregate?.excludeFlags).toEqual([]);
    expect(all && 'maxDelay' in all).toBe(false);
    expect(() =>
      parseDatasets({ datasets: [{ name: 'a', window: 'PT1H', aggregate: { every: 'PT7M' } }] }),
    ).toThrow('datasets.0.aggregate.every: aggregate.every must be at least PT1S and divide the window');
    expect(() =>
      parseDatasets({
        datasets: [{ name: 'a', window: 'PT1H', aggregate: { every: 'PT1M', stats: ['mean', 'median'] } }],
      }),
    ).toThrow('datasets.0.aggregate.stats.1');
    expect(() =>
      parseDatasets({
        datasets: [{ name: 'a', window: 'PT1H', aggregate: { every: 'PT1M', stats: ['mean', 'mean'] } }],
      }),
    ).toThrow('list each statistic once');
    expect(() => parseDatasets({ datasets: [{ name: 'a', window: 'PT1H', max_delay: 'PT0S' }] })).toThrow(
      'datasets.0.max_delay: max_delay must be at least PT1S',
    );
  });
});
