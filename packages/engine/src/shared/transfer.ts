/**
 * Moving bytes between the supervisor and the executor thread. Structured-cloning a Buffer copies
 * its whole backing store through V8's serializer (about 55 ms for 50 MB here); copying each frame
 * into a fresh ArrayBuffer and transferring it costs one memcpy, and small frames are packed into
 * a single buffer so a task costs one allocation, not one per frame.
 */
export interface Packed {
  buffers: ArrayBuffer[];
  /** [bufferIndex, offset, length] per frame */
  layout: Array<[number, number, number]>;
}

const SMALL = 64 * 1024;

export function packFrames(frames: readonly Uint8Array[]): Packed {
  const layout: Array<[number, number, number]> = [];
  const buffers: ArrayBuffer[] = [];
  let smallTotal = 0;
  for (const f of frames) if (f.byteLength < SMALL) smallTotal += f.byteLength;
  const shared = smallTotal > 0 ? new Uint8Array(smallTotal) : undefined;
  if (shared) buffers.push(shared.buffer);
  let at = 0;
  for (const f of frames) {
    if (f.byteLength < SMALL && shared) {
      shared.set(f, at);
      layout.push([0, at, f.byteLength]);
      at += f.byteLength;
    } else {
      // Not zero-filled first: every byte is written by the copy (a large frame's memory is fresh
      // pages, and filling them costs as much again).
      const copy = Buffer.allocUnsafeSlow(f.byteLength);
      copy.set(f);
      layout.push([buffers.length, 0, f.byteLength]);
      buffers.push(copy.buffer as ArrayBuffer);
    }
  }
  return { buffers, layout };
}

export function unpackFrames(p: Packed): Buffer[] {
  return p.layout.map(([b, off, len]) => Buffer.from(p.buffers[b] as ArrayBuffer, off, len));
}
