import { type Observation, observationId, subjects } from '@fieldbeam/protocol';
import { type JetStreamClient, jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection, nkeyAuthenticator } from '@nats-io/transport-node';

/** What became of one message the attacker published on its own observation subject. */
export interface AttackMessage {
  label: string;
  /** Stream sequence when JetStream stored it; undefined when refused or acknowledged as a duplicate. */
  seq: number | undefined;
  duplicate: boolean;
  /** Why the publish failed (permission, size, ...): a refusal the attacker sees at once. */
  error: string | undefined;
  /** Observations of the message that are valid and must be stored (the good neighbours of bad ones). */
  valid: Observation[];
  /** Observations (or whole bodies) that must end up in dead letters, never stored as sent. */
  bad: number;
}

/** Fields of an observation the attacker makes up; the id is derived as an honest edge would. */
export interface ObservationFields {
  station: string;
  variable?: string;
  time: string;
  value?: number | null;
  text?: string;
  sensor?: string;
  source?: string;
}

/**
 * A second edge turned hostile: it holds its own real NATS identity (the nkey seed `fieldbeam-cloud
 * edge add` issued) and does whatever those credentials allow: publish crafted batches on its own
 * subject, with chosen `Nats-Msg-Id`s, and subscribe wherever the server lets it.
 */
export class Attacker {
  readonly messages: AttackMessage[] = [];
  /** Messages received by the snooping subscriptions, by subject filter. */
  readonly snooped = new Map<string, number>();
  /** Subscriptions or publishes the server refused (permission violations): the expected outcome. */
  readonly refused: string[] = [];
  private readonly enc = new TextEncoder();

  private constructor(
    readonly edge: string,
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
  ) {}

  static async connect(opts: { url: string; edge: string; seed: string }): Promise<Attacker> {
    const nc = await connect({
      servers: opts.url,
      name: `attacker ${opts.edge}`,
      authenticator: nkeyAuthenticator(new TextEncoder().encode(opts.seed)),
      // Its own inbox, as a well-behaved edge has: the PubAcks of its publishes come back there.
      inboxPrefix: `_INBOX.${opts.edge}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
    const attacker = new Attacker(opts.edge, nc, jetstream(nc, { timeout: 5000 }));
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'error' && /permission/i.test(String(s.error))) attacker.refuse(String(s.error));
      }
    })();
    return attacker;
  }

  /** An observation with a correctly derived id, carrying this attacker's edge. */
  observation(f: ObservationFields): Observation {
    const source = f.source ?? 'attack';
    const variable = f.variable ?? 'x:attack';
    const value = f.text !== undefined ? null : (f.value ?? 0);
    const o: Observation = {
      id: observationId({
        source,
        station: f.station,
        sensor: f.sensor,
        variable,
        time: f.time,
        value,
        text: f.text,
      }),
      source,
      edge: this.edge,
      station: f.station,
      variable,
      value,
      unit: '1',
      time: f.time,
      received: new Date().toISOString(),
    };
    if (f.sensor !== undefined) o.sensor = f.sensor;
    if (f.text !== undefined) o.text = f.text;
    return o;
  }

  /** A batch as the edge forwarder builds it (v1 JSON), claiming `edge` (default: its own). */
  batch(observations: Observation[], edge = this.edge): string {
    const seq = 1 + this.messages.length * 1000;
    return JSON.stringify({
      v: 1,
      edge,
      seq: [seq, seq + observations.length - 1],
      sent: new Date().toISOString(),
      observations,
    });
  }

  /**
   * Publishes `body` on the attacker's own subject (the only one its permissions allow) and records
   * what JetStream made of it. `valid` are the observations in it that must be stored, `bad` how many
   * parts must be set aside.
   */
  async publish(
    label: string,
    body: string | Uint8Array,
    expect: { valid?: Observation[]; bad?: number; msgId?: string } = {},
  ): Promise<AttackMessage> {
    const m: AttackMessage = {
      label,
      seq: undefined,
      duplicate: false,
      error: undefined,
      valid: expect.valid ?? [],
      bad: expect.bad ?? 0,
    };
    try {
      const ack = await this.js.publish(
        subjects.obs(this.edge),
        typeof body === 'string' ? this.enc.encode(body) : body,
        expect.msgId ? { msgID: expect.msgId } : {},
      );
      m.duplicate = ack.duplicate;
      if (!ack.duplicate) m.seq = ack.seq;
    } catch (err) {
      m.error = (err as Error).message;
    }
    this.messages.push(m);
    return m;
  }

  /**
   * Subscribes to each filter and counts what arrives. A refusal by the server (permission
   * violation) is recorded in `refused`: that is what isolation looks like from here.
   */
  snoop(filters: string[]): void {
    for (const f of filters) {
      this.snooped.set(f, 0);
      try {
        const sub = this.nc.subscribe(f);
        void (async () => {
          try {
            for await (const _ of sub) this.snooped.set(f, (this.snooped.get(f) ?? 0) + 1);
          } catch (err) {
            this.refuse((err as Error).message);
          }
        })();
      } catch (err) {
        this.refuse((err as Error).message);
      }
    }
  }

  /** The server reports a refusal both on the connection and to the subscription: kept once. */
  refuse(message: string): void {
    const m = message.replace(/^\w*Error: /, '');
    if (!this.refused.includes(m)) this.refused.push(m);
  }

  get snoopedTotal(): number {
    let n = 0;
    for (const v of this.snooped.values()) n += v;
    return n;
  }

  async flush(): Promise<void> {
    await this.nc.flush();
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.close();
  }
}
