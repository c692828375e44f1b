import type { Logger } from "pino";
import { readAuth, type ChannelLabel, type SessionState, type Verifier } from "../auth/session.js";
import { AUTH_FAILED, MalformedMessageError, TAG, decodeBody } from "../codec/wire.js";
import type { LinkReport, Part } from "../messages.js";
import type { Message } from "../peer-messages.js";
import type { AckScheduler } from "./ack-scheduler.js";
import { noticeProvesWrongKey, type AuthFailureNotices } from "./auth-notice.js";
import { ABORT, Assembly, FIRST, LATER, isFragment, readDescriptor } from "./fragments.js";
import type { Early } from "./gap-buffer.js";
import type { Link } from "./link.js";
import type { LinkTable } from "./link-table.js";
import type { Outgoing } from "./send-window.js";
import { Relay, streamHead, type StreamSink, type StreamStart } from "./streams.js";

/** Messages in fragments one peer may have coming in at once (each holds at most one frame's copy in memory). */
const MAX_OPEN_STREAMS = 64;

/** A message received and authenticated on a channel. */
export interface Incoming<M extends Message = Message> {
  /** Routing id of the sender (ROUTER sockets only). */
  from: Buffer | undefined;
  header: M;
  parts: Part[];
}

/** What the receive path needs from its channel. */
export interface InboundDeps<In extends Message> {
  router: boolean;
  reliable: boolean;
  recvLabel: ChannelLabel | undefined;
  selfId: Buffer | undefined;
  logger: Logger;
  onMessage: ((msg: Incoming<In>) => void) | undefined;
  /** A message in fragments whose head is in: a sink takes the rest as it comes (cut-through); undefined: assemble it. */
  onStream: ((start: StreamStart<In>) => StreamSink | undefined) | undefined;
  onAuthFailed: (() => void) | undefined;
  stats: LinkReport;
  verifier: Verifier;
  links: LinkTable;
  acks: AckScheduler<Link>;
  notices: AuthFailureNotices;
  /** The largest message this side takes in fragments (bytes of its frames). */
  maxMessageBytes: number;
  enqueue(out: Outgoing): void;
  /** The peer acknowledged everything up to `ack`: the sender frees window room. */
  acknowledged(link: Link, ack: number): void;
  /** The peer restarted behind the same routing id: what was in flight was for the old process. */
  restarted(link: Link): void;
}

/**
 * The receive path of a channel: every message is verified before anything else looks at it
 * (what fails is dropped and counted, never delivered), copies and replays are refused, messages
 * after a gap wait in the link's gap buffer, and each stream is delivered once and in order,
 * each delivery owing the peer an acknowledgement. Acknowledgements the peer sends us (on its
 * messages, or alone) go to the sending side.
 */
export class Inbound<In extends Message> {
  constructor(private readonly d: InboundDeps<In>) {}

  /** One message as the socket gave it. */
  handle(frames: Buffer[]): void {
    const d = this.d;
    const router = d.router;
    const start = router ? 1 : 0;
    const from = router ? frames[0] : undefined;
    const tag = frames[start];
    if (!tag || !tag.equals(TAG)) {
      d.stats.dropped.malformed++;
      return;
    }
    const auth = frames[start + 1];
    if (!router && auth?.equals(AUTH_FAILED)) {
      this.onAuthFailedNotice(frames[start + 2], frames[start + 3]);
      return;
    }
    const label = d.recvLabel;
    const f = auth && label ? readAuth(auth) : undefined;
    if (!auth || !label || !f || (!d.reliable && frames.length < start + 3)) {
      d.stats.dropped.malformed++;
      return;
    }
    const body = frames.slice(start + 2);
    const recipient = router ? undefined : d.selfId;
    if (!d.reliable) {
      const verdict = d.verifier.verify(label, recipient, auth, body);
      if (verdict === "ok") this.deliver(from, frames, start + 2);
      else this.refused(verdict, label, from, frames);
      return;
    }

    const key = from ? from.toString("latin1") : "";
    const standaloneAck = body.length === 0;
    const known = d.verifier.session(f.session);
    // Delivered already: a duplicate, a retransmission that crossed our acknowledgement, or a
    // replay. Refused before any crypto; the sender (if it is the peer of this link) is acked again.
    if (!standaloneAck && known && f.seq <= known.last) {
      d.stats.dropped.replay++;
      const link = d.links.find(key);
      if (link && link.peerSession === f.session) d.acks.owe(link, 0);
      return;
    }
    const state = d.verifier.authenticate(label, recipient, auth, body, f, known);
    if (!state) {
      this.refused("bad-mac", label, from, frames);
      return;
    }
    const link = d.links.find(key) ?? d.links.get(from);
    if (link.peerSession !== f.session) {
      if (link.peerSession !== undefined) {
        d.logger.info({ channel: label }, "peer session changed; its link starts over");
        d.restarted(link);
      }
      link.peerSession = f.session;
      link.rx = state;
    }
    if (f.ack !== 0 && link.unacked.length > 0) d.acknowledged(link, f.ack);
    if (standaloneAck) {
      const resend = f.prev !== 0 ? link.gapReported(f.prev, Date.now()) : undefined;
      if (resend) {
        d.stats.retransmitted++;
        d.enqueue(resend);
      }
      return;
    }
    let bytes = 0;
    for (const b of body) bytes += b.length;
    if (f.prev !== state.last && f.prev !== 0) {
      // A gap: an earlier message of this stream is missing. Keep this one until it arrives, and
      // tell the sender (an acknowledgement that reports the gap).
      const kept = link.keepEarly(f.prev, { seq: f.seq, frames, bytes });
      if (kept === "kept") d.acks.owe(link, 0);
      else d.stats.dropped[kept === "copy" ? "replay" : "overflow"]++;
      return;
    }
    this.deliverInOrder(link, state, { seq: f.seq, frames, bytes }, from, start + 2);
  }

  /** Delivers a stream message, then whatever was kept waiting for it. */
  private deliverInOrder(link: Link, state: SessionState, first: Early, from: Buffer | undefined, at: number): void {
    for (let next: Early | undefined = first; next && !link.forgotten; next = link.takeEarly(state.last)) {
      state.last = next.seq;
      this.d.acks.owe(link, next.bytes);
      this.deliver(from, next.frames, at, link);
    }
  }

  private deliver(from: Buffer | undefined, frames: Buffer[], at: number, link?: Link): void {
    const d = this.d;
    let decoded;
    // Bytes are counted as they arrive: a fragment's when it is taken, a whole message's once it decodes.
    let arrived: Buffer[] | undefined = frames;
    try {
      if (link && isFragment(frames[at])) {
        if (d.stats.bytesReceived !== undefined) for (const f of frames) d.stats.bytesReceived += f.length;
        const whole = this.fragment(link, from, frames, at);
        if (!whole) return;
        frames = whole;
        at = 0;
        arrived = undefined;
      }
      decoded = decodeBody(frames, at);
    } catch (err) {
      if (!(err instanceof MalformedMessageError)) throw err;
      d.stats.dropped.malformed++;
      d.logger.warn({ err: err.message }, "malformed message dropped");
      return;
    }
    d.stats.received++;
    if (arrived && d.stats.bytesReceived !== undefined) for (const f of arrived) d.stats.bytesReceived += f.length;
    try {
      d.onMessage?.({ from, header: decoded.header as In, parts: decoded.parts });
    } catch (err) {
      d.logger.error({ err, type: decoded.header.type }, "message handler failed");
    }
  }

  /**
   * Takes one fragment (in stream order: the link delivers in order); returns the message's frames
   * once its last fragment is in, if it is assembled here. A fragment that does not fit drops its
   * whole message (one being passed on is aborted).
   */
  private fragment(link: Link, from: Buffer | undefined, frames: Buffer[], at: number): Buffer[] | undefined {
    const descriptor = frames[at] as Buffer;
    const { kind, id } = readDescriptor(descriptor);
    const pieces = frames.slice(at + 1);
    try {
      if (kind === ABORT) {
        link.endStream(id);
        return undefined;
      }
      let cur = link.streams.get(id);
      if (kind === FIRST) {
        // A stream id used again: its sender forgot us and started over; what it left half sent goes.
        if (cur) link.endStream(id);
        if (link.streams.size >= MAX_OPEN_STREAMS)
          throw new MalformedMessageError("too many messages in fragments at once");
        const a = new Assembly(descriptor, this.d.maxMessageBytes);
        if (this.offer(link, id, a, pieces, from)) return undefined;
        link.streams.set(id, (cur = a));
      } else if (kind !== LATER || !cur) throw new MalformedMessageError("fragment out of order");
      else if (cur instanceof Relay) {
        this.relay(link, id, cur, pieces);
        return undefined;
      }
      cur.add(pieces);
      if (!cur.done) return undefined;
      link.streams.delete(id);
      return cur.frames;
    } catch (err) {
      link.endStream(id);
      throw err;
    }
  }

  /** Offers a message whose first fragment just came to the owner; true if it took it (its rest is passed on). */
  private offer(link: Link, id: number, a: Assembly, pieces: Buffer[], from: Buffer | undefined): boolean {
    const onStream = this.d.onStream;
    if (!onStream) return false;
    const head = streamHead(a, pieces);
    if (!head) return false;
    let sink: StreamSink | undefined;
    try {
      sink = onStream({ from, header: head.header as In, parts: head.parts });
    } catch (err) {
      this.d.logger.error({ err }, "stream handler failed");
    }
    if (!sink) return false;
    const r = new Relay(sink, a.total - head.headBytes);
    link.streams.set(id, r);
    const rest = pieces.slice(head.used);
    if (rest.length > 0 || r.left === 0) this.relay(link, id, r, rest);
    return true;
  }

  /** The pieces of a message being passed on, to its sink; its end, once every byte announced has come. */
  private relay(link: Link, id: number, r: Relay, pieces: Buffer[]): void {
    let n = 0;
    for (const p of pieces) n += p.length;
    if (n > r.left) throw new MalformedMessageError("fragment pieces longer than the frames announced");
    r.left -= n;
    const last = r.left === 0;
    if (last) {
      link.streams.delete(id);
      this.d.stats.received++;
    }
    try {
      r.sink.pieces(pieces, last);
    } catch (err) {
      this.d.logger.error({ err }, "stream handler failed");
    }
  }

  private refused(
    verdict: "malformed" | "bad-mac" | "replay",
    label: ChannelLabel,
    from: Buffer | undefined,
    frames: Buffer[],
  ): void {
    const d = this.d;
    if (verdict === "bad-mac") {
      d.stats.dropped.badMac++;
      const notice = from && d.notices.notice(from, frames);
      if (notice) d.enqueue(notice);
    } else d.stats.dropped[verdict]++;
    d.logger.warn({ verdict, label }, "message refused");
  }

  /** A controller says a message of ours failed its tag check: believe it only if it received exactly what we sent. */
  private onAuthFailedNotice(echo: Buffer | undefined, received: Buffer | undefined): void {
    const link = this.d.links.find("");
    if (link && noticeProvesWrongKey(echo, received, [...link.unacked, ...link.held])) this.d.onAuthFailed?.();
    else this.d.logger.warn("a controller refused a message of ours that was altered on the way; it is sent again");
  }
}
