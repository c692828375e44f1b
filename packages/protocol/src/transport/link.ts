import type { SessionState } from "../auth/session.js";
import type { Assembly } from "./fragments.js";
import { GapBuffer, type Early } from "./gap-buffer.js";
import { SendWindow, type LinkLimits } from "./send-window.js";
import { Relay } from "./streams.js";

/**
 * Reliable delivery between a channel and one peer (one recipient routing id on a ROUTER, the
 * single peer on a DEALER): the sender's window ({@link SendWindow}, which this extends), the
 * receiver's messages kept after a gap ({@link GapBuffer}), and what each side owes the other.
 *
 * Numbering. Every message a channel signs takes the next number of its session (`seq`, also
 * the nonce, so it never repeats) and names the previous message of the same stream (`prev`,
 * 0 for the first). A receiver remembers, per sender session, the last `seq` it delivered
 * (`SessionState.last`) and delivers a message when its `prev` is that number (or 0: a stream
 * starts). So each stream is delivered once and in order; a message whose `prev` has not been
 * delivered yet waits in the gap buffer; anything at or below `last` is a duplicate or a replay
 * and is refused. Numbers come from one counter per channel rather than one per peer, so a
 * stream can restart (a peer forgotten and written to again) without a number ever meaning two
 * messages: a restart is newer than everything delivered before it. Acknowledgements are
 * cumulative: `ack` on any message (or on a standalone ack) is the `last` of the other direction.
 *
 * Heartbeats flow both ways every half second, so a loss rarely waits for the timeout: the next
 * message reveals the gap, and the receiver reports it (a standalone ack whose `prev` is the
 * highest `seq` it keeps).
 */
export class Link extends SendWindow {
  /** The peer's session id, from its first valid message, and what this side remembers of it. */
  peerSession: string | undefined;
  rx: SessionState | undefined;
  /** Set when the channel forgets this peer: the object is dead. */
  forgotten = false;
  /** Messages delivered (or refused as copies) since our last message to this peer, and their bytes: an acknowledgement is owed. */
  ackOwed = 0;
  ackOwedBytes = 0;
  /** When it was created, or last began to be owed an acknowledgement (ms since epoch). */
  lastActive = Date.now();
  /** `seq` of the last message signed for this peer (0: the next one starts a stream). */
  prev = 0;
  /** Messages whose fragments are coming in, by stream id (`fragments.ts`): assembled here, or passed on (`streams.ts`). */
  readonly streams = new Map<number, Assembly | Relay>();
  private readonly gaps: GapBuffer;

  constructor(
    readonly to: Buffer | undefined,
    limits: LinkLimits,
  ) {
    super(limits);
    this.gaps = new GapBuffer(limits);
  }

  /** Drops everything waiting to be sent, acknowledged or delivered (the peer is gone, or restarted). */
  override abandon(): ReturnType<SendWindow["abandon"]> {
    const dropped = super.abandon();
    this.prev = 0;
    this.gaps.clear();
    this.dropStreams();
    return dropped;
  }

  /** Drops an incoming message in fragments; one being passed on is aborted. */
  endStream(id: number): void {
    const s = this.streams.get(id);
    this.streams.delete(id);
    if (s instanceof Relay) s.sink.abort();
  }

  private dropStreams(): void {
    for (const id of [...this.streams.keys()]) this.endStream(id);
  }

  /** Keeps a message that came after a gap, unless it is a copy of one kept or would exceed the limits. */
  keepEarly(prev: number, e: Early): "kept" | "copy" | "full" {
    return this.gaps.keep(prev, e);
  }

  /** The highest `seq` kept after a gap (0: no gap), for the peer: what it need not send again. */
  get gapHigh(): number {
    return this.gaps.high;
  }

  /** The kept message that follows `last`, removed; and stale ones dropped once the gap is passed. */
  takeEarly(last: number): Early | undefined {
    return this.gaps.take(last);
  }

  /** Messages kept after a gap. */
  get earlyCount(): number {
    return this.gaps.size;
  }
}
