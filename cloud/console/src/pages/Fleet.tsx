import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { FleetAnswer, FleetEdge } from '../../../src/console/console-api.ts';
import { FleetMap } from '../components/FleetMap.tsx';
import { useEvents } from '../events.ts';
import { age, dash, num, rate } from '../format.ts';
import { useLoad } from '../load.ts';
import { mergeFleet } from '../merge.ts';
import { edgeHref } from '../router.ts';

type Key =
  | 'id'
  | 'online'
  | 'lastSeenAgeS'
  | 'version'
  | 'bufferDepth'
  | 'oldestUnsentAgeS'
  | 'inPerS'
  | 'outPerS'
  | 'clock'
  | 'sensors';

const columns: { key: Key; label: string; show: (e: FleetEdge) => string; numeric?: boolean }[] = [
  { key: 'id', label: 'Edge', show: (e) => e.id },
  { key: 'online', label: 'State', show: (e) => (e.online ? 'online' : 'offline') },
  {
    key: 'lastSeenAgeS',
    label: 'Last seen',
    // Replaced in the table by the age as of now (see `seenAgo`).
    show: (e) => (e.lastSeen ? `${age(e.lastSeenAgeS)} ago` : 'never'),
    numeric: true,
  },
  { key: 'version', label: 'Version', show: (e) => e.version ?? dash },
  { key: 'bufferDepth', label: 'Buffered', show: (e) => num(e.bufferDepth), numeric: true },
  { key: 'oldestUnsentAgeS', label: 'Oldest unsent', show: (e) => age(e.oldestUnsentAgeS), numeric: true },
  { key: 'inPerS', label: 'In/s', show: (e) => rate(e.inPerS), numeric: true },
  { key: 'outPerS', label: 'Out/s', show: (e) => rate(e.outPerS), numeric: true },
  { key: 'clock', label: 'Clock', show: (e) => e.clock ?? dash },
  { key: 'sensors', label: 'Sensors', show: (e) => num(e.sensors), numeric: true },
];

function compare(a: FleetEdge, b: FleetEdge, key: Key): number {
  const x = a[key];
  const y = b[key];
  // Unknown figures sort last whichever the direction; ties fall back to the id.
  if (x === null && y === null) return a.id.localeCompare(b.id);
  if (x === null) return 1;
  if (y === null) return -1;
  if (typeof x === 'number' && typeof y === 'number') return x - y || a.id.localeCompare(b.id);
  if (typeof x === 'boolean' && typeof y === 'boolean')
    return Number(y) - Number(x) || a.id.localeCompare(b.id);
  return String(x).localeCompare(String(y)) || a.id.localeCompare(b.id);
}

export function matches(e: FleetEdge, filter: string): boolean {
  if (!filter) return true;
  const f = filter.toLowerCase();
  if (f === 'online') return e.online;
  if (f === 'offline') return !e.online;
  return [e.id, e.version, e.clock, e.uplink].some((v) => v?.toLowerCase().includes(f));
}

/**
 * Rows drawn until asked for all: a fleet of thousands renders its first screen fast; the filter and
 * the sorting apply to every edge.
 */
const pageRows = 200;

export function Fleet() {
  const fleet = useLoad<FleetAnswer>('fleet');
  const [sort, setSort] = useState<{ key: Key; desc: boolean }>({ key: 'id', desc: false });
  const [filter, setFilter] = useState('');
  const [showAll, setShowAll] = useState(false);
  // A row's age is the collector's figure when the row came plus the time since, so an edge that
  // went quiet (its row no longer changes) keeps ageing on the page; the browser's clock may differ.
  const received = useRef(new Map<string, number>());
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const at = Date.now();
    for (const e of fleet.data?.edges ?? []) if (!received.current.has(e.id)) received.current.set(e.id, at);
  }, [fleet.data]);
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  const seenAgo = (e: FleetEdge) => {
    if (!e.lastSeen || e.lastSeenAgeS === null) return 'never';
    const at = received.current.get(e.id) ?? now;
    return `${age(e.lastSeenAgeS + Math.max(0, now - at) / 1000)} ago`;
  };
  const live = useEvents({
    fleet: (ev) =>
      fleet.set((prev) => {
        if (!prev) return prev;
        const at = Date.now();
        for (const e of ev.edges) received.current.set(e.id, at);
        return {
          ...prev,
          edges: mergeFleet(prev.edges, ev.edges),
          online: ev.online,
          generatedAt: new Date().toISOString(),
        };
      }),
  });

  const rows = useMemo(() => {
    const all = fleet.data?.edges ?? [];
    const shown = all.filter((e) => matches(e, filter.trim()));
    shown.sort((a, b) => (sort.desc ? -1 : 1) * compare(a, b, sort.key));
    return shown;
  }, [fleet.data, sort, filter]);

  const edges = fleet.data?.edges ?? [];
  const online = edges.filter((e) => e.online).length;
  return (
    <main>
      <h1>Fleet</h1>
      {fleet.error ? <p class="error">{fleet.error}</p> : null}
      {fleet.data ? (
        <p class="summary" data-testid="fleet-summary">
          {edges.length} edges, {online} online, {edges.length - online} offline
          <span class={live ? 'live on' : 'live'}>{live ? 'live' : 'not live'}</span>
        </p>
      ) : (
        <p class="muted">loading…</p>
      )}
      <FleetMap edges={edges} />
      <p>
        <label>
          Filter{' '}
          <input
            type="search"
            name="filter"
            placeholder="id, version, clock, uplink; online; offline"
            value={filter}
            onInput={(ev) => setFilter((ev.target as HTMLInputElement).value)}
          />
        </label>{' '}
        {filter ? <span class="muted">{rows.length} match</span> : null}
      </p>
      <table class="grid fleet">
        <thead>
          <tr>
            {columns.map((c) => (
              <th
                key={c.key}
                class={c.numeric ? 'num' : ''}
                aria-sort={sort.key === c.key ? (sort.desc ? 'descending' : 'ascending') : 'none'}
              >
                <button
                  type="button"
                  class="sort"
                  data-sort={c.key}
                  onClick={() => setSort((s) => ({ key: c.key, desc: s.key === c.key ? !s.desc : false }))}
                >
                  {c.label}
                  {sort.key === c.key ? (sort.desc ? ' ▼' : ' ▲') : ''}
                </button>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {(showAll ? rows : rows.slice(0, pageRows)).map((e) => (
            <tr key={e.id} data-edge={e.id} class={e.online ? 'online' : 'offline'}>
              {columns.map((c) => (
                <td
                  key={c.key}
                  data-col={c.key}
                  class={c.numeric ? 'num' : c.key === 'online' ? 'state' : ''}
                >
                  {c.key === 'id' ? (
                    <a href={edgeHref(e.id)}>{e.id}</a>
                  ) : c.key === 'lastSeenAgeS' ? (
                    seenAgo(e)
                  ) : (
                    c.show(e)
                  )}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length > pageRows && !showAll ? (
        <p class="muted">
          {rows.length - pageRows} more edges.{' '}
          <button type="button" onClick={() => setShowAll(true)}>
            Show all {rows.length}
          </button>
        </p>
      ) : null}
    </main>
  );
}
