import { Deque } from "../util/deque.js";

/**
 * The sending half of reliable delivery to one peer: what is in flight (sent, not yet
 * acknowledged), what waits for room in the window, and the retransmission timeout.
 *
 * Selective repeat, not go-back-N: only the oldest unacknowledged message is ever sent again,
 * when it times out or when the peer reports a gap; then each next one as soon as
 * acknowledgements show the one before arrived (recovery, as TCP NewReno does). Messages are
 * batches of up to 1 GiB: go-back-N would resend every message behind a lost one, so a lost
 * heartbeat would cost a 50 MB push twice.
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
  /** Computes its tag (a fragment is tagged by the writer, just before it first goes). */
  seal?: (() => void) | undefined;
  /**
   * A fragment of a larger message (`fragments.ts`): the bytes of that message up to and including
   * this fragment (its transfer allowance: it waits behind the ones before it), and on the last
   * fragment the whole message's frames (what `forget` gives back if the peer never had it all).
   */
  fragment?: { through: number; whole?: Buffer[] };
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

export class SendWindow {
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
  /** When the peer was last probed (ms). */
  private probedAt = 0;

  constructor(protected readonly limits: LinkLimits) {}

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
    if (
      !head ||
      head.queued ||
      head.sentAt < 0 ||
      now - head.sentAt < this.rto + transferAllowance(head.fragment?.through ?? head.bytes)
    )
      return undefined;
    this.rto = Math.min(MAX_RTO_MS, this.rto * 2);
    return this.recover(head);
  }

  /**
   * Whether to probe the peer now (`ChannelOptions.probe`): the oldest message was sent again and
   * has waited `every` ms since (beyond its transfer allowance) unacknowledged, and no probe went
   * in that time. Between back-off resends, the probes find a link that came back.
   */
  probeDue(now: number, every: number): boolean {
    const head = this.unacked.peek();
    if (!head || head.retransmits === 0 || head.queued || head.sentAt < 0) return false;
    if (now - head.sentAt < every + transferAllowance(head.bytes) || now - this.probedAt < every) return false;
    this.probedAt = now;
    return true;
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
    return now - head.firstSentAt - transferAllowance(head.fragment?.through ?? head.bytes);
  }

  /** Drops everything in flight or held, marked done so the writer skips what is still queued. */
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
    return dropped;
  }
}
