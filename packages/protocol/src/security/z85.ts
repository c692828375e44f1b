/**
 * Z85 (ZeroMQ RFC 32), the printable encoding of CURVE keys: 32 bytes ↔ 40 characters.
 */
const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
const DECODE = new Map([...ALPHABET].map((c, i) => [c, i]));

export function z85Encode(data: Uint8Array): string {
  if (data.length % 4 !== 0) throw new RangeError("Z85 encodes multiples of 4 bytes");
  let out = "";
  for (let i = 0; i < data.length; i += 4) {
    let v =
      ((data[i] as number) * 0x1000000 +
        ((data[i + 1] as number) << 16) +
        ((data[i + 2] as number) << 8) +
        (data[i + 3] as number)) >>>
      0;
    const chunk = new Array<string>(5);
    for (let k = 4; k >= 0; k--) {
      chunk[k] = ALPHABET[v % 85] as string;
      v = Math.floor(v / 85);
    }
    out += chunk.join("");
  }
  return out;
}

export function z85Decode(text: string): Uint8Array {
  if (text.length % 5 !== 0) throw new RangeError("Z85 decodes multiples of 5 characters");
  const out = new Uint8Array((text.length / 5) * 4);
  for (let i = 0, o = 0; i < text.length; i += 5, o += 4) {
    let v = 0;
    for (let k = 0; k < 5; k++) {
      const d = DECODE.get(text[i + k] as string);
      if (d === undefined) throw new RangeError(`not a Z85 character: ${text[i + k]}`);
      v = v * 85 + d;
    }
    out[o] = (v >>> 24) & 0xff;
    out[o + 1] = (v >>> 16) & 0xff;
    out[o + 2] = (v >>> 8) & 0xff;
    out[o + 3] = v & 0xff;
  }
  return out;
}

/** Is this a 40-character Z85 CURVE key? */
export function isCurveKey(s: unknown): s is string {
  return typeof s === "string" && s.length === 40 && [...s].every((c) => DECODE.has(c));
}
