import type { Part } from "@ptcluster/protocol";
import { packFrames, unpackFrames, type Packed } from "./transfer.js";

/**
 * Parts (a shared-state call or its answer) between the supervisor and the executor thread.
 * Posted as Buffers, each would be structured-cloned with its whole backing store (a frame from
 * ZeroMQ, or a view of the caller's typed array); packed, each costs one copy of its own bytes and
 * the buffers are transferred (a 50 MiB value read from a shared dict: see `packFrames`).
 */
export interface PackedParts {
  data: Packed;
  /** Binary frames of each part (each part is its body, then these). */
  pf: number[];
}

export function packPartList(parts: readonly Part[]): PackedParts {
  const frames: Buffer[] = [];
  for (const p of parts) frames.push(p.body, ...p.frames);
  return { data: packFrames(frames), pf: parts.map((p) => p.frames.length) };
}

export function unpackPartList(p: PackedParts): Part[] {
  const frames = unpackFrames(p.data);
  let i = 0;
  return p.pf.map((n) => {
    const body = frames[i] as Buffer;
    const part = { body, frames: frames.slice(i + 1, i + 1 + n) };
    i += 1 + n;
    return part;
  });
}
