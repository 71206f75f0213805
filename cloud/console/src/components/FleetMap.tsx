import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { FleetEdge } from '../../../src/console/console-api.ts';

/** Tick labels in degrees with as many decimals as the tick spacing needs (0.01° apart: two). */
function degrees(_u: uPlot, ticks: number[], _axis: number, _space: number, incr: number): string[] {
  const decimals = Math.min(5, Math.max(0, Math.ceil(-Math.log10(incr))));
  return ticks.map((t) => `${t.toFixed(decimals)}°`);
}

/**
 * Where the edges are: an equirectangular plot (longitude across, latitude up) drawn by uPlot as
 * points, online and offline in two series. No map tiles: it works without Internet access.
 */
export function FleetMap(props: { edges: FleetEdge[] }) {
  const box = useRef<HTMLDivElement>(null);
  const placed = props.edges.filter((e) => e.lat !== null && e.lon !== null);

  useEffect(() => {
    const el = box.current;
    if (!el || placed.length === 0) return;
    // uPlot wants one ascending x column: sort by longitude, one y column per series (null = absent).
    const rows = [...placed].sort((a, b) => (a.lon as number) - (b.lon as number));
    const xs = rows.map((e) => e.lon as number);
    const online = rows.map((e) => (e.online ? (e.lat as number) : null));
    const offline = rows.map((e) => (e.online ? null : (e.lat as number)));
    const pad = (lo: number, hi: number, min: number, max: number): [number, number] => {
      const span = Math.max(hi - lo, 0.5);
      return [Math.max(min, lo - span * 0.1), Math.min(max, hi + span * 0.1)];
    };
    const lats = rows.map((e) => e.lat as number);
    const xr = pad(Math.min(...xs), Math.max(...xs), -180, 180);
    const yr = pad(Math.min(...lats), Math.max(...lats), -90, 90);
    const point = (fill: string): uPlot.Series => ({
      paths: () => null,
      points: { show: true, size: 9, fill, stroke: fill },
    });
    const u = new uPlot(
      {
        width: Math.max(240, el.clientWidth),
        height: 260,
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: false, range: xr }, y: { range: yr } },
        axes: [
          { label: 'longitude', values: degrees },
          { label: 'latitude', values: degrees, size: 70 },
        ],
        series: [{}, { label: 'online', ...point('#1f6f5c') }, { label: 'offline', ...point('#b3261e') }],
      },
      [xs, online, offline],
      el,
    );
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(240, el.clientWidth), height: 260 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
    };
  }, [placed.map((e) => `${e.id}:${e.lat}:${e.lon}:${e.online}`).join('|')]);

  if (placed.length === 0) return null;
  return (
    <section class="map" aria-label="map">
      <h2>Map</h2>
      <p class="muted">
        {placed.length} of {props.edges.length} edges with coordinates (their stations' newest position);
        green online, red offline.
      </p>
      <div ref={box} />
    </section>
  );
}
