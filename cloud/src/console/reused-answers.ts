/**
 * Answers reused for a short time, per key: while one is pending or fresh, asking again returns it
 * instead of asking again. The console asks edges over NATS on behalf of anyone who can reach it;
 * without this, a loop of page loads would become a flood of control requests on the edges' uplinks,
 * which carry their readings. A failed answer is not kept. At most `maxKeys` keys: the stalest go first.
 */
export class ReusedAnswers<T> {
  private readonly answers = new Map<string, { at: number; answer: Promise<T> }>();

  constructor(
    private readonly reuseMs: number,
    private readonly maxKeys: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string, ask: () => Promise<T>): Promise<T> {
    const now = this.now();
    const kept = this.answers.get(key);
    if (kept && now - kept.at < this.reuseMs) return kept.answer;
    this.answers.delete(key);
    // Map keeps insertion order: the first keys are the stalest.
    for (const k of this.answers.keys()) {
      if (this.answers.size < this.maxKeys) break;
      this.answers.delete(k);
    }
    const answer = ask();
    const entry = { at: now, answer };
    this.answers.set(key, entry);
    answer.catch(() => {
      if (this.answers.get(key) === entry) this.answers.delete(key);
    });
    return answer;
  }

  get size(): number {
    return this.answers.size;
  }
}
