import type { ChannelLabel, Signer } from "../auth/session.js";
import { MalformedMessageError, TAG } from "../codec/wire.js";
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
 * msgpack never uses, so no ordinary header frame (a msgpack map) can be taken for one. The first
 * fragment's descriptor lists the lengths of the message's frames (header, bodies, binary frames);
 * pieces then fill those frames in order, a piece never crossing from one frame to the next.
 * Every channel takes fragments in; only a channel created with `fragmentMin` sends them.
 *
 * Why off by default (measured on a 2-core VM, 50 MiB between network namespaces, interleaved):
 * per hop, the receiver must copy the fragments into one buffer for the value, where a whole
 * ZeroMQ message is handed over without a copy. That extra pass over fresh memory (~40 ms for
 * 50 MiB: page faults) costs as much as the overlap saves (tags ~15-20 ms each side) when the
 * cores are busy: a push to an engine went 145 → 113 ms only when the engine also transferred
 * the assembled buffer to its executor instead of copying it, a pull to a client 145 → 180 ms,
 * a load-balanced echo through the controller 430 → 500 ms. What would pay is forwarding
 * fragments through the controller as they arrive (no assembly there), which needs delivery
 * before the last fragment: not built.
 */
export const FRAGMENT_MARK = 0xc1;
/** Bytes of frames per fragment (pieces; the descriptor aside). */
export const FRAGMENT_BYTES = 1 << 20;

const FIRST = 1;
const LATER = Buffer.from([FRAGMENT_MARK, 0]);

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

/** The bodies of the fragments that carry `frames` (no bytes copied: pieces are views). */
export function splitFragments(frames: readonly Buffer[], size = FRAGMENT_BYTES): Buffer[][] {
  const first = Buffer.allocUnsafe(6 + 8 * frames.length);
  first[0] = FRAGMENT_MARK;
  first[1] = FIRST;
  first.writeUInt32BE(frames.length, 2);
  frames.forEach((f, i) => first.writeBigUInt64BE(BigInt(f.length), 6 + 8 * i));
  const out: Buffer[][] = [];
  let cur: Buffer[] = [first];
  let room = size;
  for (const f of frames) {
    for (let at = 0; at < f.length;) {
      if (room === 0) {
        out.push(cur);
        cur = [LATER];
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
 * The fragments of a message for `link`, numbered in its stream now and tagged by `seal` when the
 * writer takes each (the last one carries the whole message, for `Channel.forget`).
 */
export function fragmentsOut(
  signer: Signer,
  label: ChannelLabel,
  link: { readonly to: Buffer | undefined; prev: number; readonly rx: { last: number } | undefined },
  body: Buffer[],
): Outgoing[] {
  const to = link.to;
  const runs = splitFragments(body);
  let through = 0;
  return runs.map((frags, i) => {
    const { auth, seal } = signer.signLater(label, to, frags, link.prev, link.rx?.last ?? 0);
    link.prev = signer.seq;
    let bytes = 0;
    for (const f of frags) bytes += f.length;
    through += bytes;
    const out = outgoing(to ? [to, TAG, auth, ...frags] : [TAG, auth, ...frags], link.prev, bytes);
    out.seal = seal;
    out.fragment = { through, ...(i === runs.length - 1 ? { whole: body } : {}) };
    return out;
  });
}

/**
 * One message being put back together from its fragments. Frames that came whole in one piece
 * are kept as received (no copy); a frame split over fragments is copied, piece by piece as each
 * arrives, into memory of its own (an ArrayBuffer no one else holds).
 */
export class Assembly {
  readonly frames: Buffer[] = [];
  private readonly lengths: number[];
  private cur: Buffer | undefined;
  private filled = 0;

  /** @param descriptor the first fragment's descriptor; throws if it is not one, or asks more than `maxBytes` */
  constructor(descriptor: Buffer, maxBytes: number) {
    if (descriptor[1] !== FIRST || descriptor.length < 6) throw new MalformedMessageError("fragment out of order");
    const n = descriptor.readUInt32BE(2);
    if (descriptor.length !== 6 + 8 * n || n === 0) throw new MalformedMessageError("bad fragment descriptor");
    this.lengths = [];
    let total = 0;
    for (let i = 0; i < n; i++) {
      const len = Number(descriptor.readBigUInt64BE(6 + 8 * i));
      total += len;
      this.lengths.push(len);
    }
    if (total > maxBytes) throw new MalformedMessageError(`fragmented message of ${total} bytes is over the limit`);
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
