import type { Logger } from "pino";
import type { Outgoing, SendWindow } from "./send-window.js";

/** Retransmission clock period while something is unacknowledged (ms). */
export const TICK_MS = 50;

/**
 * The clock that sends late messages again. It runs only while some peer has messages in flight
 * (an idle channel has no timer), and never holds the process: a peer that never acknowledges is
 * its owner's to judge, through heartbeats.
 */
export class RetransmitClock {
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;
  private skippedTick = false;

  /**
   * @param windows the send windows to watch (read afresh on every tick)
   * @param resend queues a late message again
   */
  constructor(
    private readonly windows: () => Iterable<SendWindow>,
    private readonly resend: (out: Outgoing) => void,
    private readonly logger: Logger,
    private readonly label: string | undefined,
  ) {}

  /** Starts the clock if it is not running (something was just sent). */
  start(): void {
    if (this.timer) return;
    this.lastTick = Date.now();
    this.timer = setInterval(() => this.tick(), TICK_MS).unref();
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Sends late messages again; stops when nothing is unacknowledged. */
  tick(): void {
    const now = Date.now();
    const stalled = now - this.lastTick > 2 * TICK_MS;
    this.lastTick = now;
    // After a stall of this event loop, acknowledgements may be waiting unread in the socket
    // (timers run before I/O): look again next time rather than resend what has arrived. Once
    // only: an event loop that is always late still resends.
    if (stalled && !this.skippedTick) {
      this.skippedTick = true;
      return;
    }
    this.skippedTick = false;
    let pending = false;
    for (const w of this.windows()) {
      if (w.unacked.length === 0) continue;
      pending = true;
      const out = w.timedOut(now);
      if (out) {
        this.logger.debug(
          { channel: this.label, seq: out.seq, bytes: out.bytes, waitedMs: now - out.sentAt, times: out.retransmits },
          "no acknowledgement in time; sending again",
        );
        this.resend(out);
      }
    }
    if (!pending) this.stop();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
