import { ISS_CLOCK_ITEM } from './isslive-schema.js';

/**
 * Items subscribed when the config names none: the clock first (so its snapshot, and with it the
 * signal state, arrives before the others), then a spread over every console, favouring items
 * that have real recordings and a known delivered unit. All ids come from `isslive-items.json`
 * (a unit test holds them to it).
 */
export const DEFAULT_ISS_ITEMS: readonly string[] = Object.freeze([
  ISS_CLOCK_ITEM,
  // ADCO: attitude and control moment gyroscopes
  'USLAB000006',
  'USLAB000009',
  'USLAB000010',
  'USLAB000012',
  'USLAB000018',
  'USLAB000019',
  'USLAB000020',
  'USLAB000021',
  'USLAB000022',
  'USLAB000025',
  'USLAB000038',
  'USLAB000039',
  'USLAB000040',
  'USLAB000045',
  'Z1000001',
  'Z1000005',
  'Z1000009',
  // ADCO/TOPO: J2000 state vector (km, m/s)
  'USLAB000032',
  'USLAB000033',
  'USLAB000034',
  'USLAB000035',
  'USLAB000036',
  'USLAB000037',
  // ETHOS: cabin atmosphere, water and oxygen
  'USLAB000053',
  'USLAB000054',
  'USLAB000055',
  'USLAB000058',
  'USLAB000059',
  'USLAB000060',
  'USLAB000061',
  'NODE3000001',
  'NODE3000002',
  'NODE3000003',
  'NODE3000005',
  'NODE3000008',
  'NODE3000009',
  'NODE3000011',
  'NODE3000012',
  'NODE2000006',
  'AIRLOCK000049',
  'AIRLOCK000054',
  // EVA: airlock umbilical power
  'AIRLOCK000001',
  'AIRLOCK000002',
  // ODIN / VVO: station mode and commanding
  'USLAB000081',
  'USLAB000082',
  'USLAB000086',
  'RUSSEG000001',
  // CATO: communications
  'USLAB000092',
  'USLAB000095',
  'Z1000013',
  'Z1000014',
  'Z1000015',
  'S1000004',
  'S1000005',
  // SPARTAN: radiators, rotary joints, cooling loops and solar arrays
  'S0000001',
  'S0000002',
  'S0000003',
  'S0000004',
  'S1000001',
  'S1000002',
  'S1000003',
  'P1000001',
  'P1000002',
  'P1000003',
  'S4000001',
  'S4000002',
  'P4000001',
  'P4000002',
  'S4000007',
  'P4000007',
]);
