import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type {
  EdgeAnswer,
  Point,
  RejectsAnswer,
  SensorsChanged,
  SeriesAnswer,
} from '../../../src/console/console-api.ts';
import { deleteJson, enc, errorText, getJson } from '../api.ts';
import { Plot } from '../components/Plot.tsx';
import { SensorForm } from '../components/SensorForm.tsx';
import { maxSubscriptions, type Subscription, useEvents } from '../events.ts';
import { age, dash, num, time } from '../format.ts';
import { useLoad } from '../load.ts';
import { appendPoints, mergePoints } from '../merge.ts';
import { useSession } from '../session.tsx';

/** How far back an edge page's plots start. */
const plotSinceMs = 60 * 60 * 1000;
/** The edge's details are fetched again on its heartbeats, at most this often. */
const refreshEveryMs = 5000;

const key = (s: { station: string; variable: string }) => `${s.station}\u0000${s.variable}`;

export function Edge(props: { id: string }) {
  const { id } = props;
  const detail = useLoad<EdgeAnswer>(`edges/${enc(id)}`);
  const rejects = useLoad<RejectsAnswer>(`edges/${enc(id)}/rejects`);
  const [series, setSeries] = useState<Record<string, { unit: string | null; points: Point[] }>>({});
  const lastRefresh = useRef(0);
  const [removeError, setRemoveError] = useState<string | null>(null);

  const subs: Subscription[] = useMemo(() => {
    const out: Subscription[] = [];
    for (const st of detail.data?.stations ?? []) {
      for (const v of st.variables) out.push({ edge: id, station: st.station, variable: v.variable });
    }
    return out.slice(0, maxSubscriptions);
  }, [detail.data, id]);
  const subsKey = subs.map(key).join('|');

  // The first points of each plot; live ones are appended as they come.
  useEffect(() => {
    const since = new Date(Date.now() - plotSinceMs).toISOString();
    for (const s of subs) {
      const k = key(s);
      if (series[k]) continue;
      const q = new URLSearchParams({ station: s.station, variable: s.variable, since });
      getJson<SeriesAnswer>(`edges/${enc(id)}/series?${q}`).then(
        (a) =>
          setSeries((prev) => ({
            ...prev,
            [k]: { unit: a.unit, points: mergePoints(a.points, prev[k]?.points ?? []) },
          })),
        () => setSeries((prev) => (prev[k] ? prev : { ...prev, [k]: { unit: null, points: [] } })),
      );
    }
  }, [subsKey]);

  const live = useEvents(
    {
      fleet: (ev) => {
        if (!ev.edges.some((e) => e.id === id)) return;
        const now = Date.now();
        if (now - lastRefresh.current < refreshEveryMs) return;
        lastRefresh.current = now;
        detail.reload();
      },
      readings: (ev) => {
        if (ev.edge !== id) return;
        const k = key(ev);
        setSeries((prev) => ({
          ...prev,
          [k]: { unit: prev[k]?.unit ?? null, points: appendPoints(prev[k]?.points ?? [], ev.points) },
        }));
      },
    },
    subs,
  );

  const d = detail.data;
  // Without FB_ADMIN_TOKEN the central config is shown, not offered for changes.
  const readOnly = useSession().session?.writable === false;
  const onChanged = (_a: SensorsChanged) => detail.reload();
  return (
    <main>
      <h1>
        Edge <span data-testid="edge-id">{id}</span>{' '}
        {d ? (
          <span class={d.edge.online ? 'badge online' : 'badge offline'}>
            {d.edge.online ? 'online' : 'offline'}
          </span>
        ) : null}
      </h1>
      {detail.error ? <p class="error">{detail.error}</p> : null}
      {d ? (
        <>
          <dl class="facts">
            <dt>Last seen</dt>
            <dd>
              {d.edge.lastSeen ? `${time(d.edge.lastSeen)} (${age(d.edge.lastSeenAgeS)} ago)` : 'never'}
            </dd>
            <dt>Version</dt>
            <dd>{d.edge.version ?? dash}</dd>
            <dt>Buffered</dt>
            <dd>
              {num(d.edge.bufferDepth)} readings, oldest unsent {age(d.edge.oldestUnsentAgeS)}
            </dd>
            <dt>Clock</dt>
            <dd>{d.edge.clock ?? dash}</dd>
            <dt>Central config</dt>
            <dd>
              {d.config?.revision !== null && d.config?.revision !== undefined
                ? `revision ${d.config.revision} applied ${time(d.config.appliedAt)}`
                : 'none applied'}
              {d.config?.error ? (
                <span class="error">
                  {' '}
                  refused revision {d.config.refusedRevision}: {d.config.error}
                </span>
              ) : null}
            </dd>
            <dt>Completeness</dt>
            <dd>
              {d.completeness.readings} readings, {d.completeness.explained.droppedOldest} dropped by the edge
              (explained), {d.completeness.unexplained} unexplained gaps
            </dd>
          </dl>

          <h2>Live plots</h2>
          <p class="muted">
            The last hour of each variable its stations sent in the last day{live ? ', updated live' : ''}.
          </p>
          {subs.length === 0 ? <p class="muted">No readings from this edge in the last day.</p> : null}
          <div class="plots">
            {subs.map((s) => {
              const held = series[key(s)];
              return (
                <Plot
                  key={key(s)}
                  label={`${s.station} ${s.variable}`}
                  unit={held?.unit ?? null}
                  points={held?.points ?? []}
                />
              );
            })}
          </div>

          <h2>Sensors</h2>
          <p class="muted">
            {d.sensorCount ?? dash} sensors in its last heartbeat: its own YAML (local), the central config
            (central) and auto-registered (auto).
          </p>
          <table class="grid sensors">
            <thead>
              <tr>
                <th>Origin</th>
                <th>Topic</th>
                <th>Decoder</th>
                <th>Station</th>
                <th>Last reading</th>
              </tr>
            </thead>
            <tbody>
              {(['local', 'central', 'auto'] as const).flatMap((origin) =>
                d.sensors[origin].map((s) => (
                  <tr key={`${origin}:${s.topic}`} data-topic={s.topic} data-origin={origin}>
                    <td>{origin}</td>
                    <td>
                      <code>{s.topic}</code>
                    </td>
                    <td>{s.decoder}</td>
                    <td>{s.station ?? dash}</td>
                    <td>{time(s.lastReadingTime)}</td>
                  </tr>
                )),
              )}
            </tbody>
          </table>

          <h2>Central config</h2>
          {d.central.invalid ? (
            <p class="error">The stored config is refused by the edges: {d.central.invalid}</p>
          ) : null}
          <p class="muted">
            Key edge.{id}: revision {d.central.revision ?? dash}; the fleet-wide key (all) adds{' '}
            {d.central.all.length}.
          </p>
          <table class="grid central">
            <thead>
              <tr>
                <th>Topic</th>
                <th>Decoder</th>
                <th>Station</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {d.central.sensors.map((s) => (
                <tr key={s.topic} data-central-topic={s.topic}>
                  <td>
                    <code>{s.topic}</code>
                  </td>
                  <td>{decoderName(s.decoder)}</td>
                  <td>{typeof s.station === 'string' ? s.station : dash}</td>
                  <td>
                    <button
                      type="button"
                      hidden={readOnly}
                      onClick={() => {
                        setRemoveError(null);
                        deleteJson<SensorsChanged>(`edges/${enc(id)}/sensors?topic=${enc(s.topic)}`).then(
                          () => detail.reload(),
                          (err: unknown) => setRemoveError(errorText(err)),
                        );
                      }}
                    >
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {removeError ? <p class="error">{removeError}</p> : null}
          {readOnly ? (
            <p class="muted">
              Read-only: set FB_ADMIN_TOKEN on the collector to change the central config here.
            </p>
          ) : (
            <SensorForm edge={id} onChanged={onChanged} />
          )}
        </>
      ) : null}

      <h2>Recent rejects</h2>
      <p>
        <button type="button" onClick={rejects.reload}>
          Ask the edge again
        </button>
      </p>
      {rejects.error ? <p class="error">{rejects.error}</p> : null}
      {rejects.data ? (
        rejects.data.rejects.length === 0 ? (
          <p class="muted">None kept.</p>
        ) : (
          <table class="grid rejects">
            <thead>
              <tr>
                <th>At</th>
                <th>Source</th>
                <th>Topic</th>
                <th>Reason</th>
                <th>Payload</th>
              </tr>
            </thead>
            <tbody>
              {rejects.data.rejects.map((r, i) => (
                <tr key={`${r.at}:${i}`}>
                  <td>{time(r.at)}</td>
                  <td>{r.source}</td>
                  <td>
                    <code>{r.topic}</code>
                  </td>
                  <td>{r.reason}</td>
                  <td>
                    <code class="payload">{r.payload}</code>
                    {r.truncated ? <span class="muted"> ({r.payloadBytes} bytes, cut)</span> : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      ) : null}
    </main>
  );
}

function decoderName(decoder: unknown): string {
  if (typeof decoder === 'string') return decoder;
  if (decoder && typeof decoder === 'object' && typeof (decoder as { type?: unknown }).type === 'string') {
    return (decoder as { type: string }).type;
  }
  return dash;
}
