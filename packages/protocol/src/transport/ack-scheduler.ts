/**
 * When acknowledgements go. An acknowledgement rides on the next message to the peer for free;
 * one that goes alone costs both processes a wake-up, so it waits {@link ACK_DELAY_MS} for a
 * message to ride on, and goes at once only when much is owed.
 */

/**
 * An acknowledgement waits this long for a message to ride on before it goes alone (ms): longer
 * than a round trip under load, so a request is acknowledged by its reply, far shorter than the
 * retransmission timeout.
 */
export const ACK_DELAY_MS = 20;
/**
 * An acknowledgement goes at once, before the message that tips it is handled, when this many
 * messages or bytes are unacknowledged: a reader busy with a stream of messages never lets the
 * delay timer run (each message it reads continues it as a microtask), and handling a batch of
 * 100,000 tasks takes long enough for the sender to think it lost. Not much lower: a client
 * feeding a map sends dozens of small messages between two replies, and an acknowledgement that
 * goes alone costs both sides a wake-up.
 */
export const ACK_EVERY_MESSAGES = 256;
export const ACK_EVERY_BYTES = 256 * 1024;

/** What the scheduler reads and writes of a peer's link. */
export interface AckDebt {
  /** Messages owed an acknowledgement, and their bytes (the sender of the acknowledgement zeroes them). */
  ackOwed: number;
  ackOwedBytes: number;
  /** When the debt began (ms since epoch): the acknowledgement is due {@link ACK_DELAY_MS} later. */
  lastActive: number;
  /** The peer is forgotten: nothing is owed any more. */
  forgotten: boolean;
}

export class AckScheduler<L extends AckDebt> {
  private readonly owed = new Set<L>();
  private timer: NodeJS.Timeout | undefined;

  /** @param send sends a standalone acknowledgement to `link` now (and zeroes its debt) */
  constructor(private readonly send: (link: L) => void) {}

  /** Notes that `link` is owed an acknowledgement for a message of `bytes` (0: a copy, refused). */
  owe(link: L, bytes: number): void {
    if (link.ackOwed++ === 0) {
      link.lastActive = Date.now();
      this.owed.add(link);
    }
    link.ackOwedBytes += bytes;
    if (link.ackOwed >= ACK_EVERY_MESSAGES || link.ackOwedBytes >= ACK_EVERY_BYTES) this.send(link);
    // Unref'd: an acknowledgement never keeps the process alive (the peer resends if it must).
    else this.timer ??= setTimeout(() => this.flushDue(), ACK_DELAY_MS).unref();
  }

  /** Sends the acknowledgements that are due; waits again for those owed more recently. */
  private flushDue(): void {
    this.timer = undefined;
    const now = Date.now();
    let next = Infinity;
    for (const link of this.owed) {
      if (!link.ackOwed || link.forgotten) this.owed.delete(link);
      else if (now - link.lastActive >= ACK_DELAY_MS - 1) {
        this.send(link);
        this.owed.delete(link);
      } else next = Math.min(next, link.lastActive + ACK_DELAY_MS - now);
    }
    if (next !== Infinity) this.timer = setTimeout(() => this.flushDue(), next).unref();
  }

  /** Sends every acknowledgement owed now (the channel closes: no peer should wait for a copy of what it sent last). */
  flushAll(): void {
    for (const link of this.owed) if (link.ackOwed && !link.forgotten) this.send(link);
    this.owed.clear();
  }

  /** Forgets `link` (its peer is gone); a debt it still has is the caller's to settle first. */
  drop(link: L): void {
    this.owed.delete(link);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
