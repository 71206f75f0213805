import { useState } from 'preact/hooks';
import type { DatasetsAnswer, RebuildAnswer } from '../../../src/console/console-api.ts';
import { enc, errorText, postJson, safeHref } from '../api.ts';
import { useEvents } from '../events.ts';
import { age, bytes, dash, num, time } from '../format.ts';
import { useLoad } from '../load.ts';
import { mergeWindows } from '../merge.ts';
import { useSession } from '../session.tsx';

type Dataset = DatasetsAnswer['datasets'][number];

function Timeline(props: { dataset: Dataset }) {
  // Oldest on the left, as a time axis reads; each window one cell coloured by its state.
  const windows = [...props.dataset.windows].reverse();
  if (windows.length === 0) return <p class="muted">No windows yet.</p>;
  return (
    <div class="timeline" role="img" aria-label={`${props.dataset.name} windows by state`}>
      {windows.map((w) => (
        <span
          key={w.start}
          class={`cell ${w.state}`}
          title={`${time(w.start)} to ${time(w.end)}: ${w.state}${w.version !== null ? `, version ${w.version}` : ''}`}
        />
      ))}
      <span class="ends">
        <span>{time(windows[0]?.start)}</span>
        <span>{time(windows[windows.length - 1]?.end)}</span>
      </span>
    </div>
  );
}

function Rebuild(props: { dataset: string; start: string; onDone: () => void }) {
  const [state, setState] = useState<string | null>(null);
  return (
    <>
      <button
        type="button"
        onClick={() => {
          setState('asking…');
          postJson<RebuildAnswer>(
            `datasets/${enc(props.dataset)}/windows/${enc(props.start)}/rebuild`,
            {},
          ).then(
            (a) => {
              setState(a.state);
              props.onDone();
            },
            (err: unknown) => setState(errorText(err)),
          );
        }}
      >
        Rebuild
      </button>
      {state ? <span class="note">{state}</span> : null}
    </>
  );
}

export function Datasets() {
  // Without FB_ADMIN_TOKEN nothing can be rebuilt from here: no buttons that can only fail.
  const readOnly = useSession().session?.writable === false;
  const answer = useLoad<DatasetsAnswer>('datasets');
  useEvents({
    datasets: (ev) =>
      answer.set((prev) => {
        if (!prev) return prev;
        return {
          datasets: prev.datasets.map((d) =>
            d.name === ev.dataset ? { ...d, windows: mergeWindows(d.windows, ev.windows) } : d,
          ),
        };
      }),
  });
  return (
    <main>
      <h1>Datasets</h1>
      {answer.error ? <p class="error">{answer.error}</p> : null}
      {answer.data?.datasets.length === 0 ? <p class="muted">No datasets are configured.</p> : null}
      <p class="legend">
        {['waiting', 'due', 'building', 'built', 'provisional', 'failed'].map((s) => (
          <span key={s}>
            <span class={`cell ${s}`} /> {s}
          </span>
        ))}
      </p>
      {answer.data?.datasets.map((d) => (
        <section key={d.name} class="dataset" data-dataset={d.name}>
          <h2>
            {d.name} {d.title ? <span class="muted">{d.title}</span> : null}
          </h2>
          <p class="muted">windows of {age(d.windowS)}</p>
          <Timeline dataset={d} />
          <table class="grid windows">
            <thead>
              <tr>
                <th>Start</th>
                <th>End</th>
                <th>State</th>
                <th class="num">Version</th>
                <th class="num">Rows</th>
                <th class="num">Size</th>
                <th>Built</th>
                <th>Downloads</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {d.windows.map((w) => (
                <tr key={w.start} data-window={w.start} data-state={w.state}>
                  <td>{time(w.start)}</td>
                  <td>{time(w.end)}</td>
                  <td class="state">
                    <span class={`cell ${w.state}`} /> {w.state}
                    {w.lastError ? <div class="error">{w.lastError}</div> : null}
                  </td>
                  <td class="num">{num(w.version)}</td>
                  <td class="num">{num(w.rows)}</td>
                  <td class="num">{bytes(w.bytes)}</td>
                  <td>{time(w.builtAt)}</td>
                  <td>
                    {safeHref(w.arrowUrl) ? (
                      <a href={safeHref(w.arrowUrl) as string} download>
                        Arrow
                      </a>
                    ) : (
                      dash
                    )}{' '}
                    {safeHref(w.geoparquetUrl) ? (
                      <a href={safeHref(w.geoparquetUrl) as string} download>
                        GeoParquet
                      </a>
                    ) : null}
                  </td>
                  <td>
                    {readOnly ? null : <Rebuild dataset={d.name} start={w.start} onDone={answer.reload} />}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ))}
    </main>
  );
}
