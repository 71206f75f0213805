import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { Point } from '../../../src/console/console-api.ts';

/** Points kept per plot: a live plot drops its oldest beyond this, so a long-open page stays small. */
export const maxPoints = 2000;

/** Appends live points after the newest one held (older or equal times are already there). */
export function appendPoints(held: Point[], incoming: Point[]): Point[] {
  const last = held.length > 0 ? (held[held.length - 1] as Point)[0] : Number.NEGATIVE_INFINITY;
  const fresh = incoming.filter((p) => p[0] > last).sort((a, b) => a[0] - b[0]);
  if (fresh.length === 0) return held;
  const all = held.concat(fresh);
  return all.length > maxPoints ? all.slice(all.length - maxPoints) : all;
}

function toData(points: Point[]): uPlot.AlignedData {
  return [points.map((p) => p[0] / 1000), points.map((p) => p[1])];
}

/** A time-series plot (uPlot on a canvas) that follows `points` as they change. */
export function Plot(props: { label: string; unit: string | null; points: Point[]; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const { label, unit, points } = props;
  const height = props.height ?? 180;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const u = new uPlot(
      {
        width: Math.max(200, el.clientWidth),
        height,
        legend: { show: true },
        cursor: { drag: { x: true, y: false } },
        // Times in UTC, as the rest of the console shows them.
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
        scales: { x: { time: true } },
        axes: [{}, { label: unit ?? '', size: 60 }],
        series: [
          {},
          { label: unit ? `${label} (${unit})` : label, stroke: '#1f6f5c', width: 1.5, spanGaps: false },
        ],
      },
      toData([]),
      el,
    );
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [label, unit, height]);

  useEffect(() => {
    plot.current?.setData(toData(points));
  }, [points, label, unit, height]);

  return (
    <figure class="plot" data-plot={label} data-points={points.length}>
      <div ref={box} />
      {points.length === 0 ? <figcaption class="muted">no readings yet</figcaption> : null}
    </figure>
  );
}
