import type { Logger } from "pino";
import type { Outgoing, SendWindow } from "./send-window.js";

/** Retransmission clock period while something is unacknowledged (ms). */
export const TICK_MS = 50;
/**
 * How often a peer whose oldest message was sent again and is still unacknowledged is probed
 * (ms): a connection that dropped (taking that message and the acknowledgements with it) and came
 * back is found this soon, where the backed-off resend timer may wait up to two seconds.
 */
export const PROBE_MS = 100;

/**
 * The clock that sends late messages again. It runs only while some peer has messages in flight
 * (an idle channel has no timer), and never holds the process: a peer that never acknowledges is
 * its owner's to judge, through heartbeats.
 */
export class RetransmitClock<W extends SendWindow = SendWindow> {
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;
  private skippedTick = false;

  /**
   * @param windows the send windows to watch (read afresh on every tick)
   * @param resend queues a late message again
   * @param probe sends the peer of a window a small message it acknowledges (none: no probes)
   */
  constructor(
    private readonly windows: () => Iterable<W>,
    private readonly resend: (out: Outgoing) => void,
    private readonly logger: Logger,
    private readonly label: string | undefined,
    private readonly probe?: (window: W) => void,
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
      } else if (this.probe && w.probeDue(now, PROBE_MS)) this.probe(w);
    }
    if (!pending) this.stop();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
