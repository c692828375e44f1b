import { connect, createServer, type Server, type Socket } from "node:net";
import type { CommAbortMsg, CommMsg, Part } from "@ptcluster/protocol";
import {
  KEY,
  MsgReader,
  SMALL,
  helloKey,
  linkKeys,
  nonce,
  readInPlace,
  recycle,
  verify,
  writer,
} from "@ptcluster/protocol/lean";
import { HELLO_BYTES, Kind, WELCOME_BYTES, ack, decode, encode, hello, kindOf, seqOf, welcome } from "./link-wire.js";

/**
 * Executor links (docs/comm-transport.md): one TCP connection per sender and peer, carrying that
 * sender's messages one way and the receiver's acknowledgements back. TCP keeps them in order and
 * whole while the connection lives; the link never reconnects: a connection that closes, or
 * whose messages stay unacknowledged too long, is its owner's to give up, sending what was not
 * acknowledged on another path (`unacked`). So there are no windows, gaps or retransmissions
 * here, and a message costs one signature, one buffer and (with the others of its turn) one write.
 */

type Comm = { msg: CommMsg | CommAbortMsg; parts: Part[] };

/** Counts the bytes a link writes and the messages' bytes it reads (`CommPathCounts.bytesSent`). */
export interface LinkMeter {
  sent(bytes: number): void;
  received(bytes: number): void;
}

const NO_METER: LinkMeter = { sent: () => undefined, received: () => undefined };

/** An acknowledgement goes back at the latest this long after a message (ms), or at once past these. */
const ACK_MS = 20;
const ACK_BYTES = 1 << 20;
const ACK_COUNT = 256;

/** The sending side of one link, dialled to the peer executor's endpoint. */
export class LinkDialer {
  private readonly sock: Socket;
  private readonly write: (buf: Buffer) => void;
  private readonly hello: Buffer;
  private keys: { d2a: Buffer; a2d: Buffer } | undefined;
  private readonly scratch = Buffer.allocUnsafe(KEY + SMALL);
  private seq = 0;
  private readonly sent: { seq: number; wire: Buffer; at: number }[] = [];
  private ended = false;

  constructor(
    host: string,
    port: number,
    private readonly clusterKey: Buffer,
    to: number,
    /** This link's id (8 bytes; as hex, the `ps` of its messages resent on another path). */
    private readonly lid: Buffer,
    maxBytes: number,
    private readonly on: { welcome(ok: boolean): void; closed(): void },
    private readonly meter = NO_METER,
  ) {
    this.sock = connect({ host, port, noDelay: true });
    this.write = writer(this.sock);
    this.hello = hello(helloKey(clusterKey), to, lid, nonce());
    this.write(this.hello);
    meter.sent(this.hello.length);
    const reader = new MsgReader(maxBytes);
    this.sock.on("data", (chunk: Buffer) => {
      const msgs = reader.push(chunk);
      if (!msgs) return this.close();
      for (const m of msgs) if (!this.read(m)) return this.close();
    });
    this.sock.on("error", () => undefined);
    this.sock.on("close", () => this.close());
  }

  private read(m: Buffer): boolean {
    this.meter.received(m.length);
    if (!this.keys) {
      if (kindOf(m) !== Kind.Welcome || m.length !== WELCOME_BYTES) return false;
      const keys = linkKeys(this.clusterKey, this.hello, m.subarray(6, 6 + 16));
      if (!verify(keys.a2d, this.scratch, m, 0)) return false;
      this.keys = keys;
      this.on.welcome(m[5] === 1);
      return true;
    }
    const n = seqOf(m);
    if (kindOf(m) !== Kind.Ack || n > this.seq || !verify(this.keys.a2d, this.scratch, m, n)) return false;
    let k = 0;
    // Acknowledged: the kernel has copied these bytes, nothing reads them any more.
    for (; k < this.sent.length && (this.sent[k] as { seq: number }).seq <= n; k++)
      recycle((this.sent[k] as { wire: Buffer }).wire.buffer);
    if (k) this.sent.splice(0, k);
    return true;
  }

  /** Signs and sends (after the welcome: the owner sends nothing before). Returns the message's number. */
  send(msg: CommMsg | CommAbortMsg, parts: readonly Part[]): number {
    const keys = this.keys as { d2a: Buffer };
    const seq = ++this.seq;
    const wire = encode(keys.d2a, seq, msg, parts);
    this.sent.push({ seq, wire, at: performance.now() });
    this.write(wire);
    this.meter.sent(wire.length);
    return seq;
  }

  /** True when a message has waited for its acknowledgement longer than `ms`. */
  overdue(ms: number): boolean {
    const first = this.sent[0];
    return first !== undefined && performance.now() - first.at > ms;
  }

  /** What the peer did not acknowledge, in order, each with its `ps` (this link's id and its number). */
  unacked(): Comm[] {
    const lid = this.lid.toString("hex");
    const out: Comm[] = [];
    for (const { seq, wire } of this.sent) {
      const c = decode(wire);
      if (c) out.push({ msg: { ...c.msg, ps: [lid, seq] }, parts: c.parts });
    }
    return out;
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.sock.destroy();
    this.on.closed();
  }
}

/** A peer's executor dials, then says hello at once: a connection still silent after this goes. */
const HELLO_MS = 10_000;

/** The receiving side: this executor's endpoint, which peers' executors dial. */
export class LinkListener {
  private readonly server: Server;
  private readonly helloKey: Buffer;
  /** Connections accepted and still open: `close` ends them too (a server's close leaves them be). */
  private readonly accepted = new Set<Socket>();

  constructor(
    private readonly clusterKey: Buffer,
    private readonly maxBytes: number,
    private readonly on: {
      /** A hello for engine `to`: is that this engine? */
      hello(to: number): boolean;
      /** An authenticated message, once, in order: `lid`/`seq` its link (hex) and number. */
      message(c: Comm, lid: string, seq: number): void;
    },
    /** How long a connection may stay without its hello. */
    private readonly helloMs = HELLO_MS,
    private readonly meter = NO_METER,
  ) {
    this.helloKey = helloKey(clusterKey);
    // Paused: readInPlace takes the connection over before anything is read.
    this.server = createServer({ pauseOnConnect: true }, (sock) => this.accept(sock));
    this.server.on("error", () => undefined);
  }

  listen(host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, host, () => {
        this.server.unref();
        resolve((this.server.address() as { port: number }).port);
      });
    });
  }

  private accept(raw: Socket): void {
    // Before the hello nothing is trusted: the reader takes one hello-sized message (not a length
    // that would make it allocate up to the message limit for anyone who can reach the port), and
    // a connection without a valid hello soon goes.
    const reader = new MsgReader(HELLO_BYTES);
    let onChunk: (msgs: Buffer[] | undefined) => void = () => undefined;
    const sock = readInPlace(raw, reader, (msgs) => onChunk(msgs));
    sock.setNoDelay(true);
    this.accepted.add(sock);
    const helloTimer = setTimeout(() => sock.destroy(), this.helloMs).unref();
    const scratch = Buffer.allocUnsafe(KEY + SMALL);
    let keys: { d2a: Buffer; a2d: Buffer } | undefined;
    let lid = "";
    let last = 0;
    let acked = 0;
    let bytes = 0;
    let timer: NodeJS.Timeout | undefined;
    const sendAck = () => {
      clearTimeout(timer);
      timer = undefined;
      bytes = 0;
      acked = last;
      if (!keys || sock.destroyed) return;
      const a = ack(keys.a2d, last);
      sock.write(a);
      this.meter.sent(a.length);
    };
    const read = (m: Buffer): boolean => {
      this.meter.received(m.length);
      if (!keys) {
        if (kindOf(m) !== Kind.Hello || m.length !== HELLO_BYTES || !verify(this.helloKey, scratch, m, 0)) return false;
        clearTimeout(helloTimer);
        reader.limit(this.maxBytes);
        const ok = this.on.hello(m.readUInt32BE(5));
        const n = nonce();
        keys = linkKeys(this.clusterKey, m, n);
        lid = m.toString("hex", 9, 17);
        const w = welcome(keys.a2d, ok, n);
        sock.write(w);
        this.meter.sent(w.length);
        if (!ok) sock.end();
        return true;
      }
      const seq = seqOf(m);
      // Numbers only grow on a connection (its keys are its own): a replay within it is refused before any crypto.
      if (seq <= last || !verify(keys.d2a, scratch, m, seq)) return false;
      const c = decode(m);
      if (!c) return false;
      last = seq;
      bytes += m.length;
      this.on.message(c, lid, seq);
      return true;
    };
    onChunk = (msgs) => {
      if (!msgs) return void sock.destroy();
      for (const m of msgs) if (!read(m)) return void sock.destroy();
      if (last === acked) return;
      if (bytes >= ACK_BYTES || last - acked >= ACK_COUNT) sendAck();
      else timer ??= setTimeout(sendAck, ACK_MS);
    };
    sock.on("error", () => undefined);
    sock.on("close", () => {
      this.accepted.delete(sock);
      clearTimeout(timer);
      clearTimeout(helloTimer);
    });
  }

  /** Stops listening and ends every connection it accepted (their peers see the links close). */
  close(): void {
    this.server.close();
    for (const sock of this.accepted) sock.destroy();
    this.accepted.clear();
  }
}
