import type { IngestAnswer } from '../../../src/console/console-api.ts';
import { useEvents } from '../events.ts';
import { dash, num, rate, time } from '../format.ts';
import { useLoad } from '../load.ts';

export function Ingest() {
  const answer = useLoad<IngestAnswer>('ingest');
  const live = useEvents({ ingest: (ev) => answer.set(() => ev) });
  const a = answer.data;
  return (
    <main>
      <h1>Ingest</h1>
      {answer.error ? <p class="error">{answer.error}</p> : null}
      {a ? (
        <>
          <p class="muted">
            As of {time(a.generatedAt)}
            {live ? ', updated live' : ''}.
          </p>
          <dl class="facts">
            <dt>Stored per second</dt>
            <dd data-testid="rate-1m">
              {rate(a.rates.perSLastMinute)} over the last minute, {rate(a.rates.perSLast10Minutes)} over 10
              minutes
            </dd>
            <dt>Lag behind the stream</dt>
            <dd data-testid="lag">
              {num(a.lag.pending)} messages not yet delivered, {num(a.lag.ackPending)} in flight
            </dd>
            <dt>Dead letters</dt>
            <dd data-testid="dead-total">{num(a.deadLetters.total)}</dd>
          </dl>
          <h2>Dead letters by reason</h2>
          {a.deadLetters.byReason.length === 0 ? (
            <p class="muted">None.</p>
          ) : (
            <table class="grid reasons">
              <thead>
                <tr>
                  <th>Reason</th>
                  <th class="num">Count</th>
                </tr>
              </thead>
              <tbody>
                {a.deadLetters.byReason.map((r) => (
                  <tr key={r.reason}>
                    <td>{r.reason}</td>
                    <td class="num">{num(r.count)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h2>Newest dead letters</h2>
          {a.deadLetters.newest.length === 0 ? (
            <p class="muted">None.</p>
          ) : (
            <table class="grid dead">
              <thead>
                <tr>
                  <th>Id</th>
                  <th>At</th>
                  <th>Subject</th>
                  <th>Reason</th>
                  <th class="num">Stream seq</th>
                </tr>
              </thead>
              <tbody>
                {a.deadLetters.newest.map((d) => (
                  <tr key={d.id}>
                    <td>{d.id}</td>
                    <td>{time(d.at)}</td>
                    <td>
                      <code>{d.subject}</code>
                    </td>
                    <td>{d.reason}</td>
                    <td class="num">{d.streamSeq ?? dash}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <p class="muted">
            Each is kept in the collector's dead_letters table with its payload (fieldbeam-cloud
            dead-letters).
          </p>
        </>
      ) : null}
    </main>
  );
}
