/**
 * The receiving half of reliable delivery from one peer: messages that arrived after a gap,
 * kept (bounded) until the one they follow is delivered, then released in order. Keeping them
 * is what lets the sender resend only the missing message (selective repeat), not everything
 * behind it.
 */

/** A message received after a gap, waiting for its predecessor. */
export interface Early {
  seq: number;
  frames: Buffer[];
  bytes: number;
}

export class GapBuffer {
  /** Messages by the `seq` they follow (`prev`): the one to release after `last` is `get(last)`. */
  private readonly early = new Map<number, Early>();
  private bytes = 0;
  private highest = 0;

  /** @param limits caps on what one peer may leave waiting (the same as its send window's) */
  constructor(private readonly limits: { maxMessages: number; maxBytes: number }) {}

  /**
   * Keeps a message that follows `prev`, unless a message following `prev` is kept already (a
   * copy) or keeping it would pass the limits (one message always fits).
   */
  keep(prev: number, e: Early): "kept" | "copy" | "full" {
    if (this.early.has(prev)) return "copy";
    if (
      this.early.size >= this.limits.maxMessages ||
      (this.bytes + e.bytes > this.limits.maxBytes && this.early.size > 0)
    )
      return "full";
    this.early.set(prev, e);
    this.bytes += e.bytes;
    this.highest = Math.max(this.highest, e.seq);
    return "kept";
  }

  /** The highest `seq` kept (0: no gap), for the peer: what it need not send again. */
  get high(): number {
    return this.early.size > 0 ? this.highest : 0;
  }

  /** The kept message that follows `last`, removed; and stale ones dropped once the gap is passed. */
  take(last: number): Early | undefined {
    if (this.early.size === 0) return undefined;
    const e = this.early.get(last);
    if (e) {
      this.early.delete(last);
      this.bytes -= e.bytes;
      if (this.early.size === 0) this.highest = 0;
      return e;
    }
    // Whatever follows a message at or below `last` can never be delivered (its predecessor would
    // be a duplicate): it belonged to a stream the sender gave up.
    for (const [prev, k] of this.early) {
      if (prev < last) {
        this.early.delete(prev);
        this.bytes -= k.bytes;
      }
    }
    if (this.early.size === 0) this.highest = 0;
    return undefined;
  }

  /** Messages kept. */
  get size(): number {
    return this.early.size;
  }

  clear(): void {
    this.early.clear();
    this.bytes = 0;
    this.highest = 0;
  }
}
