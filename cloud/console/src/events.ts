/**
 * Live updates: one EventSource on /console/events per page, with the readings the page subscribes
 * to in its query. The browser reconnects by itself after a drop; the page keeps what it has meanwhile.
 */
import { useEffect, useState } from 'preact/hooks';
import type { ConsoleEvent, ConsoleEventName } from '../../src/console/console-api.ts';

export type Handlers = { [N in ConsoleEventName]?: (data: ConsoleEvent<N>) => void };

/** A readings subscription: one edge's station and variable. */
export interface Subscription {
  edge: string;
  station: string;
  variable: string;
}

/** The server takes at most this many triples per connection. */
export const maxSubscriptions = 20;

export function eventsUrl(subs: Subscription[]): string {
  const q = new URLSearchParams();
  for (const s of subs.slice(0, maxSubscriptions)) {
    q.append('edge', s.edge);
    q.append('station', s.station);
    q.append('variable', s.variable);
  }
  const qs = q.toString();
  return qs ? `/console/events?${qs}` : '/console/events';
}

/**
 * Listens while mounted; reconnects when the subscriptions change. `handlers` is read at each event,
 * so a page may pass a new object every render. Returns whether the stream is connected.
 */
export function useEvents(handlers: Handlers, subs: Subscription[] = []): boolean {
  const url = eventsUrl(subs);
  const [connected, setConnected] = useState(false);
  const current = useCurrent(handlers);
  useEffect(() => {
    const source = new EventSource(url);
    const names: ConsoleEventName[] = ['fleet', 'readings', 'datasets', 'ingest'];
    for (const name of names) {
      source.addEventListener(name, (ev: MessageEvent<string>) => {
        const handler = current.value[name] as ((d: unknown) => void) | undefined;
        if (!handler) return;
        let data: unknown;
        try {
          data = JSON.parse(ev.data);
        } catch {
          return; // A malformed event is the collector's bug; the next one carries the state again.
        }
        handler(data);
      });
    }
    source.onopen = () => setConnected(true);
    source.onerror = () => setConnected(source.readyState === EventSource.OPEN);
    return () => source.close();
  }, [url, current]);
  return connected;
}

function useCurrent<T>(value: T): { value: T } {
  const [box] = useState(() => ({ value }));
  box.value = value;
  return box;
}
