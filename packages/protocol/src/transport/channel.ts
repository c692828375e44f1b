import type * as zmq from "zeromq";
import type { Logger } from "pino";
import { Signer, Verifier, type ChannelLabel } from "../auth/session.js";
import { AUTH_FAILED, MalformedMessageError, TAG, decodeBody, encodeBody } from "../codec/wire.js";
import type { Message, Part } from "../messages.js";
import { Deque } from "../util/deque.js";

/** A message received and authenticated on a channel. */
export interface Incoming<M extends Message = Message> {
  /** Routing id of the sender (ROUTER sockets only). */
  from: Buffer | undefined;
  header: M;
  parts: Part[];
}

export interface ChannelStats {
  received: number;
  sent: number;
  dropped: { malformed: number; badMac: number; replay: number; unroutable: number };
}

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
  /** A peer told us (unsigned) that our signatures fail: our key is wrong. */
  onAuthFailed?: () => void;
  /** Upper bound on queued outgoing messages before `send` reports backpressure. */
  maxQueue?: number;
}

/**
 * The single owner of one ZeroMQ socket: one reader loop, one writer loop draining a queue
 * (zeromq.js allows one `send` and one `receive` in flight per socket). Every outgoing message
 * is signed, every incoming one verified; what fails is dropped and counted, never delivered.
 */
export class Channel<In extends Message = Message, Out extends Message = Message> {
  readonly stats: ChannelStats = { received: 0, sent: 0, dropped: { malformed: 0, badMac: 0, replay: 0, unroutable: 0 } };
  private readonly signer: Signer;
  private readonly verifier: Verifier;
  private readonly queue = new Deque<Buffer[]>();
  private writing = false;
  private closed = false;
  private drainWaiters: Array<() => void> = [];
  private readonly authFailNoticeAt = new Map<string, number>();
  private readerDone: Promise<void> | undefined;

  constructor(private readonly opts: ChannelOptions<In>) {
    this.signer = new Signer(opts.clusterKey);
    this.verifier = new Verifier(opts.clusterKey);
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
   * Signs and queues a message. Returns false once the queue holds `maxQueue` messages or more;
   * `drained()` then resolves when it is below that again.
   */
  send(header: Out, parts?: readonly Part[], to?: Buffer): boolean {
    if (this.closed) return false;
    const label = this.opts.sendLabel;
    if (!label) throw new Error("this channel does not send");
    const body = encodeBody(header, parts);
    const auth = this.signer.sign(label, to, body);
    this.queue.push(to ? [to, TAG, auth, ...body] : [TAG, auth, ...body]);
    if (!this.writing) void this.writeLoop();
    return this.queue.length < (this.opts.maxQueue ?? 100_000);
  }

  /** Resolves when the outgoing queue is empty. */
  drained(): Promise<void> {
    if (this.queue.length === 0 && !this.writing) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private async writeLoop(): Promise<void> {
    this.writing = true;
    const socket = this.opts.socket as unknown as { send(frames: Buffer[]): Promise<void> };
    try {
      while (this.queue.length > 0 && !this.closed) {
        const frames = this.queue.shift() as Buffer[];
        try {
          await socket.send(frames);
          this.stats.sent++;
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code === "EHOSTUNREACH") {
            this.stats.dropped.unroutable++;
            this.opts.logger.debug({ err }, "peer is gone; message dropped");
          } else if (this.closed || code === "ETERM" || code === "EBADF" || (err as Error).message?.includes("closed")) {
            break;
          } else {
            this.opts.logger.error({ err }, "send failed");
          }
        }
      }
    } finally {
      this.writing = false;
      if (this.queue.length === 0 || this.closed) {
        const waiters = this.drainWaiters;
        this.drainWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  private async readLoop(): Promise<void> {
    const { socket, router } = this.opts;
    try {
      for await (const frames of socket as unknown as AsyncIterable<Buffer[]>) {
        this.handleFrames(frames, router === true);
      }
    } catch (err) {
      if (!this.closed) this.opts.logger.error({ err }, "receive loop ended");
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
    if (!router && frames.length === 2 && auth?.equals(AUTH_FAILED)) {
      this.opts.onAuthFailed?.();
      return;
    }
    const label = this.opts.recvLabel;
    if (!auth || !label || frames.length < start + 3) {
      this.stats.dropped.malformed++;
      return;
    }
    const body = frames.slice(start + 2);
    const verdict = this.verifier.verify(label, router ? undefined : this.opts.selfId, auth, body);
    if (verdict !== "ok") {
      if (verdict === "bad-mac" || verdict === "malformed") {
        this.stats.dropped[verdict === "bad-mac" ? "badMac" : "malformed"]++;
        if (router && from && verdict === "bad-mac") this.noticeAuthFailure(from);
      } else this.stats.dropped.replay++;
      this.opts.logger.warn({ verdict, label }, "message refused");
      return;
    }
    let decoded;
    try {
      decoded = decodeBody(frames, start + 2);
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

  /** Tells a peer whose signatures fail, at most once a second per peer. */
  private noticeAuthFailure(to: Buffer): void {
    const key = to.toString("latin1");
    const now = Date.now();
    if ((this.authFailNoticeAt.get(key) ?? 0) > now - 1000) return;
    if (this.authFailNoticeAt.size > 10_000) this.authFailNoticeAt.clear();
    this.authFailNoticeAt.set(key, now);
    this.queue.push([to, TAG, AUTH_FAILED]);
    if (!this.writing) void this.writeLoop();
  }

  /** Flushes what is queued (up to `flushMs`) and closes the socket. */
  async close(flushMs = 200): Promise<void> {
    if (this.closed) return;
    if (flushMs > 0 && (this.queue.length > 0 || this.writing)) {
      await Promise.race([this.drained(), new Promise((r) => setTimeout(r, flushMs).unref())]);
    }
    this.closed = true;
    this.opts.socket.close();
    await this.readerDone?.catch(() => undefined);
  }
}
