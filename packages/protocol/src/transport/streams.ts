import { MalformedMessageError, decodeBody } from "../codec/wire.js";
import { ABORT, LATER, descriptor, firstDescriptor, type Assembly } from "./fragments.js";

/**
 * Cut-through: a large message forwarded fragment by fragment as it arrives (`Channel` options
 * `onStream` and `openStream`), so a controller passes a task's 50 MiB on to its engine without
 * holding it whole, and the next hop receives while the first still sends.
 *
 * The receiving channel offers its owner each fragmented message whose first fragment holds the
 * header and the part bodies whole (`StreamStart`); an owner that takes it returns a
 * {@link StreamSink}, which then gets the pieces of the binary frames in order, as each fragment
 * is verified, and is told when the message is complete or will never be (`abort`: its sender was
 * forgotten or restarted, or sent something malformed). The owner typically opens an
 * {@link OutStream} on another channel with a header of its own and the same binary frames: each
 * piece goes on re-tagged for that link, the pieces are never copied, and the final receiver
 * assembles the message as if its sender had fragmented it. Each fragment is a reliable message of
 * its link, so other messages to the same peer go between them instead of waiting for the whole.
 */

/** One part of a message arriving in fragments: its body (whole) and the lengths of its binary frames (to come). */
export interface StreamPart {
  body: Buffer;
  frameLengths: number[];
}

/** A fragmented message whose head is in (header and part bodies), offered to the channel's owner. */
export interface StreamStart<M> {
  /** Routing id of the sender (ROUTER sockets only). */
  from: Buffer | undefined;
  header: M;
  parts: StreamPart[];
}

/** Where the rest of a taken message goes. */
export interface StreamSink {
  /** The next pieces of its binary frames, in order (views of the received fragments); `last`: it is complete. */
  pieces(pieces: Buffer[], last: boolean): void;
  /** It will never be complete: drop what was passed on. */
  abort(): void;
}

/** A message being sent fragment by fragment as its pieces come (`Channel.openStream`). */
export interface OutStream extends StreamSink {
  /** Its link was forgotten (or the channel closed) before it ended: the peer will not have it. */
  readonly broken: boolean;
}

/** An incoming message being passed on: its sink and the bytes still to come. */
export class Relay {
  constructor(
    readonly sink: StreamSink,
    public left: number,
  ) {}
}

/**
 * The head of a message from its first fragment: the header decoded and the parts' bodies, with
 * `used` pieces taken (header and bodies frames) and their bytes; undefined when the message has
 * no binary frames or its head did not fit whole in the first fragment (it is then assembled).
 */
export function streamHead(
  a: Assembly,
  pieces: readonly Buffer[],
): { header: unknown; parts: StreamPart[]; used: number; headBytes: number } | undefined {
  const lengths = a.lengths;
  const [h, b] = pieces;
  if (lengths.length < 3 || !h || !b || h.length !== lengths[0] || b.length !== lengths[1]) return undefined;
  const rest = lengths.slice(2);
  // The binary frames are not here yet: stand-ins of no bytes let the codec check the part layout.
  const empty = Buffer.alloc(0);
  const { header, parts } = decodeBody([h, b, ...rest.map(() => empty)], 0);
  let i = 0;
  const out = parts.map((p) => ({ body: p.body, frameLengths: rest.slice(i, (i += p.frames.length)) }));
  if (i !== rest.length) throw new MalformedMessageError("parts do not match the fragmented frames");
  return { header, parts: out, used: 2, headBytes: h.length + b.length };
}

/**
 * The sending side of `Channel.openStream`: the first fragment (descriptor, then the head frames:
 * header and bodies) goes at once, each `pieces` call is the next fragment, `abort` an abort
 * descriptor. `link.open()` false (the peer forgotten, the channel closed) breaks the stream.
 */
export function openOutStream(
  id: number,
  head: Buffer[],
  parts: readonly StreamPart[],
  link: { open(): boolean; send(frags: Buffer[], through: number): void },
): OutStream {
  const lengths = [...head.map((f) => f.length), ...parts.flatMap((p) => p.frameLengths)];
  let through = 0;
  let state: "open" | "done" | "broken" = "open";
  const emit = (frags: Buffer[]): void => {
    if (!link.open()) {
      state = "broken";
      return;
    }
    for (const f of frags) through += f.length;
    link.send(frags, through);
  };
  emit([firstDescriptor(id, lengths), ...head]);
  const later = descriptor(LATER, id);
  return {
    get broken() {
      return state === "broken";
    },
    pieces(pieces, last) {
      if (state !== "open") return;
      emit([later, ...pieces]);
      if (last && state === "open") state = "done";
    },
    abort() {
      if (state === "open") emit([descriptor(ABORT, id)]);
      if (state === "open") state = "broken";
    },
  };
}
