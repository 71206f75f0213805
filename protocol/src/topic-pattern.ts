/**
 * MQTT topic patterns with named captures: `sensors/+station/+sensor/#rest`.
 * `+name` matches one level and captures it as `name`; `#name` (last level only) matches the rest
 * (zero or more levels) and captures it joined by `/`. A bare `+` or `#` matches without capturing.
 */
export interface TopicPattern {
  readonly pattern: string;
  /** The same pattern with names stripped, for MQTT subscriptions. */
  readonly filter: string;
  match(topic: string): Record<string, string> | undefined;
}

export function parseTopicPattern(pattern: string): TopicPattern {
  const levels = pattern.split('/');
  levels.forEach((l, i) => {
    if (l.startsWith('#') && i !== levels.length - 1) {
      throw new Error(`"${pattern}": '#' may only be the last level`);
    }
    if (l.length > 1 && !/^[+#][A-Za-z_][A-Za-z0-9_]*$/.test(l) && /[+#]/.test(l)) {
      throw new Error(`"${pattern}": level "${l}" mixes a wildcard with text; use +name or #name`);
    }
  });
  const filter = levels.map((l) => (l.startsWith('+') ? '+' : l.startsWith('#') ? '#' : l)).join('/');
  return {
    pattern,
    filter,
    match(topic) {
      const parts = topic.split('/');
      const out: Record<string, string> = {};
      for (let i = 0; i < levels.length; i++) {
        const l = levels[i] as string;
        if (l.startsWith('#')) {
          if (l.length > 1) out[l.slice(1)] = parts.slice(i).join('/');
          return out;
        }
        const part = parts[i];
        if (part === undefined) return undefined;
        if (l.startsWith('+')) {
          if (l.length > 1) out[l.slice(1)] = part;
        } else if (l !== part) {
          return undefined;
        }
      }
      return parts.length === levels.length ? out : undefined;
    },
  };
}

/** An MQTT topic filter (no names): `+` and `#` only as whole levels, `#` only as the last one. */
export function isTopicFilter(filter: string): boolean {
  if (filter.length === 0) return false;
  const levels = filter.split('/');
  return levels.every(
    (l, i) => l === '+' || (l === '#' && i === levels.length - 1) || (!l.includes('+') && !l.includes('#')),
  );
}
