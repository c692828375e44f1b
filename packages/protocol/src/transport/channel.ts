import type * as zmq from "zeromq";
import { Signer, Verifier } from "../auth/session.js";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../codec/value-codec.js";
import { TAG, encodeBody } from "../codec/wire.js";
import type { LinkReport, Part } from "../messages.js";
import type { Message } from "../peer-messages.js";
import { AckScheduler } from "./ack-scheduler.js";
import { AuthFailureNotices } from "./auth-notice.js";
import type { ChannelOptions } from "./channel-options.js";
import { FaultShim, faultsFromEnv } from "./faults.js";
import { FragmentSender } from "./fragment-sender.js";
import { decodeUndelivered, fragmentMinFromEnv } from "./fragments.js";
import { Inbound } from "./inbound.js";
import type { Link } from "./link.js";
import { LinkTable } from "./link-table.js";
import { RetransmitClock } from "./retransmit-clock.js";
import { DEFAULT_LINK_LIMITS, outgoing, type Outgoing } from "./send-window.js";
import { SocketOwner } from "./socket-owner.js";
import type { OutStream, StreamPart } from "./streams.js";

export type { Incoming } from "./inbound.js";
export type { ChannelOptions } from "./channel-options.js";

/** A channel's counters (`faults` only while fault injection is on). */
export type ChannelStats = LinkReport;

/**
 * An authenticated, reliable channel over one ZeroMQ socket. Every outgoing message is signed,
 * every incoming one verified; what fails is dropped and counted, never delivered.
 *
 * This class wires the parts and keeps the send path: a {@link SocketOwner} (the one reader and
 * one writer of the socket), the {@link Inbound} receive path, a {@link LinkTable} of per-peer
 * {@link Link}s (send window, gap buffer), an {@link AckScheduler}, a {@link RetransmitClock} and
 * {@link AuthFailureNotices}. On reliable channels messages are numbered per stream,
 * acknowledged cumulatively, kept until acknowledged and sent again when late, so what ZeroMQ
 * loses (a connection that drops, a ROUTER send to a peer that is away) still arrives, once and
 * in order. The channel never declares a peer dead: `overdue` tells its owner which peers leave
 * messages unacknowledged, and the owner, which runs heartbeats, decides and calls `forget`.
 */
export class Channel<In extends Message = Message, Out extends Message = Message> {
  readonly stats: ChannelStats = {
    received: 0,
    sent: 0,
    retransmitted: 0,
    bytesSent: 0,
    bytesReceived: 0,
    dropped: { malformed: 0, badMac: 0, replay: 0, unroutable: 0, overflow: 0 },
  };
  private readonly signer: Signer;
  private readonly verifier: Verifier;
  private readonly owner: SocketOwner;
  private readonly inbound: Inbound<In>;
  private readonly links: LinkTable;
  private readonly acks: AckScheduler<Link>;
  private readonly clock: RetransmitClock<Link>;
  private readonly reliable: boolean;
  private readonly maxQueue: number;
  private readonly faults: FaultShim | undefined;
  private closed = false;
  private waiters: Array<{ ready: () => boolean; resolve: () => void }> = [];
  /** Messages held for window room, over all links. */
  private held = 0;
  private readonly fragmentMin: number | undefined;
  private readonly fragments: FragmentSender;

  constructor(private readonly opts: ChannelOptions<In>) {
    this.signer = new Signer(opts.clusterKey);
    this.verifier = new Verifier(opts.clusterKey);
    this.reliable = opts.reliable ?? true;
    this.maxQueue = opts.maxQueue ?? 100_000;
    this.fragmentMin = opts.fragmentMin ?? fragmentMinFromEnv();
    this.fragments = new FragmentSender(this.signer, (link, out) => this.admit(link, out));
    this.links = new LinkTable({ ...DEFAULT_LINK_LIMITS, ...opts.window });
    this.acks = new AckScheduler((link) => this.sendAck(link));
    this.clock = new RetransmitClock(
      () => this.links.values(),
      (out) => this.retransmit(out),
      opts.logger,
      opts.sendLabel,
      opts.probe && ((link) => opts.probe?.(link.to)),
    );
    const spec =
      this.reliable && opts.sendLabel ? (opts.faults === undefined ? faultsFromEnv() : opts.faults) : undefined;
    if (spec) {
      this.faults = new FaultShim(spec, opts.sendLabel ?? "", opts.router ? 2 : 1, (out) => this.owner.enqueue(out));
      this.stats.faults = this.faults.counts;
      opts.logger.warn(
        { faults: spec, channel: opts.sendLabel },
        "FAULT INJECTION IS ON (PTCLUSTER_TEST_FAULTS): this channel drops, duplicates, delays and corrupts its messages on purpose; for tests only",
      );
    }
    const faults = this.faults;
    this.owner = new SocketOwner(opts.socket, {
      logger: opts.logger,
      stats: this.stats,
      onFrames: (frames) => this.inbound.handle(frames),
      take: (out) => {
        if (out.done) return false; // acknowledged while it waited, or its peer forgotten
        if (out.seal) {
          out.seal();
          out.seal = undefined;
        }
        if (out.seq !== 0) {
          out.sentAt = Date.now();
          if (out.firstSentAt < 0) out.firstSentAt = out.sentAt;
        }
        return faults === undefined || !faults.intercept(out);
      },
      onIdle: () => this.wake(),
    });
    this.inbound = new Inbound<In>({
      router: opts.router === true,
      reliable: this.reliable,
      recvLabel: opts.recvLabel,
      selfId: opts.selfId,
      logger: opts.logger,
      onMessage: opts.onMessage,
      onStream: opts.onStream,
      onAuthFailed: opts.onAuthFailed,
      stats: this.stats,
      verifier: this.verifier,
      links: this.links,
      acks: this.acks,
      notices: new AuthFailureNotices(),
      maxMessageBytes: opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES + 65_536,
      enqueue: (out) => this.owner.enqueue(out),
      acknowledged: (link, ack) => this.onAck(link, ack),
      restarted: (link) => {
        this.held -= link.held.length;
        link.abandon();
      },
    });
  }

  get socket(): zmq.Socket {
    return this.opts.socket;
  }

  /** Starts the reader loop. */
  start(): this {
    this.owner.start();
    return this;
  }

  /**
   * Whether this channel keeps the process alive (default true); see {@link SocketOwner.hold}.
   * A channel that does not hold still reads every message, in order, and acknowledges it (its
   * timers never held the process).
   */
  hold(on: boolean): void {
    this.owner.hold(on);
  }

  /**
   * Signs and queues a message. Returns false once the queue holds `maxQueue` messages or more,
   * or this peer's window is full (the message waits for acknowledgements); `drained()` then
   * resolves when everything is on its way again.
   */
  send(header: Out, parts?: readonly Part[], to?: Buffer): boolean {
    if (this.closed) return false;
    const label = this.opts.sendLabel;
    if (!label) throw new Error("this channel does not send");
    const body = encodeBody(header, parts);
    if (!this.reliable) {
      const auth = this.signer.sign(label, to, body);
      this.owner.enqueue(outgoing(to ? [to, TAG, auth, ...body] : [TAG, auth, ...body], 0, 0));
      return this.owner.queued < this.maxQueue;
    }
    const link = this.links.get(to);
    let bytes = 0;
    for (const f of body) bytes += f.length;
    if (this.fragmentMin !== undefined && bytes >= this.fragmentMin) {
      this.fragments.message(label, link, body);
      return this.ready(link);
    }
    const auth = this.signer.sign(label, to, body, link.prev, link.rx?.last ?? 0);
    link.prev = this.signer.seq;
    const out = outgoing(to ? [to, TAG, auth, ...body] : [TAG, auth, ...body], link.prev, bytes);
    if (link.admit(out)) {
      // The acknowledgement rides on this message (a gap report goes alone: it needs `prev`).
      if (link.gapHigh === 0) {
        link.ackOwed = 0;
        link.ackOwedBytes = 0;
      }
      this.owner.enqueue(out);
      this.clock.start();
    } else this.held++;
    return this.ready(link);
  }

  /** Whether more may be sent to this link now (nothing held for it, window room, the queue below `maxQueue`). */
  private ready(link: Link): boolean {
    return link.held.length === 0 && link.hasRoom() && this.owner.queued < this.maxQueue;
  }

  /**
   * Starts a message to `to` whose binary frames are not here yet (cut-through): its first
   * fragment goes now, the rest as `pieces` come ({@link FragmentSender.stream}).
   */
  openStream(header: Out, parts: readonly StreamPart[], to?: Buffer): OutStream {
    const label = this.opts.sendLabel;
    if (!label || !this.reliable) throw new Error("this channel does not send streams");
    const link = this.links.get(to);
    return this.fragments.stream(label, link, header, parts, () => !this.closed && !link.forgotten);
  }

  /** A fragment into its link's window (or held for room), carrying the acknowledgement owed. */
  private admit(link: Link, out: Outgoing): void {
    if (link.admit(out)) this.owner.enqueue(out);
    else this.held++;
    if (link.gapHigh === 0) {
      link.ackOwed = 0;
      link.ackOwedBytes = 0;
    }
    this.clock.start();
  }

  /** Resolves when nothing waits to be written (queued, or held for window room). */
  drained(): Promise<void> {
    return this.until(() => this.owner.idle && this.held === 0);
  }

  /** Peers this channel keeps delivery state for. */
  get linkCount(): number {
    return this.links.size;
  }

  /** Sender sessions the verifier remembers (bounded: what keeps their old messages from being replayed). */
  get sessionCount(): number {
    return this.verifier.size;
  }

  /** Messages sent and not yet acknowledged, over all peers. */
  get inFlight(): number {
    return this.links.inFlight;
  }

  /** `seq` of the last message signed for `peer` (0: none yet), to ask later whether it was acknowledged. */
  lastSeq(peer?: Buffer): number {
    return this.links.find(peer ? peer.toString("latin1") : "")?.prev ?? 0;
  }

  /**
   * Whether `peer` acknowledged every message up to `seq` (true); false while one is in flight or
   * held; undefined once the link is forgotten (what it had not acknowledged came back from `forget`).
   */
  acknowledged(peer: Buffer | undefined, seq: number): boolean | undefined {
    const link = this.links.find(peer ? peer.toString("latin1") : "");
    if (!link) return undefined;
    const oldest = link.unacked.peek() ?? link.held.peek();
    return oldest === undefined || oldest.seq > seq;
  }

  /**
   * Peers (routing ids; `undefined` for a DEALER's one peer) whose oldest unacknowledged message
   * has waited more than `limitMs` beyond the time its size allows: the owner's liveness checks
   * decide what that means.
   */
  overdue(limitMs: number): Array<Buffer | undefined> {
    const now = Date.now();
    const out: Array<Buffer | undefined> = [];
    for (const link of this.links.values()) if (link.overdue(now) > limitMs) out.push(link.to);
    return out;
  }

  /**
   * Drops what this channel keeps for a peer that is gone (the hub forgot an engine or a client):
   * unacknowledged and held messages, messages kept after a gap. What the peer's session sent
   * before stays refused: that memory is the verifier's, not the link's. Returns the messages
   * that were never acknowledged (the peer may or may not have them), for the owner to keep.
   */
  forget(peer?: Buffer): Array<{ header: Out; parts: Part[] }> {
    const link = this.links.remove(peer);
    return link ? this.drop(link) : [];
  }

  /** Abandons a link; returns what it had sent or held without an acknowledgement, decoded (the owner may keep it). */
  private drop(link: Link): Array<{ header: Out; parts: Part[] }> {
    // What it sent last (a goodbye, say) is acknowledged before it is forgotten.
    if (link.ackOwed) this.sendAck(link);
    link.forgotten = true;
    this.acks.drop(link);
    const heldBefore = link.held.length;
    const undelivered = decodeUndelivered<Out>(link.abandon(), link.to !== undefined);
    this.held -= heldBefore;
    this.wake();
    return undelivered;
  }

  /**
   * A standalone acknowledgement: no message frames, a fresh sequence number that starts no
   * stream, and in `prev` the highest `seq` kept after a gap (0: none), so the peer resends what is missing.
   */
  private sendAck(link: Link): void {
    const label = this.opts.sendLabel;
    link.ackOwed = 0;
    link.ackOwedBytes = 0;
    if (!label || this.closed) return;
    const auth = this.signer.sign(label, link.to, [], link.gapHigh, link.rx?.last ?? 0);
    this.owner.enqueue(outgoing(link.to ? [link.to, TAG, auth] : [TAG, auth], 0, 0));
  }

  private retransmit(out: Outgoing): void {
    this.stats.retransmitted++;
    this.owner.enqueue(out);
  }

  /** The peer acknowledged up to `ack`: what the window releases goes (held messages, a recovery resend). */
  private onAck(link: Link, ack: number): void {
    const send = link.acknowledge(ack, Date.now());
    if (send) {
      for (const out of send) {
        if (out.retransmits > 0 && out.sentAt >= 0) this.stats.retransmitted++;
        else this.held--;
        this.owner.enqueue(out);
      }
    }
    if (this.waiters.length) this.wake();
  }

  /** Resolves once `ready()` holds (checked whenever the queue, the windows or the links change). */
  private until(ready: () => boolean): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ ready, resolve }));
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const left: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (this.closed || w.ready()) w.resolve();
      else left.push(w);
    }
    this.waiters = left;
  }

  /** Nothing queued, held or unacknowledged. */
  private settled(): boolean {
    return this.owner.idle && this.held === 0 && this.links.inFlight === 0;
  }

  /**
   * Sends what is queued and waits for it to be acknowledged (up to `flushMs`; with `awaitAcks:
   * false`, only until it is written), then closes the socket.
   */
  async close(flushMs = 200, options: { awaitAcks?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    // Acknowledgements owed go now, so no peer waits for a copy of what it sent us last.
    this.acks.flushAll();
    // Without `awaitAcks` (the peer is going away too: it will not acknowledge), only until written.
    const done = options.awaitAcks === false ? () => this.owner.idle && this.held === 0 : () => this.settled();
    if (flushMs > 0 && !done()) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.until(done), new Promise((r) => (timer = setTimeout(r, flushMs)))]);
      clearTimeout(timer);
    }
    this.closed = true;
    this.clock.stop();
    this.acks.stop();
    this.faults?.close();
    this.wake();
    await this.owner.close();
  }
}
