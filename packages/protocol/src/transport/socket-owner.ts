import type * as zmq from "zeromq";
import type { Logger } from "pino";
import { Deque } from "../util/deque.js";
import type { Outgoing } from "./send-window.js";

/**
 * How often a reader that does not hold the process looks for messages (ms): well inside the
 * peer's retransmission timeout (250 ms at least), so what it sends us is acknowledged before it
 * resends, and frequent enough that notifications and heartbeats are handled without delay a user would see.
 */
export const IDLE_POLL_MS = 50;

/** What the owner of a socket needs from the channel above it. */
export interface SocketHooks {
  logger: Logger;
  /** Counters the writer keeps: messages sent, and sends to a peer that is not connected. */
  stats: { sent: number; bytesSent?: number; dropped: { unroutable: number } };
  /** One message as received, routing frame included. Called in order, never concurrently. */
  onFrames(frames: Buffer[]): void;
  /** The writer takes `out` from the queue; false if it must not be sent (done meanwhile, or taken by the fault shim). */
  take(out: Outgoing): boolean;
  /** The writer stopped with the queue empty (or the socket closed): waiters may go on. */
  onIdle(): void;
}

/**
 * The single owner of one ZeroMQ socket: one reader loop and one writer loop draining a queue,
 * because zeromq.js allows one `send` and one `receive` in flight per socket. Nothing else calls
 * `send` or `receive`. It knows nothing of signatures or delivery: it moves frames.
 */
export class SocketOwner {
  private readonly queue = new Deque<Outgoing>();
  private writing = false;
  private closed = false;
  private readerDone: Promise<void> | undefined;
  /** The reader keeps a receive in flight (and so the process alive); see {@link hold}. */
  private holding = true;
  /** Wakes a reader that waits to poll (a switch to holding, or close). */
  private wakeReader: (() => void) | undefined;

  constructor(
    readonly socket: zmq.Socket,
    private readonly hooks: SocketHooks,
  ) {}

  /** Starts the reader loop (once). */
  start(): void {
    this.readerDone ??= this.readLoop();
  }

  /** Messages waiting to be written. */
  get queued(): number {
    return this.queue.length;
  }

  /** Nothing queued and nothing being written. */
  get idle(): boolean {
    return this.queue.length === 0 && !this.writing;
  }

  /**
   * Whether the reader keeps the process alive (default true). A pending `receive()` holds Node's
   * event loop and cannot be cancelled, so a reader that does not hold reads otherwise: it issues
   * no receive while the socket is empty and looks every {@link IDLE_POLL_MS} ms, on a timer that
   * does not hold the process either. Messages are still read, in order. The switch to not
   * holding takes effect once a receive already in flight returns (after the next message); the
   * switch back, at once.
   */
  hold(on: boolean): void {
    if (this.holding === on) return;
    this.holding = on;
    if (on) this.wakeReader?.();
  }

  /** Queues a message for the writer, starting it if it is not running. */
  enqueue(out: Outgoing): void {
    out.queued = true;
    this.queue.push(out);
    if (!this.writing) void this.writeLoop();
  }

  private async writeLoop(): Promise<void> {
    this.writing = true;
    const socket = this.socket as unknown as { send(frames: Buffer[]): Promise<void> };
    const { hooks } = this;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const out = this.queue.shift() as Outgoing;
        out.queued = false;
        if (!hooks.take(out)) continue;
        try {
          await socket.send(out.frames);
          hooks.stats.sent++;
          if (hooks.stats.bytesSent !== undefined) for (const f of out.frames) hooks.stats.bytesSent += f.length;
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code === "EHOSTUNREACH") {
            // Reliable messages stay unacknowledged and go again when the peer is back.
            hooks.stats.dropped.unroutable++;
            hooks.logger.debug({ err }, "peer is not connected; message not sent");
          } else if (
            this.closed ||
            code === "ETERM" ||
            code === "EBADF" ||
            (err as Error).message?.includes("closed")
          ) {
            break;
          } else {
            hooks.logger.error({ err }, "send failed");
          }
        }
      }
    } finally {
      this.writing = false;
      hooks.onIdle();
    }
  }

  private async readLoop(): Promise<void> {
    const socket = this.socket as unknown as {
      readonly closed: boolean;
      readonly readable: boolean;
      receive(): Promise<Buffer[]>;
    };
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
        this.hooks.onFrames(await socket.receive());
      }
    } catch (err) {
      if (!this.closed && !socket.closed) this.hooks.logger.error({ err }, "receive loop ended");
    }
  }

  /** Stops both loops (what is still queued is not sent), closes the socket and waits for the reader to end. */
  async close(): Promise<void> {
    this.closed = true;
    this.wakeReader?.();
    this.socket.close();
    await this.readerDone?.catch(() => undefined);
  }
}
