import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { errorText, getJson } from './api.ts';

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  reload: () => void;
  set: (update: (prev: T | null) => T | null) => void;
}

/**
 * GETs `path` on mount and on `reload()`; with `everyMs`, again at that interval. An answer that
 * arrives after a newer request started is dropped (no stale page after quick navigation).
 */
export function useLoad<T>(path: string | null, everyMs?: number): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const seq = useRef(0);
  const reload = useCallback(() => {
    if (path === null) return;
    const mine = ++seq.current;
    getJson<T>(path).then(
      (d) => {
        if (mine !== seq.current) return;
        setData(d);
        setError(null);
      },
      (err: unknown) => {
        if (mine === seq.current) setError(errorText(err));
      },
    );
  }, [path]);
  useEffect(() => {
    reload();
    if (!everyMs) return;
    const t = setInterval(reload, everyMs);
    return () => clearInterval(t);
  }, [reload, everyMs]);
  return { data, error, reload, set: setData };
}
