import { useEffect, useMemo, useState } from 'preact/hooks';
import type { IssAnswer, Point } from '../../../src/console/console-api.ts';
import { Plot } from '../components/Plot.tsx';
import { maxSubscriptions, type Subscription, useEvents } from '../events.ts';
import { time } from '../format.ts';
import { useLoad } from '../load.ts';
import { appendPoints } from '../merge.ts';
import { edgeHref } from '../router.ts';

const key = (s: { edge: string; station: string; variable: string }) =>
  `${s.edge}\u0000${s.station}\u0000${s.variable}`;

/** The connection state is asked again this often; the items' values come live. */
const stateEveryMs = 10_000;

export function Iss() {
  const answer = useLoad<IssAnswer>('iss', stateEveryMs);
  const [points, setPoints] = useState<Record<string, Point[]>>({});
  const subs: Subscription[] = useMemo(
    () =>
      (answer.data?.edges ?? [])
        .flatMap((e) => e.items.map((i) => ({ edge: e.edge, station: i.station, variable: i.variable })))
        .slice(0, maxSubscriptions),
    [answer.data],
  );
  // Each answer's points are the recent history; keep what came live since.
  useEffect(() => {
    setPoints((prev) => {
      const next: Record<string, Point[]> = {};
      for (const e of answer.data?.edges ?? []) {
        for (const i of e.items) {
          const k = key({ edge: e.edge, ...i });
          next[k] = appendPoints(i.points, prev[k] ?? []);
        }
      }
      return next;
    });
  }, [answer.data]);
  useEvents(
    {
      readings: (ev) =>
        setPoints((prev) => {
          const k = key(ev);
          return k in prev ? { ...prev, [k]: appendPoints(prev[k] ?? [], ev.points) } : prev;
        }),
    },
    subs,
  );
  return (
    <main>
      <h1>ISS</h1>
      {answer.error ? <p class="error">{answer.error}</p> : null}
      {answer.data && answer.data.edges.length === 0 ? (
        <p class="muted">No edge reports an ISS source.</p>
      ) : null}
      {answer.data?.edges.map((e) => (
        <section key={e.edge} class="iss" data-edge={e.edge}>
          <h2>
            <a href={edgeHref(e.edge)}>{e.edge}</a>{' '}
            <span class={e.online ? 'badge online' : 'badge offline'}>{e.online ? 'online' : 'offline'}</span>
          </h2>
          <dl class="facts">
            <dt>Connection</dt>
            <dd data-testid="iss-state">{e.state}</dd>
            <dt>Last update</dt>
            <dd>{time(e.lastUpdateTime)}</dd>
          </dl>
          <div class="plots">
            {e.items.map((i) => {
              const k = key({ edge: e.edge, ...i });
              return (
                <Plot
                  key={k}
                  label={`${i.station} ${i.variable}`}
                  unit={i.unit}
                  points={points[k] ?? i.points}
                />
              );
            })}
          </div>
        </section>
      ))}
    </main>
  );
}
