import { Packr } from "msgpackr";
import type { Message, Part } from "../messages.js";
import { ProtocolError } from "../errors.js";

/** First frame of every ptcluster message (after routing frames). */
export const TAG = Buffer.from("ptc1");
/** Unsigned notice a controller sends back to a peer whose signatures fail. */
export const AUTH_FAILED = Buffer.from("AUTH_FAILED");

const headerPackr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

/** Header bytes plus the frames of the parts, in wire order (auth frame excluded). */
export function encodeBody(header: Message, parts: readonly Part[] | undefined): Buffer[] {
  const frames: Buffer[] = [headerPackr.pack(header)];
  if (parts) for (const p of parts) frames.push(p.body, ...p.frames);
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
  const pf = (header as { pf?: unknown }).pf;
  const parts: Part[] = [];
  let i = start + 1;
  if (pf !== undefined) {
    if (!Array.isArray(pf)) throw new MalformedMessageError("pf is not an array");
    for (const n of pf) {
      if (!Number.isInteger(n) || n < 0 || i + 1 + n > frames.length) throw new MalformedMessageError("pf does not match the frames");
      parts.push({ body: frames[i] as Buffer, frames: frames.slice(i + 1, i + 1 + n) });
      i += 1 + n;
    }
  }
  if (i !== frames.length) throw new MalformedMessageError("extra frames");
  return { header: header as Message, parts };
}

/** `pf` for a list of parts: how many binary frames follow each body. */
export function partFrameCounts(parts: readonly Part[]): number[] {
  return parts.map((p) => p.frames.length);
}
