import { Packr } from "msgpackr";
import type { Part } from "../messages.js";
import type { Message } from "../peer-messages.js";
import { ProtocolError } from "../errors.js";

/** First frame of every ptcluster message (after routing frames). */
export const TAG = Buffer.from("ptc1");
/** Unsigned notice a controller sends back to a peer whose signatures fail. */
export const AUTH_FAILED = Buffer.from("AUTH_FAILED");

const headerPackr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

/**
 * Header bytes plus the frames of the parts, in wire order (auth frame excluded):
 * `HEADER BODIES BINARY*`. The bodies of all parts (small: binary values of 1 KiB or more are
 * frames of their own) travel concatenated in one frame, their lengths in the header (`pl`), so a
 * batch of a thousand tasks is three frames, not two thousand; binary frames follow in part order
 * (`pf` of them per part) and are never copied.
 */
export function encodeBody(header: Message, parts: readonly Part[] | undefined): Buffer[] {
  if (!parts || parts.length === 0) return [headerPackr.pack(header)];
  const pl = parts.map((p) => p.body.length);
  const bodies = parts.length === 1 ? (parts[0] as Part).body : Buffer.concat(parts.map((p) => p.body));
  const frames: Buffer[] = [headerPackr.pack({ ...header, pl }), bodies];
  for (const p of parts) for (const f of p.frames) frames.push(f);
  return frames;
}

/** A message that passed authentication but does not parse (a peer with the key and a bug). */
export class MalformedMessageError extends ProtocolError {
  constructor(message: string) {
    super(`Malformed message: ${message}`, { code: "ERR_PTC_MALFORMED" });
  }
}

/** Decodes the header and splits the part frames; throws {@link MalformedMessageError} on any inconsistency. */
export function decodeBody(frames: readonly Buffer[], start: number): { header: Message; parts: Part[] } {
  const headerFrame = frames[start];
  if (!headerFrame) throw new MalformedMessageError("no header frame");
  let header: unknown;
  try {
    header = headerPackr.unpack(headerFrame);
  } catch (err) {
    throw new MalformedMessageError(`header is not msgpack: ${(err as Error).message}`);
  }
  if (typeof header !== "object" || header === null || typeof (header as { type?: unknown }).type !== "string") {
    throw new MalformedMessageError("header has no type");
  }
  const { pf, pl } = header as { pf?: unknown; pl?: unknown };
  const parts: Part[] = [];
  let i = start + 1;
  // A message with no parts has no `pl` (see encodeBody), whatever its empty `pf` says.
  const noParts = pl === undefined && (pf === undefined || (Array.isArray(pf) && pf.length === 0));
  if (!noParts) {
    if (!Array.isArray(pf) || !Array.isArray(pl) || pf.length !== pl.length)
      throw new MalformedMessageError("pf and pl do not describe the parts");
    const bodies = frames[i++];
    if (!bodies) throw new MalformedMessageError("no bodies frame");
    let at = 0;
    for (let k = 0; k < pl.length; k++) {
      const len = pl[k] as unknown;
      const n = pf[k] as unknown;
      if (!Number.isInteger(len) || (len as number) < 0 || at + (len as number) > bodies.length)
        throw new MalformedMessageError("pl does not match the bodies frame");
      if (!Number.isInteger(n) || (n as number) < 0 || i + (n as number) > frames.length)
        throw new MalformedMessageError("pf does not match the frames");
      parts.push({ body: bodies.subarray(at, at + (len as number)), frames: frames.slice(i, i + (n as number)) });
      at += len as number;
      i += n as number;
    }
    if (at !== bodies.length) throw new MalformedMessageError("bodies frame longer than its parts");
    delete (header as { pl?: unknown }).pl;
  }
  if (i !== frames.length) throw new MalformedMessageError("extra frames");
  return { header: header as Message, parts };
}

/** `pf` for a list of parts: how many binary frames follow each body. */
export function partFrameCounts(parts: readonly Part[]): number[] {
  return parts.map((p) => p.frames.length);
}
