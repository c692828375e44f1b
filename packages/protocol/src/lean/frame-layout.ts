/** Bytes that pad `n` to a multiple of 8 (frames start 8-byte aligned, so a Float64Array can view them where they lie). */
export const pad8 = (n: number): number => (8 - (n % 8)) % 8;

/** Copies `frames` into `buf` from `at`, each padded to 8 bytes; returns where the next byte goes. */
export function putFrames(buf: Buffer, at: number, frames: readonly Uint8Array[]): number {
  for (const f of frames) {
    buf.set(f, at);
    at += f.byteLength;
    for (let p = pad8(f.byteLength); p > 0; p--) buf[at++] = 0;
  }
  return at;
}
