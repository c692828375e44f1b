import { Packr } from "msgpackr";
import type { Part } from "../part.js";

/**
 * Several parts travelling as one (a stage task's items, a stage's results): the body is msgpack
 * of `[bodies, frameCounts]` and the frames are every part's frames in order. Whoever packs or
 * unpacks it never decodes the values themselves: the controller regroups items between stages
 * this way without touching user data.
 */
const packr = new Packr({ useRecords: false, moreTypes: false });

export function packParts(parts: readonly Part[]): Part {
  const bodies = new Array<Buffer>(parts.length);
  const counts = new Array<number>(parts.length);
  const frames: Buffer[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] as Part;
    bodies[i] = p.body;
    counts[i] = p.frames.length;
    for (const f of p.frames) frames.push(f);
  }
  return { body: packr.pack([bodies, counts]), frames };
}

/** The parts of a {@link packParts} part; throws on a body that is not one. */
export function unpackParts(part: Part): Part[] {
  const decoded = packr.unpack(part.body) as unknown;
  if (!Array.isArray(decoded) || decoded.length !== 2) throw new TypeError("not a packed list of parts");
  const [bodies, counts] = decoded as [unknown, unknown];
  if (!Array.isArray(bodies) || !Array.isArray(counts) || bodies.length !== counts.length)
    throw new TypeError("not a packed list of parts");
  const out = new Array<Part>(bodies.length);
  let next = 0;
  for (let i = 0; i < bodies.length; i++) {
    const body = bodies[i] as unknown;
    const n = counts[i] as unknown;
    if (!(body instanceof Uint8Array) || typeof n !== "number" || !Number.isInteger(n) || n < 0)
      throw new TypeError("not a packed list of parts");
    if (next + n > part.frames.length) throw new TypeError("a packed list of parts is missing frames");
    out[i] = {
      body: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
      frames: part.frames.slice(next, next + n),
    };
    next += n;
  }
  if (next !== part.frames.length) throw new TypeError("a packed list of parts has frames left over");
  return out;
}

/**
 * What a stage task reports for its items, the first part of its result (the items' parts follow):
 * `n[i]` outputs for item `i` (a filter: 1 kept, 0 dropped, and no part, as the item itself goes on),
 * or -1 when its function threw (one part: the encoded failure); `ms[i]` its run time.
 */
export interface StageReport {
  n: number[];
  ms: number[];
}

export function packStageReport(r: StageReport): Part {
  return { body: packr.pack([r.n, r.ms]), frames: [] };
}

export function unpackStageReport(part: Part): StageReport {
  const decoded = packr.unpack(part.body) as unknown;
  if (!Array.isArray(decoded) || decoded.length !== 2 || !Array.isArray(decoded[0]) || !Array.isArray(decoded[1]))
    throw new TypeError("not a stage report");
  return { n: decoded[0] as number[], ms: decoded[1] as number[] };
}
