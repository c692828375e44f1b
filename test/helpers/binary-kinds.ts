/** Values of every binary kind, and digests to compare them (shared by the large-value tests). */
import { createHash } from "node:crypto";

const KB = 1024;

/** Values of every binary kind, each of `n` bytes (80 KiB by default: over a 64 KiB threshold). */
export function kinds(seed: number, n = 80 * KB): Record<string, unknown> {
  const bytes = Buffer.alloc(n).map((_, i) => (i * 31 + seed) & 255);
  return {
    buffer: Buffer.from(bytes),
    u8: new Uint8Array(bytes),
    i8: new Int8Array(bytes.buffer.slice(0)),
    clamped: new Uint8ClampedArray(bytes),
    i16: new Int16Array(n / 2).map((_, i) => i - 20_000 + seed),
    u32: new Uint32Array(n / 4).map((_, i) => i * 7 + seed),
    f32: new Float32Array(n / 4).map((_, i) => i / 4 + seed),
    f64: new Float64Array(n / 8).map((_, i) => i / 3 + seed),
    bi64: new BigInt64Array(n / 8).map((_, i) => BigInt(i) * -3n + BigInt(seed)),
    dataView: new DataView(bytes.buffer.slice(0)),
    arrayBuffer: bytes.buffer.slice(0),
  };
}

/** Each value's kind and a digest of its bytes: deep equality of large typed arrays is slow in `expect`. */
export function digest(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(digest);
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    const bytes =
      value instanceof ArrayBuffer
        ? new Uint8Array(value)
        : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    return `${Object.prototype.toString.call(value)} ${createHash("sha256").update(bytes).digest("hex")}`;
  }
  if (typeof value === "object" && value !== null)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, digest(v)]));
  return value;
}
