import { decodeValue, encodeValue, type Part } from "@ptcluster/protocol";

/**
 * Numbers and short strings, the most frequent small values (a scalar reduction, a counter, a
 * ping-pong, the collectives' call checks), skip the value codec both ways: a fresh engine runs
 * the codec's general code unoptimized, which costs more than the rest of the message. What is
 * sent is the MessagePack the codec itself reads (a float64; a fixstr or str8), so every path and
 * receiver understands it, and a received body of one such item is read here.
 */
const SURROGATE = /[\ud800-\udfff]/;

export function encodeSmall(value: unknown): { body: Buffer; frames: Buffer[] } {
  if (typeof value === "number") {
    const b = Buffer.allocUnsafe(9);
    b[0] = 0xcb;
    b.writeDoubleBE(value, 1);
    return { body: b, frames: [] };
  }
  // Lone surrogates are the codec's to keep (UTF-8 cannot carry them).
  const n = typeof value === "string" && value.length < 256 ? Buffer.byteLength(value) : 256;
  if (n < 256 && !SURROGATE.test(value as string)) {
    const head = n < 32 ? 1 : 2;
    const b = Buffer.allocUnsafe(head + n);
    if (head === 1) b[0] = 0xa0 | n;
    else {
      b[0] = 0xd9;
      b[1] = n;
    }
    b.write(value as string, head);
    return { body: b, frames: [] };
  }
  return encodeValue(value, "value");
}

export function decodeSmall(part: Part): unknown {
  const { body } = part;
  if (part.frames.length === 0 && body.length > 0) {
    const first = body[0] as number;
    if (body.length === 9 && first === 0xcb) return body.readDoubleBE(1);
    if (body.length === 1 && first < 0x80) return first;
    if ((first & 0xe0) === 0xa0 && (first & 0x1f) === body.length - 1) return body.toString("utf8", 1);
    if (first === 0xd9 && body[1] === body.length - 2) return body.toString("utf8", 2);
  }
  return decodeValue(body, part.frames);
}
