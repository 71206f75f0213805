import { timingSafeEqual } from 'node:crypto';
import type { MqttUser } from '../config.js';

/** True when an MQTT topic matches a filter with `+` and `#` wildcards (MQTT 3.1.1 section 4.7). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Accounts and per-user topic ACLs of the embedded broker. Pure; the broker adapter asks it. */
export class MqttAccess {
  private readonly users: Map<string, MqttUser>;
  constructor(users: readonly MqttUser[]) {
    this.users = new Map(users.map((u) => [u.username, u]));
  }
  get enabled(): boolean {
    return this.users.size > 0;
  }
  authenticate(username: string | undefined, password: Buffer | undefined): boolean {
    if (!this.enabled) return true;
    const user = username === undefined ? undefined : this.users.get(username);
    return !!user && !!password && sameSecret(password.toString('utf8'), user.password);
  }
  canPublish(username: string | undefined, topic: string): boolean {
    if (!this.enabled) return true;
    const user = username === undefined ? undefined : this.users.get(username);
    return !!user && user.publish.some((f) => topicMatches(f, topic));
  }
  canSubscribe(username: string | undefined, filter: string): boolean {
    if (!this.enabled) return true;
    const user = username === undefined ? undefined : this.users.get(username);
    // A subscription is allowed when one of the user's filters covers it entirely.
    return (
      !!user &&
      user.subscribe.some(
        (f) => f === filter || (f.endsWith('#') && topicMatches(f, filter.replace(/[+#]/g, 'x'))),
      )
    );
  }
}
