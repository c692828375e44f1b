import type { Part } from "@ptcluster/protocol";
import { packFrames, unpackFrames, type Packed } from "./transfer.js";

/**
 * An `engine.comm` message's bytes between the executor thread and the supervisor. Posted as
 * Buffers, they would be structured-cloned with their whole backing store: the value codec's
 * body is a view of its reused output buffer (256 KiB and more once a large value was encoded)
 * and a typed array's frame a view of the caller's array (a ring allreduce's 4 MiB chunk of an
 * 8 MiB array cloned 8 MiB, twice: serialize, deserialize). Packed, each costs one copy of its own
 * bytes, and the buffers are transferred. A comm message has one part (a value) or none (an abort).
 */
export function packComm(parts: readonly Part[]): Packed | undefined {
  const part = parts[0];
  return part ? packFrames([part.body, ...part.frames]) : undefined;
}

export function unpackComm(data: Packed | undefined): Part[] {
  if (!data) return [];
  const [body, ...frames] = unpackFrames(data);
  return [{ body: body ?? Buffer.alloc(0), frames }];
}
