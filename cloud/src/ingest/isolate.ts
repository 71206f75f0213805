/** One item that failed on its own, with the error it failed with. */
export interface Culprit<T> {
  item: T;
  error: unknown;
}

/**
 * Finds the items that make `attempt` fail, by halving: a part that succeeds is done (its items are
 * kept), a part that fails is split again, down to single items, which are the culprits. k bad items
 * among n cost about 2k·log2(n) attempts, and a good item is attempted at most log2(n) times, so
 * `attempt` must be idempotent. An error `isolatable` says no to (a lost connection, say) is thrown at
 * once: it says nothing about the items. Pass `failed` when the whole of `items` is already known to
 * fail, to skip trying it again.
 */
export async function isolateFailures<T>(
  items: readonly T[],
  attempt: (part: readonly T[]) => Promise<void>,
  isolatable: (err: unknown) => boolean,
  failed?: unknown,
): Promise<Culprit<T>[]> {
  if (items.length === 0) return [];
  let error = failed;
  if (error === undefined) {
    try {
      await attempt(items);
      return [];
    } catch (err) {
      if (!isolatable(err)) throw err;
      error = err;
    }
  }
  const [first] = items;
  if (items.length === 1 && first !== undefined) return [{ item: first, error }];
  const mid = Math.ceil(items.length / 2);
  const left = await isolateFailures(items.slice(0, mid), attempt, isolatable);
  const right = await isolateFailures(items.slice(mid), attempt, isolatable);
  return [...left, ...right];
}
