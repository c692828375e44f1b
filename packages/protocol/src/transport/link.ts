import type { SessionState } from "../auth/session.js";
import { Deque } from "../util/deque.js";

/**
 * Reliable delivery between a channel and one peer (one recipient routing id on a ROUTER, the
 * single peer on a DEALER): the sender's unacknowledged messages and retransmission clock, and
 * the receiver's messages that came after a gap.
 *
 * Numbering. Every message a channel signs takes the next number of its session (`seq`, also
 * the nonce, so it never repeats) and names the previous message of the same stream (`prev`,
 * 0 for the first). A receiver remembers, per sender session, the last `seq` it delivered
 * (`SessionState.last`) and delivers a message when its `prev` is that number (or 0: a stream
 * starts). So each stream is delivered once and in order; a message whose `prev` has not been
 * delivered yet waits here; anything at or below `last` is a duplicate or a replay and is refused.
 * Numbers come from one counter per channel rather than one per peer, so a stream can restart
 * (a peer forgotten and written to again) without a number ever meaning two messages: a restart
 * is newer than everything delivered before it. Acknowledgements are cumulative: `ack` on any
 * message (or on a standalone ack) is the `last` of the other direction.
 *
 * Selective repeat, not go-back-N: the receiver keeps what arrives after a gap (bounded), and
 * the sender sends again only the oldest unacknowledged message: when the receiver reports a gap
 * (a standalone ack whose `prev` is the highest `seq` it keeps), or when it times out; then each
 * next one as soon as acknowledgements show the one before arrived (recovery, as TCP NewReno
 * does). Messages here are batches of up to 1 GiB; go-back-N would resend every message behind a
 * lost one, so a lost heartbeat would cost a 50 MB push twice. Heartbeats flow both ways every
 * half second, so a loss rarely waits for the timeout: the next message reveals the gap.
 */

/** A signed message on its way out, as the writer and retransmission see it. */
export interface Outgoing {
  frames: Buffer[];
  /** Its sequence number; 0 for what belongs to no stream (acks, notices, one-way channels). */
  seq: number;
  /** Bytes of its message frames (routing and auth frames excluded). */
  bytes: number;
  /** When it was first and last handed to the socket (ms since epoch), -1 before. */
  firstSentAt: number;
  sentAt: number;
  /** Waiting in the channel's write queue. */
  queued: boolean;
  /** Acknowledged, or its peer forgotten: never to be sent again. */
  done: boolean;
  /** Times it was sent again. */
  retransmits: number;
}

export function outgoing(frames: Buffer[], seq: number, bytes: number): Outgoing {
  return { frames, seq, bytes, firstSentAt: -1, sentAt: -1, queued: false, done: false, retransmits: 0 };
}

/** Caps on one peer's unacknowledged messages (and on what it may leave waiting after a gap). */
export interface LinkLimits {
  maxMessages: number;
  maxBytes: number;
}

export const DEFAULT_LINK_LIMITS: LinkLimits = { maxMessages: 10_000, maxBytes: 256 * 1024 * 1024 };

/**
 * Retransmission timeout bounds (ms). Round trips on loopback take well under a millisecond, but
 * acknowledgements come from event loops, not kernels: a peer busy with 100,000 results, or a
 * script that blocks its event loop, answers nothing for a while and gets copies of what it has.
 * Those cost little (small messages; large ones get time to cross and are acknowledged before
 * they are handled) and are refused as copies; a lower bound of a quarter second, as Linux TCP's
 * 200 ms, keeps them rare. The upper bound keeps a peer that comes back from waiting long.
 */
const INITIAL_RTO_MS = 250;
const MIN_RTO_MS = 250;
const MAX_RTO_MS = 2_000;
/** A reported gap resends the oldest message only if it went out at least this long ago (ms), or
 * twice the round trip: a message delayed on the way is not resent at once. */
const GAP_RESEND_MIN_MS = 20;
/** A message of B bytes gets B / 50 MB/s more before it counts as late: big ones take time to cross. */
const MS_PER_BYTE = 1 / 50_000;
/** Round-trip samples come from messages this small, so transfer time does not inflate them. */
const RTT_SAMPLE_MAX_BYTES = 64 * 1024;

/** How long a message of `bytes` may take to cross before it counts as late (ms). */
export function transferAllowance(bytes: number): number {
  return bytes * MS_PER_BYTE;
}

/** A message received after a gap, waiting for its predecessor. */
export interface Early {
  seq: number;
  frames: Buffer[];
  bytes: number;
}

export class Link {
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
  /** Sent, not yet acknowledged, in `seq` order. */
  readonly unacked = new Deque<Outgoing>();
  unackedBytes = 0;
  /** Signed, waiting for room in the window. */
  readonly held = new Deque<Outgoing>();
  private rto = INITIAL_RTO_MS;
  private srtt = 0;
  private rttvar = 0;
  /** In recovery until acknowledgements reach this `seq` (0: not in recovery). */
  private recoverTo = 0;

  /** Messages received after a gap, by the `seq` they follow (`prev`); the highest `seq` among them. */
  private readonly early = new Map<number, Early>();
  private earlyBytes = 0;
  private earlyHigh = 0;

  constructor(readonly to: Buffer | undefined, private readonly limits: LinkLimits) {}

  /** Room in the window for one more message (one always fits when nothing is in flight). */
  hasRoom(): boolean {
    const n = this.unacked.length;
    return n === 0 || (n < this.limits.maxMessages && this.unackedBytes < this.limits.maxBytes);
  }

  /** Records `out` as sent (in flight) or, without room or behind held messages, as held; true if it may go now. */
  admit(out: Outgoing): boolean {
    if (this.held.length === 0 && this.hasRoom()) {
      this.unacked.push(out);
      this.unackedBytes += out.bytes;
      return true;
    }
    this.held.push(out);
    return false;
  }

  /**
   * Takes an acknowledgement of everything up to `ack`. Returns the messages to send now: held
   * ones that fit in the window, and, in recovery, the next oldest unacknowledged one.
   */
  acknowledge(ack: number, now: number): Outgoing[] | undefined {
    let head = this.unacked.peek();
    if (!head || head.seq > ack) return undefined;
    let newest = head;
    let resent = false;
    while (head && head.seq <= ack) {
      this.unacked.shift();
      this.unackedBytes -= head.bytes;
      head.done = true;
      resent ||= head.retransmits > 0;
      newest = head;
      head = this.unacked.peek();
    }
    // A round trip from the newest message acknowledged, if nothing acknowledged with it was sent
    // twice (Karn: then the acknowledgement may answer either copy, and what waited behind the gap
    // waited for the resend), and if it is small (no transfer time in it).
    if (!resent && newest.sentAt >= 0 && newest.bytes <= RTT_SAMPLE_MAX_BYTES) this.sample(now - newest.sentAt);
    // Progress ends the back-off, as in Linux: the peer is there, a later loss is a new one.
    this.rto = this.baseRto();
    let send: Outgoing[] | undefined;
    if (this.recoverTo !== 0) {
      if (ack >= this.recoverTo || !head) this.recoverTo = 0;
      else if (!head.queued) {
        head.retransmits++;
        (send ??= []).push(head);
      }
    }
    while (this.held.length > 0 && this.hasRoom()) {
      const out = this.held.shift() as Outgoing;
      this.unacked.push(out);
      this.unackedBytes += out.bytes;
      (send ??= []).push(out);
    }
    return send;
  }

  private sample(rtt: number): void {
    if (this.srtt === 0) {
      this.srtt = rtt;
      this.rttvar = rtt / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rtt);
      this.srtt = 0.875 * this.srtt + 0.125 * rtt;
    }
  }

  /** The timeout the round-trip estimate gives (RFC 6298), before any back-off. */
  private baseRto(): number {
    if (this.srtt === 0) return INITIAL_RTO_MS;
    return Math.min(MAX_RTO_MS, Math.max(MIN_RTO_MS, this.srtt + 4 * this.rttvar));
  }

  /**
   * The oldest unacknowledged message, if it has waited longer than the timeout: it is to be sent
   * again (the timeout doubles, and recovery covers everything sent so far).
   */
  timedOut(now: number): Outgoing | undefined {
    const head = this.unacked.peek();
    if (!head || head.queued || head.sentAt < 0 || now - head.sentAt < this.rto + transferAllowance(head.bytes)) return undefined;
    this.rto = Math.min(MAX_RTO_MS, this.rto * 2);
    return this.recover(head);
  }

  /**
   * The peer reports a gap: it keeps messages up to `high` but misses an earlier one. Returns the
   * oldest unacknowledged message if it is older than that and was not sent just now.
   */
  gapReported(high: number, now: number): Outgoing | undefined {
    const head = this.unacked.peek();
    if (!head || head.seq >= high || head.queued || head.sentAt < 0) return undefined;
    if (now - head.sentAt < Math.min(this.rto, Math.max(GAP_RESEND_MIN_MS, 2 * this.srtt))) return undefined;
    return this.recover(head);
  }

  /** Sends `head` again and recovers up to the newest message in flight. */
  private recover(head: Outgoing): Outgoing {
    head.retransmits++;
    let last = head;
    for (const out of this.unacked) last = out;
    this.recoverTo = Math.max(this.recoverTo, last.seq);
    return head;
  }

  /** How long (ms) the oldest unacknowledged message has waited beyond its transfer allowance. */
  overdue(now: number): number {
    const head = this.unacked.peek();
    if (!head || head.firstSentAt < 0) return 0;
    return now - head.firstSentAt - transferAllowance(head.bytes);
  }

  /** Drops everything waiting to be sent or acknowledged (the peer is gone, or restarted). */
  abandon(): Outgoing[] {
    const dropped: Outgoing[] = [];
    for (const q of [this.unacked, this.held]) {
      for (let out = q.shift(); out; out = q.shift()) {
        out.done = true;
        dropped.push(out);
      }
    }
    this.unackedBytes = 0;
    this.recoverTo = 0;
    this.prev = 0;
    this.early.clear();
    this.earlyBytes = 0;
    this.earlyHigh = 0;
    return dropped;
  }

  /** Keeps a message that came after a gap, unless it is a copy of one kept or would exceed the limits. */
  keepEarly(prev: number, e: Early): "kept" | "copy" | "full" {
    if (this.early.has(prev)) return "copy";
    if (this.early.size >= this.limits.maxMessages || (this.earlyBytes + e.bytes > this.limits.maxBytes && this.early.size > 0)) return "full";
    this.early.set(prev, e);
    this.earlyBytes += e.bytes;
    this.earlyHigh = Math.max(this.earlyHigh, e.seq);
    return "kept";
  }

  /** The highest `seq` kept after a gap (0: no gap), for the peer: what it need not send again. */
  get gapHigh(): number {
    return this.early.size > 0 ? this.earlyHigh : 0;
  }

  /** The kept message that follows `last`, removed; and stale ones dropped once the gap is passed. */
  takeEarly(last: number): Early | undefined {
    if (this.early.size === 0) return undefined;
    const e = this.early.get(last);
    if (e) {
      this.early.delete(last);
      this.earlyBytes -= e.bytes;
      if (this.early.size === 0) this.earlyHigh = 0;
      return e;
    }
    // Whatever follows a message at or below `last` can never be delivered (its predecessor would
    // be a duplicate): it belonged to a stream the sender gave up.
    for (const [prev, k] of this.early) {
      if (prev < last) {
        this.early.delete(prev);
        this.earlyBytes -= k.bytes;
      }
    }
    if (this.early.size === 0) this.earlyHigh = 0;
    return undefined;
  }

  /** Messages kept after a gap. */
  get earlyCount(): number {
    return this.early.size;
  }
}
