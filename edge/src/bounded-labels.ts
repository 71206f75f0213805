/**
 * Label values taken from outside input (a topic level, ...) with a bound on how many series they
 * make: the first `max` distinct values keep their own, later ones share `other`. Each value is cut
 * to `maxLength` characters, so a long name cannot bloat `/metrics` either.
 */
export class BoundedLabels {
  private readonly seen = new Set<string>();

  constructor(
    private readonly max: number,
    private readonly maxLength = 64,
    readonly other = 'other',
  ) {}

  of(value: string): string {
    const v = value.length > this.maxLength ? value.slice(0, this.maxLength) : value;
    if (this.seen.has(v)) return v;
    if (this.seen.size >= this.max || v === this.other) return this.other;
    this.seen.add(v);
    return v;
  }
}
