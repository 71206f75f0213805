/** What becomes of a retained PUBLISH: kept by the broker, or passed on without being retained. */
export type RetainDecision = 'retain' | 'limit';

/**
 * Bounds what the embedded broker retains: aedes keeps every retained message in memory, one per
 * topic, and replays the matching ones to every new subscriber, so retained messages on ever new
 * topics would grow memory without bound. Tracks the topics retained and their bytes; a message
 * on a new topic that would pass `maxTopics` or `maxBytes` is not retained. An empty payload clears
 * a topic (MQTT 3.1.1 section 3.3.1.3) and is always let through. Pure.
 */
export class RetainedBudget {
  private readonly sizes = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly maxTopics: number,
    private readonly maxBytes: number,
  ) {}

  get topics(): number {
    return this.sizes.size;
  }

  get bytes(): number {
    return this.total;
  }

  admit(topic: string, payloadBytes: number): RetainDecision {
    const before = this.sizes.get(topic);
    if (payloadBytes === 0) {
      if (before !== undefined) {
        this.sizes.delete(topic);
        this.total -= before;
      }
      return 'retain';
    }
    const size = topic.length + payloadBytes;
    const topics = this.sizes.size + (before === undefined ? 1 : 0);
    const bytes = this.total - (before ?? 0) + size;
    if (topics > this.maxTopics || bytes > this.maxBytes) return 'limit';
    this.sizes.set(topic, size);
    this.total = bytes;
    return 'retain';
  }
}
