/**
 * A set that keeps only the `limit` values added last (the oldest goes first): what finished or
 * was cancelled lately, remembered long enough for a late copy to be recognised, never for ever.
 */
export class RecentSet<T> extends Set<T> {
  constructor(private readonly limit: number) {
    super();
  }

  override add(value: T): this {
    super.add(value);
    if (this.size > this.limit) this.delete(this.values().next().value as T);
    return this;
  }
}
