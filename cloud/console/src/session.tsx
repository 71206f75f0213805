import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useState } from 'preact/hooks';
import type { SessionAnswer } from '../../src/console/console-api.ts';
import { errorText, getJson, postJson } from './api.ts';

interface SessionState {
  session: SessionAnswer | null;
  refresh: () => void;
}

const SessionContext = createContext<SessionState>({ session: null, refresh: () => {} });

export function useSession(): SessionState {
  return useContext(SessionContext);
}

export function SessionProvider(props: { children: preact.ComponentChildren }) {
  const [session, setSession] = useState<SessionAnswer | null>(null);
  const refresh = useCallback(() => {
    getJson<SessionAnswer>('session').then(setSession, () => setSession(null));
  }, []);
  useEffect(refresh, []);
  return <SessionContext.Provider value={{ session, refresh }}>{props.children}</SessionContext.Provider>;
}

/** The header's login: the admin token (FB_ADMIN_TOKEN) sets an HttpOnly session cookie. */
export function LoginBox() {
  const { session, refresh } = useSession();
  const [open, setOpen] = useState(false);
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  if (!session) return null;
  if (!session.writable) {
    return (
      <span class="session muted" title="FB_ADMIN_TOKEN is not set on the collector">
        read-only
      </span>
    );
  }
  if (session.loggedIn) {
    return (
      <span class="session">
        <span class="muted">logged in</span>{' '}
        <button
          type="button"
          onClick={() => {
            postJson('/console/logout', {}).finally(refresh);
          }}
        >
          Log out
        </button>
      </span>
    );
  }
  if (!open) {
    return (
      <span class="session">
        <button type="button" onClick={() => setOpen(true)}>
          Log in
        </button>
      </span>
    );
  }
  return (
    <form
      class="session login"
      onSubmit={(ev) => {
        ev.preventDefault();
        setError(null);
        postJson('/console/login', { token }).then(
          () => {
            setToken('');
            setOpen(false);
            refresh();
          },
          (err: unknown) => setError(errorText(err)),
        );
      }}
    >
      <label>
        Admin token{' '}
        <input
          type="password"
          name="token"
          autocomplete="current-password"
          value={token}
          onInput={(ev) => setToken((ev.target as HTMLInputElement).value)}
        />
      </label>{' '}
      <button type="submit">Log in</button>{' '}
      <button type="button" onClick={() => setOpen(false)}>
        Cancel
      </button>
      {error ? <span class="error">{error}</span> : null}
    </form>
  );
}
