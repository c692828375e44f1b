/**
 * Hands on blocks of consecutive items in input order: a block that arrives before those in front
 * of it waits until they have arrived. Shared by every map result and by `imap`'s ordered stream.
 */
export class InputOrder<V> {
  private readonly early = new Map<number, V[]>();
  /** Items before this index have been handed on. */
  next = 0;

  constructor(private readonly emit: (start: number, values: V[]) => void) {}

  /** A block of `values` for items `start…`; hands it on with every waiting block it completes. */
  add(start: number, values: V[]): void {
    if (values.length === 0) return;
    if (start !== this.next) {
      this.early.set(start, values);
      return;
    }
    let block: V[] | undefined = values;
    while (block !== undefined) {
      this.emit(this.next, block);
      this.next += block.length;
      block = this.early.get(this.next);
      if (block !== undefined) this.early.delete(this.next);
    }
  }

  /** The block starting at `start` that arrived early and still waits, if any. */
  waiting(start: number): V[] | undefined {
    return this.early.get(start);
  }
}
