import type { ChannelLabel, Signer } from "../auth/session.js";
import { MalformedMessageError, TAG, decodeBody } from "../codec/wire.js";
import type { Part } from "../messages.js";
import { InvalidOptionError } from "../errors.js";
import { outgoing, type Outgoing } from "./send-window.js";

/**
 * Large messages in pipelined fragments (a channel option, `fragmentMin`, or `PTCLUSTER_FRAGMENT_KB`;
 * off by default).
 *
 * A message of `fragmentMin` bytes or more goes as a run of messages of at most
 * {@link FRAGMENT_BYTES} each, in one stream and in order, each signed on its own just before the
 * writer hands it to the socket (so the sender tags fragment k+1 while ZeroMQ's I/O thread writes
 * fragment k) and checked by the receiver as it arrives (so the receiver's checks and its copy into
 * the value's memory overlap the transfer, instead of waiting for the whole message and then
 * walking 50 MiB twice). Each fragment is a reliable message like any other: acknowledged,
 * resent when lost, refused when its tag fails (a tampered fragment is dropped and counted, and
 * the message is never delivered from it). The receiver delivers the message once its last
 * fragment is in, whole, as if it had come in one piece.
 *
 * Wire: a fragment's body is `[DESCRIPTOR, PIECE*]`. The descriptor's first byte is 0xc1, which
 * msgpack never uses, so no ordinary header frame (a msgpack map) can be taken for one; its second
 * says which kind it is (first, later, abort) and the next four name the message's stream on its
 * link, so the fragments of several messages and whole messages may interleave on one link (a
 * controller forwarding fragments as they arrive: `Channel.openStream`, cut-through). The first
 * fragment's descriptor lists the lengths of the message's frames (header, bodies, binary frames);
 * pieces then fill those frames in order, a piece never crossing from one frame to the next. An
 * abort (no pieces) says the message will not be finished: the receiver drops what it has of it.
 * Every channel takes fragments in; only a channel created with `fragmentMin` sends them.
 *
 * Why off by default (measured on a 2-core VM, 50 MiB between network namespaces, interleaved):
 * per hop, the receiver must copy the fragments into one buffer for the value, where a whole
 * ZeroMQ message is handed over without a copy. That extra pass over fresh memory (~40 ms for
 * 50 MiB: page faults) costs as much as the overlap saves (tags ~15-20 ms each side) when the
 * cores are busy: a push to an engine went 145 → 113 ms only when the engine also transferred
 * the assembled buffer to its executor instead of copying it, a pull to a client 145 → 180 ms,
 * a load-balanced echo through the controller 430 → 500 ms. Forwarding fragments through the
 * controller as they arrive (cut-through, `streams.ts`, hub/src/tasks/cut-through.ts) measured
 * slower still on that VM (docs/architecture.md, "Large values across hosts").
 */
export const FRAGMENT_MARK = 0xc1;
/** Bytes of frames per fragment (pieces; the descriptor aside). */
export const FRAGMENT_BYTES = 1 << 20;

/** Descriptor kinds (its second byte). */
export const LATER = 0;
export const FIRST = 1;
export const ABORT = 2;
/** Bytes of a first descriptor before its frame lengths: mark, kind, stream id, frame count. */
const FIRST_HEAD = 10;

/** A later or abort descriptor: mark, kind, stream id. */
export function descriptor(kind: typeof LATER | typeof ABORT, id: number): Buffer {
  const d = Buffer.allocUnsafe(6);
  d[0] = FRAGMENT_MARK;
  d[1] = kind;
  d.writeUInt32BE(id, 2);
  return d;
}

/** The first fragment's descriptor: the lengths of every frame of the message. */
export function firstDescriptor(id: number, lengths: readonly number[]): Buffer {
  const d = Buffer.allocUnsafe(FIRST_HEAD + 8 * lengths.length);
  d[0] = FRAGMENT_MARK;
  d[1] = FIRST;
  d.writeUInt32BE(id, 2);
  d.writeUInt32BE(lengths.length, 6);
  lengths.forEach((n, i) => d.writeBigUInt64BE(BigInt(n), FIRST_HEAD + 8 * i));
  return d;
}

/** A descriptor's kind and stream id; throws on a descriptor too short to hold them. */
export function readDescriptor(d: Buffer): { kind: number; id: number } {
  if (d.length < 6) throw new MalformedMessageError("fragment descriptor too short");
  return { kind: d[1] as number, id: d.readUInt32BE(2) };
}

/**
 * `PTCLUSTER_FRAGMENT_KB=N` in a process's environment: its channels send messages of N KiB or more
 * in fragments (`ptcluster start` passes it on to the controller and the engines), to measure them
 * or to test them on real processes. Unset: none does.
 */
export const FRAGMENT_ENV = "PTCLUSTER_FRAGMENT_KB";

/** The fragment threshold (bytes) in the environment; undefined when unset or empty; throws on anything but a whole number of KiB. */
export function fragmentMinFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env[FRAGMENT_ENV];
  if (!raw) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1)
    throw new InvalidOptionError(`Expected ${FRAGMENT_ENV} to be a whole number of KiB (1 or more), got \`${raw}\``);
  return Number(raw) * 1024;
}

/** Whether a body's first frame is a fragment descriptor. */
export function isFragment(head: Buffer | undefined): boolean {
  return head !== undefined && head.length >= 2 && head[0] === FRAGMENT_MARK;
}

/** The bodies of the fragments that carry `frames`, stream `id` (no bytes copied: pieces are views). */
export function splitFragments(frames: readonly Buffer[], size = FRAGMENT_BYTES, id = 0): Buffer[][] {
  const first = firstDescriptor(
    id,
    frames.map((f) => f.length),
  );
  const later = descriptor(LATER, id);
  const out: Buffer[][] = [];
  let cur: Buffer[] = [first];
  let room = size;
  for (const f of frames) {
    for (let at = 0; at < f.length;) {
      if (room === 0) {
        out.push(cur);
        cur = [later];
        room = size;
      }
      const n = Math.min(room, f.length - at);
      cur.push(at === 0 && n === f.length ? f : f.subarray(at, at + n));
      at += n;
      room -= n;
    }
  }
  out.push(cur);
  return out;
}

/**
 * The fragments of a message for `link` (stream `id`), numbered in its stream now and tagged by `seal` when the
 * writer takes each (the last one carries the whole message, for `Channel.forget`).
 */
export function fragmentsOut(
  signer: Signer,
  label: ChannelLabel,
  link: { readonly to: Buffer | undefined; prev: number; readonly rx: { last: number } | undefined },
  body: Buffer[],
  id: number,
): Outgoing[] {
  const runs = splitFragments(body, FRAGMENT_BYTES, id);
  let through = 0;
  return runs.map((frags, i) => {
    for (const f of frags) through += f.length;
    return fragmentOut(signer, label, link, frags, through, i === runs.length - 1 ? body : undefined);
  });
}

/**
 * One fragment for `link`, numbered in its stream now and tagged by `seal` when the writer takes
 * it. `through`: bytes of its message up to and including it; `whole`: on the last fragment of a
 * message this side has whole, its frames (what `forget` gives back).
 */
export function fragmentOut(
  signer: Signer,
  label: ChannelLabel,
  link: { readonly to: Buffer | undefined; prev: number; readonly rx: { last: number } | undefined },
  frags: Buffer[],
  through: number,
  whole?: Buffer[],
): Outgoing {
  const to = link.to;
  const { auth, seal } = signer.signLater(label, to, frags, link.prev, link.rx?.last ?? 0);
  link.prev = signer.seq;
  let bytes = 0;
  for (const f of frags) bytes += f.length;
  const out = outgoing(to ? [to, TAG, auth, ...frags] : [TAG, auth, ...frags], link.prev, bytes);
  out.seal = seal;
  out.fragment = { through, ...(whole ? { whole } : {}) };
  return out;
}

/**
 * One message being put back together from its fragments. Frames that came whole in one piece
 * are kept as received (no copy); a frame split over fragments is copied, piece by piece as each
 * arrives, into memory of its own (an ArrayBuffer no one else holds).
 */
export class Assembly {
  readonly frames: Buffer[] = [];
  /** The lengths of the message's frames, and their sum. */
  readonly lengths: number[];
  readonly total: number;
  private cur: Buffer | undefined;
  private filled = 0;

  /** @param descriptor the first fragment's descriptor; throws if it is not one, or asks more than `maxBytes` */
  constructor(descriptor: Buffer, maxBytes: number) {
    if (descriptor[1] !== FIRST || descriptor.length < FIRST_HEAD)
      throw new MalformedMessageError("fragment out of order");
    const n = descriptor.readUInt32BE(6);
    if (descriptor.length !== FIRST_HEAD + 8 * n || n === 0) throw new MalformedMessageError("bad fragment descriptor");
    this.lengths = [];
    let total = 0;
    for (let i = 0; i < n; i++) {
      const len = Number(descriptor.readBigUInt64BE(FIRST_HEAD + 8 * i));
      total += len;
      this.lengths.push(len);
    }
    if (total > maxBytes) throw new MalformedMessageError(`fragmented message of ${total} bytes is over the limit`);
    this.total = total;
    this.skipEmpty();
  }

  /** Adds the pieces of the next fragment (its body after the descriptor). */
  add(pieces: readonly Buffer[]): void {
    for (const p of pieces) {
      const i = this.frames.length;
      const len = this.lengths[i];
      if (len === undefined || p.length === 0 || this.filled + p.length > len)
        throw new MalformedMessageError("fragment pieces do not match the frame lengths");
      if (this.filled === 0 && p.length === len) this.frames.push(p);
      else {
        // Not zero-filled first: every byte is written by the pieces.
        this.cur ??= Buffer.allocUnsafeSlow(len);
        p.copy(this.cur, this.filled);
        this.filled += p.length;
        if (this.filled === len) {
          this.frames.push(this.cur);
          this.cur = undefined;
          this.filled = 0;
        }
      }
      this.skipEmpty();
    }
  }

  /** Every frame is in. */
  get done(): boolean {
    return this.frames.length === this.lengths.length;
  }

  private skipEmpty(): void {
    while (this.filled === 0 && this.lengths[this.frames.length] === 0) this.frames.push(Buffer.alloc(0));
  }
}

/**
 * What a forgotten link had sent or held without an acknowledgement, decoded (for its owner to
 * keep). A message in fragments comes back once, from its last fragment, which carries it whole
 * (the earlier ones may have been acknowledged, but the receiver delivers nothing before the
 * last); one passed on as it came (cut-through) this side never had whole, and does not come back.
 */
export function decodeUndelivered<Out>(
  outs: readonly Outgoing[],
  router: boolean,
): Array<{ header: Out; parts: Part[] }> {
  const undelivered: Array<{ header: Out; parts: Part[] }> = [];
  for (const out of outs) {
    if (out.seq === 0 || (out.fragment && !out.fragment.whole)) continue;
    try {
      const { header, parts } = out.fragment?.whole
        ? decodeBody(out.fragment.whole, 0)
        : decodeBody(out.frames, router ? 3 : 2);
      undelivered.push({ header: header as Out, parts });
    } catch {
      // Our own message: it decodes. Nothing to keep if it does not.
    }
  }
  return undelivered;
}
