import { describe, expect, it } from 'vitest';
import { datasetMayMatch, parseDatasets } from './dataset-config.js';

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
