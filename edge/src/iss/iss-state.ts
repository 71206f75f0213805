import type { IssState } from '@fieldbeam/protocol';
import type { IssSourceStatus } from './iss-source.js';

/**
 * The ISS source as the heartbeat reports it: `streaming` (connected and subscribed, with signal),
 * `no_signal` (streaming, but the station reports loss of signal), `connecting` or `disconnected`,
 * and when the last item update arrived.
 */
export function issState(s: IssSourceStatus): IssState {
  const state = !s.connected
    ? s.connection.startsWith('CONNECTING')
      ? 'connecting'
      : 'disconnected'
    : !s.subscribed
      ? 'connecting'
      : s.signal === 'lost'
        ? 'no_signal'
        : 'streaming';
  return { state, lastUpdateTime: s.lastUpdateMs === null ? null : new Date(s.lastUpdateMs).toISOString() };
}
