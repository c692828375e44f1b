import type * as zmq from "zeromq";
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { Signer, Verifier, readAuth, type ChannelLabel, type SessionState } from "../auth/session.js";
import { AUTH_FAILED, MalformedMessageError, TAG, decodeBody, encodeBody } from "../codec/wire.js";
import type { LinkReport, Message, Part } from "../messages.js";
import { Deque } from "../util/deque.js";
import { FaultShim, faultsFromEnv, type FaultSpec } from "./faults.js";
import { DEFAULT_LINK_LIMITS, Link, outgoing, type Early, type LinkLimits, type Outgoing } from "./link.js";

/** A message received and authenticated on a channel. */
export interface Incoming<M extends Message = Message> {
  /** Routing id of the sender (ROUTER sockets only). */
  from: Buffer | undefined;
  header: M;
  parts: Part[];
}

/** A channel's counters (`faults` only while fault injection is on). */
export type ChannelStats = LinkReport;

export interface ChannelOptions<In extends Message> {
  socket: zmq.Socket;
  clusterKey: Buffer;
  /** Label bound into outgoing signatures (undefined: this channel does not send). */
  sendLabel?: ChannelLabel;
  /** Label expected on incoming signatures (undefined: this channel does not receive). */
  recvLabel?: ChannelLabel;
  /** ROUTER: frames start with the peer's routing id, and outgoing messages need `to`. */
  router?: boolean;
  /** Our own routing id, bound into what a ROUTER sends us. */
  selfId?: Buffer;
  logger: Logger;
  onMessage?: (msg: Incoming<In>) => void;
  /** A peer told us (unsigned, with evidence) that it received exactly what we signed and the tag failed: our key is wrong. */
  onAuthFailed?: () => void;
  /** Upper bound on queued outgoing messages before `send` reports backpressure. */
  maxQueue?: number;
  /**
   * Reliable delivery (default true): per-peer acknowledgements and retransmission, each message
   * delivered once and in order. False for one-way channels (notifications), where sequence
   * numbers only need to increase.
   */
  reliable?: boolean;
  /** Caps on one peer's unacknowledged messages (default 10,000 messages, 256 MiB). */
  window?: Partial<LinkLimits>;
  /** Test only: inject faults on this channel's sends (default: from `PTCLUSTER_TEST_FAULTS`; null: never). */
  faults?: FaultSpec | null;
}

/**
 * An acknowledgement waits this long for a message to ride on before it goes alone (ms): longer
 * than a round trip under load, so a request is acknowledged by its reply, far shorter than the
 * retransmission timeout. Every standalone acknowledgement costs both processes a wake-up.
 */
const ACK_DELAY_MS = 20;
/** Retransmission clock period while something is unacknowledged (ms). */
const TICK_MS = 50;
/** Links with nothing in flight, idle this long, are dropped when links pile up (ms). */
const IDLE_LINK_MS = 60_000;
/**
 * An acknowledgement goes at once, before the message that tips it is handled, when this many
 * messages or bytes are unacknowledged: a reader busy with a stream of messages never lets the
 * delay timer run (each message it reads continues it as a microtask), and handling a batch of
 * 100,000 tasks takes long enough for the sender to think it lost. Not much lower: a client
 * feeding a map sends dozens of small messages between two replies, and an acknowledgement that
 * goes alone costs both sides a wake-up.
 */
const ACK_EVERY_MESSAGES = 256;
const ACK_EVERY_BYTES = 256 * 1024;
/**
 * How often a reader that does not hold the process looks for messages (ms): well inside the
 * peer's retransmission timeout (250 ms at least), so what it sends us is acknowledged before it
 * resends, and frequent enough that notifications and heartbeats are handled without delay a user would see.
 */
const IDLE_POLL_MS = 50;

/**
 * The single owner of one ZeroMQ socket: one reader loop, one writer loop draining a queue
 * (zeromq.js allows one `send` and one `receive` in flight per socket). Every outgoing message
 * is signed, every incoming one verified; what fails is dropped and counted, never delivered.
 *
 * On reliable channels each peer has a {@link Link}: messages are numbered per stream,
 * acknowledged cumulatively (on outgoing messages, or alone after {@link ACK_DELAY_MS}), kept
 * until acknowledged and sent again when late, so what ZeroMQ loses (a connection that drops, a
 * ROUTER send to a peer that is away) still arrives, once and in order. The channel never
 * declares a peer dead: `overdue` tells its owner which peers leave messages unacknowledged,
 * and the owner, which runs heartbeats, decides and calls `forget`.
 */
export class Channel<In extends Message = Message, Out extends Message = Message> {
  readonly stats: ChannelStats = { received: 0, sent: 0, retransmitted: 0, dropped: { malformed: 0, badMac: 0, replay: 0, unroutable: 0, overflow: 0 } };
  private readonly signer: Signer;
  private readonly verifier: Verifier;
  private readonly queue = new Deque<Outgoing>();
  private writing = false;
  private closed = false;
  private waiters: Array<{ ready: () => boolean; resolve: () => void }> = [];
  private readonly authFailNoticeAt = new Map<string, number>();
  private readerDone: Promise<void> | undefined;
  private readonly reliable: boolean;
  private readonly limits: LinkLimits;
  private readonly links = new Map<string, Link>();
  private readonly linkOf = new WeakMap<Buffer, Link>();
  private sweepAt = 64;
  /** Messages held for window room, over all links. */
  private held = 0;
  private readonly owed = new Set<Link>();
  private ackTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private lastTick = 0;
  private skippedTick = false;
  private readonly faults: FaultShim | undefined;
  /** The reader keeps a receive in flight (and so the process alive); see {@link hold}. */
  private holding = true;
  /** Wakes a reader that waits to poll (a switch to holding, or close). */
  private wakeReader: (() => void) | undefined;

  constructor(private readonly opts: ChannelOptions<In>) {
    this.signer = new Signer(opts.clusterKey);
    this.verifier = new Verifier(opts.clusterKey);
    this.reliable = opts.reliable ?? true;
    this.limits = { ...DEFAULT_LINK_LIMITS, ...opts.window };
    const spec = this.reliable && opts.sendLabel ? (opts.faults === undefined ? faultsFromEnv() : opts.faults) : undefined;
    if (spec) {
      this.faults = new FaultShim(spec, opts.sendLabel ?? "", opts.router ? 2 : 1, (out) => this.enqueue(out));
      this.stats.faults = this.faults.counts;
      opts.logger.warn({ faults: spec, channel: opts.sendLabel }, "FAULT INJECTION IS ON (PTCLUSTER_TEST_FAULTS): this channel drops, duplicates, delays and corrupts its messages on purpose; for tests only");
    }
  }

  get socket(): zmq.Socket {
    return this.opts.socket;
  }

  /** Starts the reader loop. */
  start(): this {
    this.readerDone ??= this.readLoop();
    return this;
  }

  /**
   * Whether this channel keeps the process alive (default true). A pending `receive()` holds
   * Node's event loop and cannot be cancelled, so a channel that does not hold reads otherwise:
   * it issues no receive while the socket is empty and looks every {@link IDLE_POLL_MS} ms, on a
   * timer that does not hold the process either. Messages are still read, in order, and
   * acknowledged (its timers never held it). The switch to not holding takes effect once a
   * receive already in flight returns (after the next message); the switch back, at once.
   */
  hold(on: boolean): void {
    if (this.holding === on) return;
    this.holding = on;
    if (on) this.wakeReader?.();
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
    const maxQueue = this.opts.maxQueue ?? 100_000;
    if (!this.reliable) {
      const auth = this.signer.sign(label, to, body);
      this.enqueue(outgoing(to ? [to, TAG, auth, ...body] : [TAG, auth, ...body], 0, 0));
      return this.queue.length < maxQueue;
    }
    const link = this.link(to);
    const auth = this.signer.sign(label, to, body, link.prev, link.rx?.last ?? 0);
    link.prev = this.signer.seq;
    let bytes = 0;
    for (const f of body) bytes += f.length;
    const out = outgoing(to ? [to, TAG, auth, ...body] : [TAG, auth, ...body], link.prev, bytes);
    if (link.admit(out)) {
      // The acknowledgement rides on this message (a gap report goes alone: it needs `prev`).
      if (link.gapHigh === 0) {
        link.ackOwed = 0;
        link.ackOwedBytes = 0;
      }
      this.enqueue(out);
      if (!this.tickTimer) {
        this.lastTick = Date.now();
        this.tickTimer = setInterval(() => this.tick(), TICK_MS).unref();
      }
    } else this.held++;
    return link.held.length === 0 && link.hasRoom() && this.queue.length < maxQueue;
  }

  /** Resolves when nothing waits to be written (queued, or held for window room). */
  drained(): Promise<void> {
    return this.until(() => this.queue.length === 0 && !this.writing && this.held === 0);
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
    let n = 0;
    for (const link of this.links.values()) n += link.unacked.length;
    return n;
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
    const key = peer ? peer.toString("latin1") : "";
    const link = this.links.get(key);
    if (!link) return [];
    this.links.delete(key);
    return this.drop(link);
  }

  /** Abandons a link; returns what it had sent or held without an acknowledgement, decoded (the owner may keep it). */
  private drop(link: Link): Array<{ header: Out; parts: Part[] }> {
    // What it sent last (a goodbye, say) is acknowledged before it is forgotten.
    if (link.ackOwed) this.sendAck(link);
    link.forgotten = true;
    this.owed.delete(link);
    const heldBefore = link.held.length;
    const undelivered: Array<{ header: Out; parts: Part[] }> = [];
    for (const out of link.abandon()) {
      if (out.seq === 0) continue;
      try {
        const { header, parts } = decodeBody(out.frames, link.to ? 3 : 2);
        undelivered.push({ header: header as Out, parts });
      } catch {
        // Our own message: it decodes. Nothing to keep if it does not.
      }
    }
    this.held -= heldBefore;
    this.wake();
    return undelivered;
  }

  private link(to: Buffer | undefined): Link {
    // Owners send to the same routing id Buffer over and over (an engine's, a client's): find its
    // link without turning the id into a string each time.
    const cached = to && this.linkOf.get(to);
    if (cached && !cached.forgotten) return cached;
    const key = to ? to.toString("latin1") : "";
    let link = this.links.get(key);
    if (!link) {
      if (this.links.size >= this.sweepAt) this.sweep();
      link = new Link(to, this.limits);
      this.links.set(key, link);
    }
    if (to) this.linkOf.set(to, link);
    return link;
  }

  /** Drops links idle for a while with nothing in flight: a later message simply starts a new stream. */
  private sweep(): void {
    const before = Date.now() - IDLE_LINK_MS;
    for (const [key, link] of this.links) {
      if (link.lastActive < before && link.unacked.length === 0 && link.held.length === 0 && link.earlyCount === 0 && !link.ackOwed) {
        this.links.delete(key);
        link.forgotten = true;
      }
    }
    this.sweepAt = Math.max(64, this.links.size * 2);
  }

  private enqueue(out: Outgoing): void {
    out.queued = true;
    this.queue.push(out);
    if (!this.writing) void this.writeLoop();
  }

  private async writeLoop(): Promise<void> {
    this.writing = true;
    const socket = this.opts.socket as unknown as { send(frames: Buffer[]): Promise<void> };
    try {
      while (this.queue.length > 0 && !this.closed) {
        const out = this.queue.shift() as Outgoing;
        out.queued = false;
        if (out.done) continue; // acknowledged while it waited, or its peer forgotten
        if (out.seq !== 0) {
          out.sentAt = Date.now();
          if (out.firstSentAt < 0) out.firstSentAt = out.sentAt;
        }
        if (this.faults !== undefined && this.faults.intercept(out)) continue;
        try {
          await socket.send(out.frames);
          this.stats.sent++;
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code === "EHOSTUNREACH") {
            // Reliable messages stay unacknowledged and go again when the peer is back.
            this.stats.dropped.unroutable++;
            this.opts.logger.debug({ err }, "peer is not connected; message not sent");
          } else if (this.closed || code === "ETERM" || code === "EBADF" || (err as Error).message?.includes("closed")) {
            break;
          } else {
            this.opts.logger.error({ err }, "send failed");
          }
        }
      }
    } finally {
      this.writing = false;
      this.wake();
    }
  }

  /** Retransmission clock: sends late messages again; stops when nothing is unacknowledged. */
  private tick(): void {
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
    for (const link of this.links.values()) {
      if (link.unacked.length === 0) continue;
      pending = true;
      const out = link.timedOut(now);
      if (out) {
        this.stats.retransmitted++;
        this.opts.logger.debug({ channel: this.opts.sendLabel, seq: out.seq, bytes: out.bytes, waitedMs: now - out.sentAt, times: out.retransmits }, "no acknowledgement in time; sending again");
        this.enqueue(out);
      }
    }
    if (!pending) {
      clearInterval(this.tickTimer);
      this.tickTimer = undefined;
    }
  }

  /**
   * Notes that `link` is owed an acknowledgement (for a message of `bytes`): it goes on the next
   * message to the peer, alone after ACK_DELAY_MS, or at once if much is owed.
   */
  private owe(link: Link, bytes: number): void {
    if (link.ackOwed++ === 0) {
      link.lastActive = Date.now(); // the acknowledgement is due ACK_DELAY_MS from now
      this.owed.add(link);
    }
    link.ackOwedBytes += bytes;
    if (link.ackOwed >= ACK_EVERY_MESSAGES || link.ackOwedBytes >= ACK_EVERY_BYTES) this.sendAck(link);
    else this.ackTimer ??= setTimeout(() => this.flushAcks(), ACK_DELAY_MS).unref();
  }

  /** Sends the acknowledgements that are due; waits again for those owed more recently. */
  private flushAcks(): void {
    this.ackTimer = undefined;
    const now = Date.now();
    let next = Infinity;
    for (const link of this.owed) {
      if (!link.ackOwed || link.forgotten) this.owed.delete(link);
      else if (now - link.lastActive >= ACK_DELAY_MS - 1) {
        this.sendAck(link);
        this.owed.delete(link);
      } else next = Math.min(next, link.lastActive + ACK_DELAY_MS - now);
    }
    if (next !== Infinity) this.ackTimer = setTimeout(() => this.flushAcks(), next).unref();
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
    this.enqueue(outgoing(link.to ? [link.to, TAG, auth] : [TAG, auth], 0, 0));
  }

  private onAck(link: Link, ack: number): void {
    const send = link.acknowledge(ack, Date.now());
    if (send) {
      for (const out of send) {
        if (out.retransmits > 0 && out.sentAt >= 0) this.stats.retransmitted++;
        else this.held--;
        this.enqueue(out);
      }
    }
    if (this.waiters.length) this.wake();
  }

  private async readLoop(): Promise<void> {
    const socket = this.opts.socket as unknown as { readonly closed: boolean; readonly readable: boolean; receive(): Promise<Buffer[]> };
    const router = this.opts.router === true;
    let timer: NodeJS.Timeout | undefined;
    try {
      while (!this.closed && !socket.closed) {
        if (!this.holding && !socket.readable) {
          // Nothing to read and nothing to hold the process for: wait without a receive in flight.
          await new Promise<void>((resolve) => {
            this.wakeReader = resolve;
            timer = setTimeout(resolve, IDLE_POLL_MS).unref();
          });
          this.wakeReader = undefined;
          clearTimeout(timer);
          continue;
        }
        this.handleFrames(await socket.receive(), router);
      }
    } catch (err) {
      if (!this.closed && !socket.closed) this.opts.logger.error({ err }, "receive loop ended");
    }
  }

  private handleFrames(frames: Buffer[], router: boolean): void {
    const start = router ? 1 : 0;
    const from = router ? frames[0] : undefined;
    const tag = frames[start];
    if (!tag || !tag.equals(TAG)) {
      this.stats.dropped.malformed++;
      return;
    }
    const auth = frames[start + 1];
    if (!router && auth?.equals(AUTH_FAILED)) {
      this.onAuthFailedNotice(frames[start + 2], frames[start + 3]);
      return;
    }
    const label = this.opts.recvLabel;
    const f = auth && label ? readAuth(auth) : undefined;
    if (!auth || !label || !f || (!this.reliable && frames.length < start + 3)) {
      this.stats.dropped.malformed++;
      return;
    }
    const body = frames.slice(start + 2);
    const recipient = router ? undefined : this.opts.selfId;
    if (!this.reliable) {
      const verdict = this.verifier.verify(label, recipient, auth, body);
      if (verdict === "ok") this.deliver(from, frames, start + 2);
      else this.refused(verdict, label, from, frames);
      return;
    }

    const key = from ? from.toString("latin1") : "";
    const standaloneAck = body.length === 0;
    const known = this.verifier.session(f.session);
    // Delivered already: a duplicate, a retransmission that crossed our acknowledgement, or a
    // replay. Refused before any crypto; the sender (if it is the peer of this link) is acked again.
    if (!standaloneAck && known && f.seq <= known.last) {
      this.stats.dropped.replay++;
      const link = this.links.get(key);
      if (link && link.peerSession === f.session) this.owe(link, 0);
      return;
    }
    const state = this.verifier.authenticate(label, recipient, auth, body, f, known);
    if (!state) {
      this.refused("bad-mac", label, from, frames);
      return;
    }
    const link = this.links.get(key) ?? this.link(from);
    if (link.peerSession !== f.session) {
      if (link.peerSession !== undefined) {
        // The peer restarted (a new session behind the same routing id): what we had in flight
        // was for the old process.
        this.opts.logger.info({ channel: label }, "peer session changed; its link starts over");
        this.held -= link.held.length;
        link.abandon();
      }
      link.peerSession = f.session;
      link.rx = state;
    }
    if (f.ack !== 0 && link.unacked.length > 0) this.onAck(link, f.ack);
    if (standaloneAck) {
      const resend = f.prev !== 0 ? link.gapReported(f.prev, Date.now()) : undefined;
      if (resend) {
        this.stats.retransmitted++;
        this.enqueue(resend);
      }
      return;
    }
    let bytes = 0;
    for (const b of body) bytes += b.length;
    if (f.prev !== state.last && f.prev !== 0) {
      // A gap: an earlier message of this stream is missing. Keep this one until it arrives, and
      // tell the sender (an acknowledgement that reports the gap).
      const kept = link.keepEarly(f.prev, { seq: f.seq, frames, bytes });
      if (kept === "kept") this.owe(link, 0);
      else this.stats.dropped[kept === "copy" ? "replay" : "overflow"]++;
      return;
    }
    this.deliverInOrder(link, state, { seq: f.seq, frames, bytes }, from, start + 2);
  }

  /** Delivers a stream message, then whatever was kept waiting for it. */
  private deliverInOrder(link: Link, state: SessionState, first: Early, from: Buffer | undefined, at: number): void {
    for (let next: Early | undefined = first; next && !link.forgotten; next = link.takeEarly(state.last)) {
      state.last = next.seq;
      this.owe(link, next.bytes);
      this.deliver(from, next.frames, at);
    }
  }

  private deliver(from: Buffer | undefined, frames: Buffer[], at: number): void {
    let decoded;
    try {
      decoded = decodeBody(frames, at);
    } catch (err) {
      if (!(err instanceof MalformedMessageError)) throw err;
      this.stats.dropped.malformed++;
      this.opts.logger.warn({ err: err.message }, "malformed message dropped");
      return;
    }
    this.stats.received++;
    try {
      this.opts.onMessage?.({ from, header: decoded.header as In, parts: decoded.parts });
    } catch (err) {
      this.opts.logger.error({ err, type: decoded.header.type }, "message handler failed");
    }
  }

  private refused(verdict: "malformed" | "bad-mac" | "replay", label: ChannelLabel, from: Buffer | undefined, frames: Buffer[]): void {
    if (verdict === "bad-mac") {
      this.stats.dropped.badMac++;
      if (from) this.noticeAuthFailure(from, frames);
    } else this.stats.dropped[verdict]++;
    this.opts.logger.warn({ verdict, label }, "message refused");
  }

  /**
   * Tells a peer whose signature failed, at most once a second per peer, with evidence: the auth
   * frame it sent and a digest of every frame received. The peer concludes its key is wrong only
   * if that is exactly what it sent; a message corrupted on the way is simply sent again.
   */
  private noticeAuthFailure(to: Buffer, frames: Buffer[]): void {
    const key = to.toString("latin1");
    const now = Date.now();
    if ((this.authFailNoticeAt.get(key) ?? 0) > now - 1000) return;
    if (this.authFailNoticeAt.size > 10_000) this.authFailNoticeAt.clear();
    this.authFailNoticeAt.set(key, now);
    this.enqueue(outgoing([to, TAG, AUTH_FAILED, frames[2] ?? Buffer.alloc(0), digest(frames, 2)], 0, 0));
  }

  /** A controller says a message of ours failed its tag check: believe it only if it received exactly what we sent. */
  private onAuthFailedNotice(echo: Buffer | undefined, received: Buffer | undefined): void {
    const link = this.links.get("");
    let sent: Outgoing | undefined;
    if (echo && received && link) {
      for (const q of [link.unacked, link.held]) for (const out of q) if (out.frames[1]?.equals(echo)) sent = out;
    }
    if (sent && received?.equals(digest(sent.frames, 1))) this.opts.onAuthFailed?.();
    else this.opts.logger.warn("a controller refused a message of ours that was altered on the way; it is sent again");
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
    if (this.queue.length > 0 || this.writing || this.held > 0) return false;
    for (const link of this.links.values()) if (link.unacked.length > 0) return false;
    return true;
  }

  /**
   * Sends what is queued and waits for it to be acknowledged (up to `flushMs`; with `awaitAcks:
   * false`, only until it is written), then closes the socket.
   */
  async close(flushMs = 200, options: { awaitAcks?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    // Acknowledgements owed go now, so no peer waits for a copy of what it sent us last.
    for (const link of this.owed) if (link.ackOwed && !link.forgotten) this.sendAck(link);
    this.owed.clear();
    // Without `awaitAcks` (the peer is going away too: it will not acknowledge), only until written.
    const done = options.awaitAcks === false ? () => this.queue.length === 0 && !this.writing && this.held === 0 : () => this.settled();
    if (flushMs > 0 && !done()) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.until(done), new Promise((r) => (timer = setTimeout(r, flushMs)))]);
      clearTimeout(timer);
    }
    this.closed = true;
    clearInterval(this.tickTimer);
    clearTimeout(this.ackTimer);
    this.faults?.close();
    this.wake();
    this.wakeReader?.();
    this.opts.socket.close();
    await this.readerDone?.catch(() => undefined);
  }
}

/** SHA-256 of frames `from..` (auth frame and body): evidence of what a peer received. */
function digest(frames: readonly Buffer[], from: number): Buffer {
  const h = createHash("sha256");
  for (let i = from; i < frames.length; i++) h.update(frames[i] as Buffer);
  return h.digest();
}
