/**
 * Messages to ask for in the next ingest pull. A pull waits until it has all it asked for or its
 * expiry (a second), so asking for no more than the consumer still holds (`waiting`, which each
 * delivered message reports) returns as soon as they are here: the last messages of a backlog, or a
 * few arriving at a low rate, are not held for that second. With nothing known to be waiting, a full
 * pull waits for what comes.
 */
export function fetchSize(max: number, waiting: number | undefined): number {
  return waiting !== undefined && waiting > 0 ? Math.min(max, waiting) : max;
}
