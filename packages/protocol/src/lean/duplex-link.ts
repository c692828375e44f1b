import { connect, createServer, type Server, type Socket } from "node:net";
import type { Part } from "../messages.js";
import type { Message } from "../peer-messages.js";
import { KEY, SMALL, helloKey, linkKeys, nonce, streamTag, verify } from "./link-auth.js";
import { MsgReader } from "./msg-reader.js";
import { readInPlace, readInto, type OnMessages } from "./read-in-place.js";
import { writer } from "./socket-writer.js";
import {
  DuplexKind,
  WELCOME_BYTES,
  ack,
  decode,
  encode,
  hello,
  kindOf,
  readHello,
  seqOf,
  welcome,
} from "./duplex-wire.js";

/** The largest hello (bytes after its length), and how long a connection may take to send it (ms). */
const HELLO_MAX = 512;
const HELLO_MS = 10_000;
/** An acknowledgement goes back at the latest this long after a message (ms), or at once past this many. */
const ACK_MS = 20;
const ACK_COUNT = 256;

export interface DuplexEvents {
  /** An authenticated message, once, in order. */
  message(header: Message, parts: Part[]): void;
  /** The connection ended (either side closed it, or a message failed its checks). */
  closed(): void;
}

/**
 * A client's direct link to an engine (docs/security.md, "Client links"): one TCP connection
 * carrying messages both ways, with the executor links' guarantees (`link-auth.ts`: keys of the
 * connection's own, derived from the cluster key with the client role's labels, a tag on every
 * message, numbers that must grow) and none of the `Channel`'s machinery: TCP keeps messages in
 * order and whole while the connection lives, and the link never reconnects. A side that gives a
 * link up (it closed, or left messages unacknowledged too long) sends what was not acknowledged
 * another way: the client its tasks through the controller, the engine its results.
 */
export class DuplexLink {
  private readonly write: (buf: Buffer) => void;
  private readonly scratch = Buffer.allocUnsafe(KEY + SMALL);
  private seq = 0;
  private last = 0;
  private acked = 0;
  /** The number of the last message the peer acknowledged (everything up to it). */
  peerAcked = 0;
  private ackTimer: NodeJS.Timeout | undefined;
  /** Sent and not acknowledged: the pieces written (frames the caller gave, held until the kernel has copied them). */
  private readonly sent: { seq: number; wire: Buffer[]; at: number }[] = [];
  private ended = false;
  readonly bytes = { sent: 0, received: 0 };
  on: DuplexEvents = { message: () => undefined, closed: () => undefined };

  private constructor(
    private readonly sock: Socket,
    private readonly keys: { send: Buffer; recv: Buffer },
    private readonly reader: MsgReader,
  ) {
    this.write = writer(sock);
    sock.on("close", () => this.close());
    // A large data message is tagged as it lands (its number read from its head, checked after as every field).
    reader.tagger = (head) => (kindOf(head) === DuplexKind.Data ? streamTag(keys.recv, seqOf(head)) : undefined);
  }

  /**
   * Dials an engine's client endpoint: `welcome(link)` once it answered `ok`, `refused()` when it
   * said no, closed, sent something else, or did not answer within `ms`.
   */
  static dial(
    o: { host: string; port: number; clusterKey: Buffer; to: number; id: Buffer; maxBytes: number; ms: number },
    then: { welcome(link: DuplexLink): void; refused(): void },
  ): { cancel(): void; hold(on: boolean): void } {
    const reader = new MsgReader(o.maxBytes);
    let feed: OnMessages = (msgs) => onHandshake(msgs);
    // Reads land in place (`readInto`): a large message's bytes go from the kernel into its buffer.
    const sock = connect({
      host: o.host,
      port: o.port,
      noDelay: true,
      onread: readInto(reader, (msgs, n) => feed(msgs, n)),
    });
    const helloMsg = hello(helloKey(o.clusterKey, "client"), o.to, o.id, nonce());
    sock.write(helloMsg);
    let done = false;
    const refuse = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      then.refused();
    };
    const timer = setTimeout(refuse, o.ms);
    const scratch = Buffer.allocUnsafe(KEY + SMALL);
    const onHandshake = (msgs: Buffer[] | undefined) => {
      if (done) return;
      const first = msgs?.[0];
      if (!first) return msgs ? undefined : refuse();
      if (kindOf(first) !== DuplexKind.Welcome || first.length !== WELCOME_BYTES || first[5] !== 1) return refuse();
      const keys = linkKeys(o.clusterKey, helloMsg, first.subarray(6, 6 + 16), "client");
      if (!verify(keys.a2d, scratch, first, 0)) return refuse();
      done = true;
      clearTimeout(timer);
      const link = new DuplexLink(sock, { send: keys.d2a, recv: keys.a2d }, reader);
      feed = (m, n) => link.received(m, n);
      const early = msgs.slice(1);
      if (early.length) queueMicrotask(() => link.take(early));
      then.welcome(link);
    };
    sock.on("error", () => undefined);
    sock.on("close", refuse);
    return {
      cancel: refuse,
      // A client with nothing pending lets its process exit while a dial is under way (bounded by `ms` otherwise).
      hold: (on) => {
        if (on) {
          sock.ref();
          timer.ref();
        } else {
          sock.unref();
          timer.unref();
        }
      },
    };
  }

  /** A read after the handshake: `n` bytes, its complete messages (undefined: the stream is malformed). */
  private received(msgs: Buffer[] | undefined, n: number): void {
    if (this.ended) return;
    this.bytes.received += n;
    if (!msgs) return this.close();
    this.take(msgs);
  }

  private take(msgs: Buffer[]): void {
    if (this.ended) return;
    for (const m of msgs) if (!this.read(m)) return this.close();
    if (this.last !== this.acked) {
      if (this.last - this.acked >= ACK_COUNT) this.sendAck();
      else this.ackTimer ??= setTimeout(() => this.sendAck(), ACK_MS);
    }
  }

  private sendAck(): void {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    this.acked = this.last;
    if (!this.ended) this.out([ack(this.keys.send, this.last)]);
  }

  private out(pieces: Buffer[]): void {
    for (const b of pieces) {
      this.bytes.sent += b.length;
      this.write(b);
    }
  }

  private read(m: Buffer): boolean {
    const n = seqOf(m);
    const kind = kindOf(m);
    if (kind === DuplexKind.Ack) {
      if (n > this.seq || n < this.peerAcked || !verify(this.keys.recv, this.scratch, m, n)) return false;
      this.peerAcked = n;
      let k = 0;
      // Acknowledged: the kernel has copied these bytes, nothing reads them any more.
      while (k < this.sent.length && (this.sent[k] as { seq: number }).seq <= n) k++;
      if (k) this.sent.splice(0, k);
      return true;
    }
    // Numbers only grow on a connection (its keys are its own): a replay within it is refused before any crypto.
    if (kind !== DuplexKind.Data || n <= this.last || !verify(this.keys.recv, this.scratch, m, n, this.reader.tagOf(m)))
      return false;
    const msg = decode(m);
    if (!msg) return false;
    this.last = n;
    this.on.message(msg.header, msg.parts);
    return true;
  }

  /** Signs and sends; returns the message's number (for `acknowledged`). */
  send(header: Message, parts?: readonly Part[]): number {
    const seq = ++this.seq;
    if (this.ended) return seq;
    const wire = encode(this.keys.send, seq, header, parts);
    this.sent.push({ seq, wire, at: performance.now() });
    this.out(wire);
    return seq;
  }

  /** Whether the peer acknowledged every message up to `seq` (undefined once the link is closed). */
  acknowledged(seq: number): boolean | undefined {
    return this.ended ? undefined : this.peerAcked >= seq;
  }

  /** True when a message has waited for its acknowledgement longer than `ms`. */
  overdue(ms: number): boolean {
    const first = this.sent[0];
    return first !== undefined && performance.now() - first.at > ms;
  }

  /** What the peer did not acknowledge, in order. */
  unacked(): Array<{ header: Message; parts: Part[] }> {
    const out: Array<{ header: Message; parts: Part[] }> = [];
    for (const { wire } of this.sent) {
      const m = decode(wire.length === 1 ? (wire[0] as Buffer) : Buffer.concat(wire));
      if (m) out.push(m);
    }
    return out;
  }

  /** Whether the socket holds the process (a client's links let it exit when no work is pending). */
  hold(on: boolean): void {
    if (on) this.sock.ref();
    else this.sock.unref();
  }

  get closed(): boolean {
    return this.ended;
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.ackTimer);
    this.sock.destroy();
    this.on.closed();
  }

  /**
   * An engine's endpoint for clients' links. `hello(to, id)`: is this the engine `to`, and does it
   * take client `id`'s link? `link(link, id)` once it is made (set its `on` there).
   */
  static listen(
    o: { host: string; clusterKey: Buffer; maxBytes: number; helloMs?: number },
    on: { hello(to: number, id: Buffer): boolean; link(link: DuplexLink, id: Buffer): void },
  ): Promise<{ port: number; server: Server }> {
    const hk = helloKey(o.clusterKey, "client");
    // Paused: `readInPlace` takes each connection over before anything is read.
    const server = createServer({ pauseOnConnect: true }, (raw) => {
      // Before the hello nothing is trusted: a hello is small, and comes soon or the connection goes.
      const reader = new MsgReader(HELLO_MAX);
      let feed: OnMessages = (msgs) => onHello(msgs);
      const sock = readInPlace(raw, reader, (msgs, n) => feed(msgs, n));
      sock.setNoDelay(true);
      const timer = setTimeout(() => sock.destroy(), o.helloMs ?? HELLO_MS).unref();
      sock.on("close", () => clearTimeout(timer));
      const scratch = Buffer.allocUnsafe(KEY + SMALL);
      const onHello = (msgs: Buffer[] | undefined) => {
        const first = msgs?.[0];
        if (!first) return msgs ? undefined : void sock.destroy();
        const h = readHello(first);
        // A client sends nothing more before the welcome.
        if (!h || msgs.length > 1 || !verify(hk, scratch, first, 0)) return void sock.destroy();
        clearTimeout(timer);
        feed = () => undefined;
        const ok = on.hello(h.to, h.id);
        const n = nonce();
        const keys = linkKeys(o.clusterKey, first, n, "client");
        sock.write(welcome(keys.a2d, ok, n));
        if (!ok) return void sock.end();
        reader.limit(o.maxBytes);
        const link = new DuplexLink(sock, { send: keys.a2d, recv: keys.d2a }, reader);
        feed = (m, k) => link.received(m, k);
        on.link(link, h.id);
      };
      sock.on("error", () => undefined);
    });
    server.on("error", () => undefined);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, o.host, () => {
        server.unref();
        resolve({ port: (server.address() as { port: number }).port, server });
      });
    });
  }
}
