import { ISS_FIELDS, type IssField } from '../iss/isslive-schema.js';
import type { FieldValue } from './tlcp-encoding.js';
import type { ItemChange } from './tlcp-session.js';

/** One item's update as a source produces it: fields left out keep their previous value (MERGE). */
export interface ItemUpdate {
  item: string;
  fields: Partial<Record<IssField, FieldValue>>;
}

/**
 * The replay server's data adapter: the current values of every item (what a MERGE snapshot
 * sends) and the listeners that fan changes out to sessions. It outlives server restarts, as the
 * real feed's state outlives a Lightstreamer restart.
 */
export interface ItemFeed {
  publish(updates: readonly ItemUpdate[]): void;
  /** Current values in ISS_FIELDS order, or undefined if the item never had an update. */
  state(item: string): readonly FieldValue[] | undefined;
  onChange(listener: (changes: readonly ItemChange[]) => void): () => void;
}

export function createItemFeed(): ItemFeed {
  const values = new Map<string, FieldValue[]>();
  const listeners = new Set<(changes: readonly ItemChange[]) => void>();
  return {
    publish(updates) {
      const changes = updates.map(({ item, fields }) => {
        const next = [...(values.get(item) ?? ISS_FIELDS.map(() => null))];
        ISS_FIELDS.forEach((field, i) => {
          const v = fields[field];
          if (v !== undefined) next[i] = v;
        });
        values.set(item, next);
        return { item, values: next };
      });
      if (changes.length === 0) return;
      for (const listener of listeners) listener(changes);
    },
    state: (item) => values.get(item),
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
