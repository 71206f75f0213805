import { useState } from 'preact/hooks';
import type { SensorsChanged } from '../../../src/console/console-api.ts';
import { ApiFailure, enc, errorText, postJson } from '../api.ts';

/** The decoders an edge knows (edge/src/decode/registry.ts); the collector checks the rest. */
export const decoders = ['number', 'json', 'senml', 'zigbee2mqtt', 'tasmota', 'shelly', 'esphome'];

/**
 * Builds the sensor of the form as the edge's YAML would hold it. Only what the browser can tell
 * is checked here (JSON syntax, numbers); the collector validates the sensor with the edges' schema.
 */
export function sensorFromForm(f: {
  topic: string;
  decoder: string;
  options: string;
  station: string;
  lat: string;
  lon: string;
}): { sensor: Record<string, unknown> } | { problems: string[] } {
  const problems: string[] = [];
  let options: Record<string, unknown> = {};
  if (f.options.trim()) {
    try {
      const parsed: unknown = JSON.parse(f.options);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        problems.push('decoder options: a JSON object is expected, e.g. {"variable":"co2","unit":"ppm"}');
      } else options = parsed as Record<string, unknown>;
    } catch (err) {
      problems.push(`decoder options: not JSON (${errorText(err)})`);
    }
  }
  const sensor: Record<string, unknown> = { topic: f.topic.trim(), decoder: { ...options, type: f.decoder } };
  if (f.station.trim()) sensor.station = f.station.trim();
  for (const key of ['lat', 'lon'] as const) {
    const raw = f[key].trim();
    if (!raw) continue;
    const n = Number(raw);
    if (Number.isFinite(n)) sensor[key] = n;
    else problems.push(`${key}: a number is expected, got "${raw}"`);
  }
  return problems.length > 0 ? { problems } : { sensor };
}

const empty = { topic: '', decoder: 'number', options: '', station: '', lat: '', lon: '' };

export function SensorForm(props: { edge: string; onChanged: (answer: SensorsChanged) => void }) {
  const [f, setF] = useState(empty);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ message: string; reasons: string[] } | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const field = (key: keyof typeof empty) => ({
    name: key,
    value: f[key],
    onInput: (ev: Event) => setF({ ...f, [key]: (ev.target as HTMLInputElement).value }),
  });
  return (
    <form
      class="sensor-form"
      onSubmit={(ev) => {
        ev.preventDefault();
        setError(null);
        setDone(null);
        const built = sensorFromForm(f);
        if ('problems' in built) {
          setError({ message: 'The sensor is not complete:', reasons: built.problems });
          return;
        }
        setBusy(true);
        postJson<SensorsChanged>(`edges/${enc(props.edge)}/sensors`, built)
          .then(
            (answer) => {
              setDone(`added ${String(built.sensor.topic)}, revision ${answer.revision ?? '–'}`);
              setF(empty);
              props.onChanged(answer);
            },
            (err: unknown) =>
              setError({ message: errorText(err), reasons: err instanceof ApiFailure ? err.reasons : [] }),
          )
          .finally(() => setBusy(false));
      }}
    >
      <h3>Add a central sensor</h3>
      <div class="fields">
        <label>
          MQTT topic <input {...field('topic')} placeholder="greenhouse/+station/co2" required />
        </label>
        <label>
          Decoder{' '}
          <select {...field('decoder')}>
            {decoders.map((d) => (
              <option key={d} value={d}>
                {d}
              </option>
            ))}
          </select>
        </label>
        <label>
          Decoder options (JSON) <input {...field('options')} placeholder='{"variable":"co2","unit":"ppm"}' />
        </label>
        <label>
          Station <input {...field('station')} placeholder="from the topic's +station" />
        </label>
        <label>
          Latitude <input {...field('lat')} inputMode="decimal" size={8} />
        </label>
        <label>
          Longitude <input {...field('lon')} inputMode="decimal" size={8} />
        </label>
      </div>
      <button type="submit" disabled={busy}>
        Add sensor
      </button>
      {done ? <p class="ok">{done}</p> : null}
      {error ? (
        <div class="error" role="alert">
          <p>{error.message}</p>
          {error.reasons.length > 0 ? (
            <ul>
              {error.reasons.map((r) => (
                <li key={r}>{r}</li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
    </form>
  );
}
