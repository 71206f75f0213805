import { describe, expect, it } from 'vitest';
import { DEFAULT_ISS_ITEMS } from './default-items.js';
import { issUnit } from './iss-units.js';
import { issEnumCodes, loadIssCatalogue, loadIssRanges } from './isslive-catalogue.js';
import { ISS_CLOCK_ITEM } from './isslive-schema.js';

const catalogue = loadIssCatalogue();
const unitOf = (id: string) => issUnit(id, catalogue.byId.get(id));

describe('ISSLIVE catalogue', () => {
  it('loads all 337 rows; ids are unique but for the one duplicate of the source', () => {
    expect(catalogue.items).toHaveLength(337);
    expect(catalogue.byId.size).toBe(336);
    expect(catalogue.byId.get('CSAMT000001')?.description).toBe('MSS MT Position Float');
    expect(catalogue.byId.get('USLAB000058')?.description).toBe('Cabin pressure');
  });

  it('reads enumerations from the format column', () => {
    const item = catalogue.byId.get('USLAB000081');
    expect(item && issEnumCodes(item)).toEqual([0, 1]);
    const measured = catalogue.byId.get('USLAB000058');
    expect(measured && issEnumCodes(measured)).toBeUndefined();
  });

  it('has recorded ranges for the generator', () => {
    const [min, max] = loadIssRanges().get('USLAB000058') ?? [0, 0];
    expect(min).toBeGreaterThan(700);
    expect(max).toBeLessThan(800);
  });
});

describe('default items', () => {
  it('are at least 50 catalogue items over many consoles, clock first, no repeats', () => {
    expect(DEFAULT_ISS_ITEMS[0]).toBe(ISS_CLOCK_ITEM);
    expect(DEFAULT_ISS_ITEMS.length).toBeGreaterThan(50);
    expect(new Set(DEFAULT_ISS_ITEMS).size).toBe(DEFAULT_ISS_ITEMS.length);
    for (const id of DEFAULT_ISS_ITEMS) expect(catalogue.byId.has(id), id).toBe(true);
    const consoles = new Set(DEFAULT_ISS_ITEMS.map((id) => catalogue.byId.get(id)?.category.split('/')[0]));
    expect(consoles.size).toBeGreaterThanOrEqual(7);
  });
});

describe('delivered units (tlcp.md §8.3)', () => {
  it('corrects the catalogue where the recordings show another unit', () => {
    expect(unitOf('USLAB000032')).toBe('km');
    expect(unitOf('USLAB000035')).toBe('m s-1');
    expect(unitOf('USLAB000058')).toBe('mmHg');
    expect(unitOf('AIRLOCK000049')).toBe('mmHg');
    expect(unitOf('USLAB000053')).toBe('mmHg');
    expect(unitOf('USLAB000059')).toBe('degC');
    expect(unitOf('NODE3000005')).toBe('%');
  });

  it('takes a unit named in the description over the raw one', () => {
    expect(unitOf('USLAB000045')).toBe('degC'); // DEGF in the catalogue, "(deg C)" in the text
    expect(unitOf('USLAB000022')).toBe('degree'); // RAD, "(deg)"
    expect(unitOf('S1000002')).toBe('kPa'); // CNT, "(kPa)"
  });

  it('maps the remaining catalogue units to UDUNITS', () => {
    expect(unitOf('S0000003')).toBe('degree');
    expect(unitOf('USLAB000081')).toBe('1');
    expect(unitOf('RUSSEG000005')).toBe('m');
    expect(unitOf('NOT_AN_ITEM')).toBe('1');
  });

  it('gives every default item a unit', () => {
    for (const id of DEFAULT_ISS_ITEMS) expect(unitOf(id)).not.toBe('');
  });
});
