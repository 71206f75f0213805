/**
 * How a reading's JSON text is stored in the buffer file: every byte of a row is written to the card
 * about twice (a WAL frame, then the checkpoint), and under load rows are most of what the agent
 * writes. A reading stamped with its receipt time (most of them) carries the same instant twice:
 * `"received"` right after an equal `"time"`. The stored text leaves it out (about 37 bytes, 11% of a
 * typical row), and it is put back, the text byte for byte, when the row is read.
 *
 * Why only that: taking the 64 hex characters of the id out as 32 bytes beside the text saved another
 * 40 bytes a row, but binding and reading that blob, with the conversions, cost about 1.5 µs a row on
 * the buffer thread (+8% of the agent's CPU per reading at full speed); this costs about 0.3 µs.
 *
 * The row's `form` says which: NULL for the text as it is (rows written by earlier versions, and texts
 * without an equal `"received"` after `"time"`), `RECEIVED_OUT`. The part is found by exact text:
 * inside a JSON string every `"` is escaped, so `,"time":"` can only be the key itself.
 */

/** `"received"`, equal to `"time"`, is left out right after `"time"`. */
export const RECEIVED_OUT = 1;

export interface StoredRow {
  obs: string;
  form: number | null;
}

const TIME_KEY = ',"time":"';
const RECEIVED_KEY = ',"received":"';

/** The stored form of an observation's JSON text (see the module's comment). */
export function packRow(text: string): StoredRow {
  const t = text.indexOf(TIME_KEY);
  if (t < 0) return { obs: text, form: null };
  const start = t + TIME_KEY.length;
  const end = text.indexOf('"', start);
  // `"received":"<the same time>"` right after the time's closing quote. (A `"` found at `end` that
  // was an escaped one inside the time cannot be followed by `,"received":"`, whose quotes are not.)
  const after = end + 1 + RECEIVED_KEY.length;
  const length = end - start;
  if (
    end < 0 ||
    !text.startsWith(RECEIVED_KEY, end + 1) ||
    text.charCodeAt(after + length) !== 0x22 ||
    text.slice(after, after + length) !== text.slice(start, end)
  )
    return { obs: text, form: null };
  return { obs: text.slice(0, end + 1) + text.slice(after + length + 1), form: RECEIVED_OUT };
}

/** The observation's JSON text of a stored row, exactly as it was given to `packRow`. */
export function unpackRow(obs: string, form: number | null): string {
  if (form !== RECEIVED_OUT) return obs;
  const start = obs.indexOf(TIME_KEY) + TIME_KEY.length;
  const end = obs.indexOf('"', start);
  return `${obs.slice(0, end + 1)}${RECEIVED_KEY}${obs.slice(start, end)}"${obs.slice(end + 1)}`;
}
