/**
 * Client-side routes under /console/ (the collector serves the shell for any /console/<page> without
 * a dot). An edge's id travels in the query, so ids with any character need no path escaping.
 */
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { page: 'fleet' }
  | { page: 'edge'; id: string }
  | { page: 'datasets' }
  | { page: 'iss' }
  | { page: 'ingest' }
  | { page: 'missing'; path: string };

export function parseRoute(pathname: string, search: string): Route {
  const path = pathname.replace(/\/+$/, '');
  switch (path) {
    case '':
    case '/console':
    case '/console/fleet':
      return { page: 'fleet' };
    case '/console/edge': {
      const id = new URLSearchParams(search).get('id');
      return id ? { page: 'edge', id } : { page: 'fleet' };
    }
    case '/console/datasets':
      return { page: 'datasets' };
    case '/console/iss':
      return { page: 'iss' };
    case '/console/ingest':
      return { page: 'ingest' };
    default:
      return { page: 'missing', path: pathname };
  }
}

export const edgeHref = (id: string): string => `/console/edge?id=${encodeURIComponent(id)}`;

export function navigate(href: string): void {
  history.pushState(null, '', href);
  dispatchEvent(new PopStateEvent('popstate'));
}

/** The current route; follows history changes and same-origin /console/ link clicks. */
export function useRoute(): Route {
  const read = () => parseRoute(location.pathname, location.search);
  const [route, setRoute] = useState<Route>(read);
  useEffect(() => {
    const onPop = () => setRoute(read());
    const onClick = (ev: MouseEvent) => {
      if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey)
        return;
      const a = (ev.target as Element | null)?.closest?.('a');
      if (!a || a.target || a.hasAttribute('download')) return;
      const url = new URL(a.href, location.href);
      if (url.origin !== location.origin || !url.pathname.startsWith('/console/')) return;
      if (url.pathname.startsWith('/console/api/') || /\.[a-z0-9]+$/i.test(url.pathname)) return;
      ev.preventDefault();
      navigate(url.pathname + url.search);
    };
    addEventListener('popstate', onPop);
    document.addEventListener('click', onClick);
    return () => {
      removeEventListener('popstate', onPop);
      document.removeEventListener('click', onClick);
    };
  }, []);
  return route;
}
