/**
 * The buffer thread: owns the SQLite buffer file and the forwarder with its own JetStream connection.
 *
 * Why this split: in the profile of the agent under load (bench/results/edge-profiles), about half of
 * the time goes to MQTT, decoding and building observations, and most of the rest to the group
 * commit, taking batches, encoding them and the uplink's socket. Those halves share nothing but the
 * rows, so each gets a core: the main thread keeps everything that talks to sensors and operators
 * (MQTT, HTTP, control, heartbeats) and serialises each observation once; this thread commits,
 * sends and deletes. Its work arrives one message per turn of the main thread's event loop
 * (`AppendGroup`), and its answers go back the same way (`settled`), so a PUBACK still waits for the
 * commit and rows still leave only on the stream's ack.
 *
 * Failure: anything thrown here ends the thread with an error, which makes the agent log it and exit
 * non-zero (see `startBufferThread`); there is no half-alive agent without its buffer.
 */
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { EdgeError } from '../errors.js';
import { natsOptions, startUplink, type UplinkEvents } from '../forward/uplink.js';
import { type OutboxEvents, openOutbox } from '../outbox/open-outbox.js';
import { OUTCOME_CODES, type SettledError, unpackAppends } from './handoff.js';
import type { BufferReport, BufferThreadData, FromBufferThread, ToBufferThread } from './messages.js';

/** How often the account is reported while it changes without appends (the forwarder's acks, a drain). */
const REPORT_INTERVAL_MS = 100;

const port = parentPort;
if (!port) throw new Error('buffer-worker.js runs as a worker thread of the edge agent');
const { config, capacityBytes } = workerData as BufferThreadData;
const post = (m: FromBufferThread, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);

const outboxEvents: OutboxEvents = {
  corruptFile: (...args) => post({ t: 'outbox', event: { name: 'corruptFile', args } }),
  rejectsDropped: (...args) => post({ t: 'outbox', event: { name: 'rejectsDropped', args } }),
  deliveryClientsForgotten: (...args) =>
    post({ t: 'outbox', event: { name: 'deliveryClientsForgotten', args } }),
  retainedTopicsForgotten: (...args) =>
    post({ t: 'outbox', event: { name: 'retainedTopicsForgotten', args } }),
  dropped: (...args) => post({ t: 'outbox', event: { name: 'dropped', args } }),
  checkpointFailed: (...args) => post({ t: 'outbox', event: { name: 'checkpointFailed', args } }),
};
const uplinkEvents: UplinkEvents = {
  sent: (...args) => post({ t: 'uplink', event: { name: 'sent', args } }),
  unexpectedDuplicate: (...args) => post({ t: 'uplink', event: { name: 'unexpectedDuplicate', args } }),
  error: (...args) => post({ t: 'uplink', event: { name: 'error', args } }),
};

// Each group is committed as it comes: the main thread gathers while a commit runs and spaces the
// groups by `buffer.commit_window_ms` (see `ThreadOutbox`); a window here too would add a second wait.
const outbox = openOutbox(
  { ...config, buffer: { ...config.buffer, commit_window_ms: 0 } },
  capacityBytes,
  outboxEvents,
);
const uplink = startUplink(config, outbox, uplinkEvents, natsOptions(config, 'uplink'));

function report(): BufferReport {
  // This isolate's heap (well under a microsecond to read), for fb_edge_buffer_thread_heap_*.
  const h = getHeapStatistics();
  return {
    stats: outbox.stats(),
    duplicates: outbox.duplicateDeliveries,
    retainedRepeats: outbox.retainedRepeatDeliveries,
    heap: { used: h.used_heap_size, total: h.total_heap_size },
  };
}

function settledError(id: number, err: unknown): SettledError {
  return {
    id,
    code: err instanceof EdgeError ? err.code : undefined,
    message: err instanceof Error ? err.message : String(err),
    retryable: err instanceof EdgeError ? err.retryable : true,
  };
}

// Settlements are gathered and sent once the commit's promise reactions have run: one message per
// commit, not one per append.
let settledIds: number[] = [];
let settledOutcomes: number[] = [];
let settledErrors: SettledError[] = [];
let replyQueued = false;
function settle(id: number, outcome: number): void {
  settledIds.push(id);
  settledOutcomes.push(outcome);
  queueReply();
}
function fail(id: number, err: unknown): void {
  settledErrors.push(settledError(id, err));
  queueReply();
}
function queueReply(): void {
  if (replyQueued) return;
  replyQueued = true;
  queueMicrotask(sendSettled);
}
function sendSettled(): void {
  replyQueued = false;
  const ids = Float64Array.from(settledIds);
  const outcomes = Uint8Array.from(settledOutcomes);
  const errors = settledErrors;
  settledIds = [];
  settledOutcomes = [];
  settledErrors = [];
  last = report();
  post({ t: 'settled', ids, outcomes, errors, report: last }, [ids.buffer, outcomes.buffer]);
}

let last = report();
post({ t: 'ready', bufferId: outbox.bufferId, bufferStart: outbox.bufferStart, report: last });

// A failing card shows here first: `stats` throws, the thread ends with the error, the agent exits.
const reporter = setInterval(() => {
  const now = report();
  const a = now.stats;
  const b = last.stats;
  // The oldest row's time too: acknowledged rows are deleted a moment after the ack that changed the
  // counters, and the age the heartbeat shows must follow that delete.
  if (
    a.depth === b.depth &&
    a.acked === b.acked &&
    a.bytes === b.bytes &&
    a.dropped === b.dropped &&
    a.oldestReceivedMs === b.oldestReceivedMs
  )
    return;
  last = now;
  post({ t: 'report', report: now });
}, REPORT_INTERVAL_MS);

let closing = false;
port.on('message', (m: ToBufferThread) => {
  switch (m.t) {
    case 'appends': {
      for (const a of unpackAppends(m.group)) {
        outbox.appendRows(a.rows, a.delivery, a.retained, a.noWait).then(
          (outcome) => settle(a.id, OUTCOME_CODES.indexOf(outcome)),
          (err: unknown) => fail(a.id, err),
        );
      }
      for (const r of m.group.rejects) {
        outbox.recordReject(r.entry).then(
          () => settle(r.id, 0),
          (err: unknown) => fail(r.id, err),
        );
      }
      return;
    }
    case 'call': {
      const answer =
        m.call.op === 'listRejects' ? outbox.listRejects(m.call.limit) : outbox.restampUnsynced(m.call.nowMs);
      answer.then(
        (value) => post({ t: 'reply', id: m.id, value }),
        (err: unknown) => post({ t: 'reply', id: m.id, error: settledError(m.id, err) }),
      );
      return;
    }
    case 'close': {
      if (closing) return;
      closing = true;
      clearInterval(reporter);
      // The forwarder first (the batches in flight get a bounded time for their acks: through a
      // blackholed uplink none come), then the file, which commits the appends still queued (their
      // sources are waiting for the answer) and the deletes of what was acknowledged, then the
      // connection (drained for a bounded time). Rows whose ack did not come stay, sent after the
      // restart. The appends go on committing meanwhile, as always.
      void (async () => {
        await uplink.stopSending();
        await outbox.close();
        await uplink.close();
        // Their settlements go out before the thread says it is done.
        await new Promise((r) => setImmediate(r));
        if (replyQueued) sendSettled();
        // The main thread ends the thread once it has this.
        post({ t: 'closed', report: last });
      })();
      return;
    }
  }
});
