import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { Point } from '../../../src/console/console-api.ts';

/** Time ticks in UTC, 24-hour: `HH:MM:SS` (`HH:MM` on whole minutes), with the date over two days. */
function utcTicks(u: uPlot, ticks: number[]): string[] {
  const span = (u.scales.x?.max ?? 0) - (u.scales.x?.min ?? 0);
  const wholeMinutes = ticks.every((t) => t % 60 === 0);
  return ticks.map((t) => {
    const iso = new Date(t * 1000).toISOString();
    if (span > 2 * 86400) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
    return wholeMinutes ? iso.slice(11, 16) : iso.slice(11, 19);
  });
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
        axes: [
          { values: utcTicks, label: 'UTC' },
          { label: unit ?? '', size: 60 },
        ],
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
