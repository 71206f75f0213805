import { type Observation, ObservationBatch, observationId, subjects } from '@fieldbeam/protocol';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

/** Station `st-<i>` stands at a fixed place, so GeoParquet geometry and bbox queries have something to find. */
export const stationPosition = (i: number) => ({ lat: 46 + i * 0.01, lon: 7 + i * 0.01 });

/** A reading as an edge would send it (id derived by the protocol). */
export function reading(opts: {
  edge: string;
  station: number;
  time: number;
  value: number;
  variable?: string;
  unit?: string;
  noPosition?: boolean;
  quality?: string[];
}): Observation {
  const station = `st-${opts.station}`;
  const variable = opts.variable ?? 'air_temperature';
  const time = new Date(opts.time).toISOString();
  const o: Observation = {
    id: observationId({ source: 'mqtt', station, variable, time, value: opts.value }),
    source: 'mqtt',
    edge: opts.edge,
    station,
    variable,
    value: opts.value,
    unit: opts.unit ?? 'degC',
    time,
    received: time,
    ...(opts.noPosition ? {} : stationPosition(opts.station)),
    ...(opts.quality ? { quality: opts.quality } : {}),
  };
  return o;
}

/** Publishes observations as edge batches of up to 500 on `fb.obs.<edge>`, awaiting every PubAck. */
export async function publishObservations(
  natsUrl: string,
  edge: string,
  observations: Observation[],
): Promise<number> {
  const nc = await connect({ servers: natsUrl });
  try {
    const js = jetstream(nc);
    const enc = new TextEncoder();
    const bufferId = Math.random().toString(36).slice(2, 10);
    const pending: Promise<unknown>[] = [];
    let seq = 0;
    let batches = 0;
    for (let i = 0; i < observations.length; i += 500) {
      const chunk = observations.slice(i, i + 500);
      const batch: ObservationBatch = {
        v: 1,
        edge,
        seq: [seq + 1, seq + chunk.length],
        sent: new Date().toISOString(),
        observations: chunk,
      };
      ObservationBatch.parse(batch);
      pending.push(
        js.publish(subjects.obs(edge), enc.encode(JSON.stringify(batch)), {
          msgID: `${edge}:${bufferId}:${seq + 1}-${seq + chunk.length}`,
        }),
      );
      seq += chunk.length;
      batches++;
      if (pending.length >= 256) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    return batches;
  } finally {
    await nc.close();
  }
}
