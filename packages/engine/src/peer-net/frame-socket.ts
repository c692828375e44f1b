import { connect, createServer, type Server, type Socket } from "node:net";
import { randomBytes } from "node:crypto";

/**
 * Multipart messages over plain TCP (Node's `net`), with the part of a ZeroMQ socket's interface
 * that the protocol's `Channel` uses (`send`, `receive`, `readable`, `closed`, `close`), so the
 * executor thread can own its peer links: a worker thread may hold these sockets and be
 * terminated at any time (libuv closes them), where zeromq 6.8 aborts the whole process if a
 * terminated thread had a receive in flight (test/zmq-worker.test.ts). Without ZeroMQ's I/O
 * thread a round trip also costs two thread wake-ups less (21 µs against 64 µs here, bare).
 *
 * Framing: `u32 length of the rest | u32 frame count | (u32 frame length | u32 0 | bytes | 0-7
 * zero bytes)*`: every frame starts 8-byte aligned from the message's start, so a large typed
 * array received (in a buffer of its own) is viewed where it lies, never copied to realign it.
 * Nothing here is trusted: every message is authenticated by the `Channel` above it, and a stream
 * that breaks the framing is closed.
 */

const HEADER = 8;
const pad = (n: number): number => (8 - (n % 8)) % 8;

/** From this size on, a message is copied into its own buffer as its bytes arrive. */
const FILL_FROM = 64 * 1024;

class Reader {
  private chunks: Buffer[] = [];
  private size = 0;
  /**
   * A large message being received: its buffer and the bytes in it so far. Copying each read in
   * at once (rather than keeping the reads until the message is whole) lets the allocator reuse
   * the reads' memory: fresh pages cost more here than the copy.
   */
  private filling: { buf: Buffer; at: number } | undefined;
  constructor(private readonly maxBytes: number) {}

  /** Adds bytes; returns the complete messages (undefined: the stream is malformed). */
  push(chunk: Buffer): Buffer[][] | undefined {
    const out: Buffer[][] = [];
    let rest: Buffer | undefined = chunk;
    while (rest && rest.length > 0) {
      const fill = this.filling;
      if (fill) {
        const k = Math.min(rest.length, fill.buf.length - fill.at);
        rest.copy(fill.buf, fill.at, 0, k);
        fill.at += k;
        rest = rest.subarray(k);
        if (fill.at < fill.buf.length) return out;
        this.filling = undefined;
        const frames = parse(fill.buf);
        if (!frames) return undefined;
        out.push(frames);
        continue;
      }
      this.chunks.push(rest);
      this.size += rest.length;
      rest = undefined;
      for (;;) {
        if (this.size < 4) break;
        const len = this.peek(4).readUInt32BE(0);
        if (len < 4 || len > this.maxBytes) return undefined;
        if (this.size < 4 + len && 4 + len >= FILL_FROM) {
          // Start filling the message's own buffer with what is here; later reads go straight in.
          const buf = Buffer.allocUnsafeSlow(4 + len);
          const have = this.size;
          this.take(have).copy(buf, 0);
          this.filling = { buf, at: have };
          break;
        }
        if (this.size < 4 + len) break;
        const frames = parse(this.take(4 + len));
        if (!frames) return undefined;
        out.push(frames);
      }
    }
    return out;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    if (first.length >= n) return first;
    return Buffer.concat(this.chunks).subarray(0, n);
  }

  /** The next `n` bytes, as one Buffer (a view when they lie in one chunk). */
  private take(n: number): Buffer {
    this.size -= n;
    const first = this.chunks[0] as Buffer;
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafeSlow(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0] as Buffer;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}

/** The frames of one whole message (`u32 length` included); undefined if they do not add up. */
function parse(msg: Buffer): Buffer[] | undefined {
  if (msg.length < HEADER) return undefined;
  const count = msg.readUInt32BE(4);
  const frames: Buffer[] = [];
  let at = HEADER;
  for (let i = 0; i < count; i++) {
    if (at + 8 > msg.length) return undefined;
    const n = msg.readUInt32BE(at);
    at += 8;
    if (at + n + pad(n) > msg.length) return undefined;
    frames.push(msg.subarray(at, at + n));
    at += n + pad(n);
  }
  return at === msg.length ? frames : undefined;
}

const ZEROS = Buffer.alloc(8);

/** Sockets corked until the current tick's writes are all queued. */
const corked = new WeakSet<Socket>();

/**
 * Writes of one tick go out in one system call: a collective often sends two messages in the same
 * turn (its call check, then its data), and a write costs each side a kernel round (10–20 µs here).
 */
function batch(sock: Socket): void {
  if (corked.has(sock)) return;
  corked.add(sock);
  sock.cork();
  process.nextTick(() => {
    corked.delete(sock);
    sock.uncork();
  });
}

function write(sock: Socket, frames: readonly Uint8Array[]): void {
  batch(sock);
  let total = HEADER - 4;
  for (const f of frames) total += 8 + f.byteLength + pad(f.byteLength);
  // Small messages are copied into one write; large ones go frame by frame (writev), uncopied.
  if (total <= 64 * 1024) {
    const buf = Buffer.alloc(4 + total);
    buf.writeUInt32BE(total, 0);
    buf.writeUInt32BE(frames.length, 4);
    let at = HEADER;
    for (const f of frames) {
      buf.writeUInt32BE(f.byteLength, at);
      buf.set(f, at + 8);
      at += 8 + f.byteLength + pad(f.byteLength);
    }
    sock.write(buf);
    return;
  }
  const head = Buffer.alloc(HEADER);
  head.writeUInt32BE(total, 0);
  head.writeUInt32BE(frames.length, 4);
  sock.cork();
  sock.write(head);
  for (const f of frames) {
    const len = Buffer.alloc(8);
    len.writeUInt32BE(f.byteLength, 0);
    sock.write(len);
    sock.write(f);
    if (pad(f.byteLength)) sock.write(ZEROS.subarray(0, pad(f.byteLength)));
  }
  sock.uncork();
}

/** What `receive` waits on: queued messages, or the one waiting call. */
class Inbox {
  private readonly queue: Buffer[][] = [];
  private waiter: { resolve: (m: Buffer[]) => void; reject: (e: Error) => void } | undefined;
  closed = false;

  get readable(): boolean {
    return this.queue.length > 0;
  }

  put(m: Buffer[]): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.resolve(m);
    } else this.queue.push(m);
  }

  receive(): Promise<Buffer[]> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.closed) return Promise.reject(Object.assign(new Error("socket closed"), { code: "EBADF" }));
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  close(): void {
    this.closed = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(Object.assign(new Error("socket closed"), { code: "EBADF" }));
  }
}

/**
 * The dialling side (a DEALER's part): one connection to `host:port`, made again when it drops
 * (what was lost is the `Channel`'s to resend). The first message on each connection names this
 * link (`routingId`), as a ZeroMQ DEALER's identity does.
 */
export class FrameDealer {
  private sock: Socket | undefined;
  private readonly inbox = new Inbox();
  private closedFlag = false;
  private retry: NodeJS.Timeout | undefined;
  /** Connection failures in a row (a link that never connects is the owner's to give up on). */
  failures = 0;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly routingId: Buffer,
    private readonly maxBytes: number,
  ) {
    this.dial();
  }

  private dial(): void {
    if (this.closedFlag) return;
    const sock = connect({ host: this.host, port: this.port, noDelay: true });
    const reader = new Reader(this.maxBytes);
    this.sock = sock;
    sock.on("connect", () => {
      this.failures = 0;
    });
    write(sock, [this.routingId]);
    sock.on("data", (chunk: Buffer) => {
      const msgs = reader.push(chunk);
      if (!msgs) return void sock.destroy();
      for (const m of msgs) this.inbox.put(m);
    });
    sock.on("error", () => undefined);
    sock.on("close", () => {
      if (this.sock !== sock || this.closedFlag) return;
      this.failures++;
      this.sock = undefined;
      this.retry = setTimeout(() => this.dial(), Math.min(1_000, 20 * this.failures)).unref();
    });
  }

  get readable(): boolean {
    return this.inbox.readable;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  async send(frames: Buffer[]): Promise<void> {
    if (this.closedFlag) throw Object.assign(new Error("socket closed"), { code: "EBADF" });
    // Not connected now: dropped, as a ZeroMQ send to a peer that is away; the Channel resends.
    if (this.sock && !this.sock.destroyed) write(this.sock, frames);
  }

  receive(): Promise<Buffer[]> {
    return this.inbox.receive();
  }

  close(): void {
    this.closedFlag = true;
    clearTimeout(this.retry);
    this.sock?.destroy();
    this.inbox.close();
  }
}

/**
 * The accepting side (a ROUTER's part): messages arrive as `[routingId, ...frames]` and a send
 * goes to the connection whose first message named that routing id (a newer connection with the
 * same id takes its place). A send to an id with no connection fails with `EHOSTUNREACH`, as a
 * ZeroMQ ROUTER's with `mandatory`: the Channel resends once the peer is back.
 */
export class FrameRouter {
  private readonly server: Server;
  private readonly inbox = new Inbox();
  private readonly peers = new Map<string, Socket>();
  private closedFlag = false;
  port = 0;

  constructor(private readonly maxBytes: number) {
    this.server = createServer((sock) => this.accept(sock));
    this.server.on("error", () => undefined);
  }

  listen(host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, host, () => {
        this.port = (this.server.address() as { port: number }).port;
        resolve(this.port);
      });
    });
  }

  /** Stops the server from keeping the thread alive (its connections too). */
  unref(): void {
    this.server.unref();
  }

  private accept(sock: Socket): void {
    sock.setNoDelay(true);
    const reader = new Reader(this.maxBytes);
    let id: Buffer | undefined;
    let key = "";
    sock.on("data", (chunk: Buffer) => {
      const msgs = reader.push(chunk);
      if (!msgs) return void sock.destroy();
      for (const m of msgs) {
        if (!id) {
          if (m.length !== 1 || !m[0] || m[0].length === 0 || m[0].length > 255) return void sock.destroy();
          id = Buffer.from(m[0]);
          key = id.toString("latin1");
          this.peers.get(key)?.destroy();
          this.peers.set(key, sock);
          continue;
        }
        this.inbox.put([id, ...m]);
      }
    });
    sock.on("error", () => undefined);
    sock.on("close", () => {
      if (id && this.peers.get(key) === sock) this.peers.delete(key);
    });
  }

  get readable(): boolean {
    return this.inbox.readable;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  async send(frames: Buffer[]): Promise<void> {
    const [to, ...rest] = frames;
    const sock = to ? this.peers.get(to.toString("latin1")) : undefined;
    if (!sock || sock.destroyed) throw Object.assign(new Error("peer not connected"), { code: "EHOSTUNREACH" });
    write(sock, rest);
  }

  receive(): Promise<Buffer[]> {
    return this.inbox.receive();
  }

  close(): void {
    this.closedFlag = true;
    this.server.close();
    for (const s of this.peers.values()) s.destroy();
    this.peers.clear();
    this.inbox.close();
  }
}

/** A routing id for a new link (unique per connection attempt). */
export function linkId(prefix: string): Buffer {
  return Buffer.from(`${prefix}:${randomBytes(6).toString("hex")}`);
}
