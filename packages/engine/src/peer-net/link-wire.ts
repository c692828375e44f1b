import type { CommAbortMsg, CommMsg, Part } from "@ptcluster/protocol";
import { KEY, NONCE, SMALL, TAG, bigBuffer, pad8 as pad, putFrames, sign } from "@ptcluster/protocol/lean";

/**
 * The bytes of an executor link (docs/comm-transport.md): a fixed binary layout, no msgpack, one
 * buffer per message. Every message is `u32 length of the rest | u8 kind | ...`, all integers
 * big-endian; after the hello, its last 16 bytes are its tag (`link-auth.ts`).
 *
 * - hello (dialler, first): `to u32 | link id 8 | nonce 16 | tag` (under the cluster's hello key)
 * - welcome (acceptor's answer): `ok u8 | nonce 16 | tag`
 * - data: `seq u48 | to u32 | from u32 | root i32 | flags u8 | g u16 | ch u16 | op u16 | frames
 *   u16 | body u32 | frame lengths u32… | g | ch | op (UTF-8) | body | 0-7 zeros | (frame | 0-7
 *   zeros)… | tag`: every frame starts 8-byte aligned from the message's start, so a large typed
 *   array received in a buffer of its own is viewed where it lies, never copied to realign it.
 * - abort: `seq u48 | the message as JSON | tag` (rare: a failed group)
 * - ack (acceptor): `seq u48` (every data message up to it arrived) `| tag`
 */
export const enum Kind {
  Hello = 1,
  Welcome = 2,
  Data = 3,
  Abort = 4,
  Ack = 5,
}

export const HELLO_BYTES = 4 + 1 + 4 + 8 + NONCE + TAG;
export const WELCOME_BYTES = 4 + 1 + 1 + NONCE + TAG;
const SEQ_AT = 5;
const DATA_FIXED = 36;
const HAS_META = 1;
const HAS_ROOT = 2;

/** A message's room: `KEY` bytes for signing, then the message, its length field filled in. */
function room(total: number): Buffer {
  const buf = total <= SMALL ? Buffer.allocUnsafe(KEY + total) : bigBuffer(KEY + total);
  buf.writeUInt32BE(total - 4, KEY);
  return buf;
}

export function hello(key: Buffer, to: number, lid: Buffer, nonce: Buffer): Buffer {
  const buf = room(HELLO_BYTES);
  buf[KEY + 4] = Kind.Hello;
  buf.writeUInt32BE(to >>> 0, KEY + 5);
  lid.copy(buf, KEY + 9, 0, 8);
  nonce.copy(buf, KEY + 17);
  sign(key, buf, HELLO_BYTES, 0);
  return buf.subarray(KEY);
}

export function welcome(key: Buffer, ok: boolean, nonce: Buffer): Buffer {
  const buf = room(WELCOME_BYTES);
  buf[KEY + 4] = Kind.Welcome;
  buf[KEY + 5] = ok ? 1 : 0;
  nonce.copy(buf, KEY + 6);
  sign(key, buf, WELCOME_BYTES, 0);
  return buf.subarray(KEY);
}

export function ack(key: Buffer, seq: number): Buffer {
  const buf = room(4 + 1 + 6 + TAG);
  buf[KEY + 4] = Kind.Ack;
  buf.writeUIntBE(seq, KEY + SEQ_AT, 6);
  sign(key, buf, 4 + 1 + 6 + TAG, seq);
  return buf.subarray(KEY);
}

/** A comm message as one signed buffer (the bytes of `parts` are copied: the caller may reuse them). */
export function encode(key: Buffer, seq: number, msg: CommMsg | CommAbortMsg, parts: readonly Part[]): Buffer {
  if (msg.type === "comm_abort") {
    const json = Buffer.from(JSON.stringify({ ...msg, ps: undefined }));
    const total = SEQ_AT + 6 + json.length + TAG;
    const buf = room(total);
    buf[KEY + 4] = Kind.Abort;
    buf.writeUIntBE(seq, KEY + SEQ_AT, 6);
    json.copy(buf, KEY + SEQ_AT + 6);
    sign(key, buf, total, seq);
    return buf.subarray(KEY);
  }
  const part = parts[0];
  const body = part?.body ?? Buffer.alloc(0);
  const frames = part?.frames ?? [];
  const op = msg.meta?.op ?? "";
  const gLen = Buffer.byteLength(msg.g);
  const chLen = Buffer.byteLength(msg.ch);
  const opLen = Buffer.byteLength(op);
  let total = DATA_FIXED + 4 * frames.length + gLen + chLen + opLen + body.length;
  total += pad(total);
  for (const f of frames) total += f.byteLength + pad(f.byteLength);
  total += TAG;
  const buf = room(total);
  let at = KEY + 4;
  buf[at] = Kind.Data;
  buf.writeUIntBE(seq, KEY + SEQ_AT, 6);
  buf.writeUInt32BE(msg.to >>> 0, KEY + 11);
  buf.writeUInt32BE(msg.from >>> 0, KEY + 15);
  const root = msg.meta?.root;
  buf.writeInt32BE(root ?? -1, KEY + 19);
  buf[KEY + 23] = (msg.meta ? HAS_META : 0) | (root !== undefined ? HAS_ROOT : 0);
  buf.writeUInt16BE(gLen, KEY + 24);
  buf.writeUInt16BE(chLen, KEY + 26);
  buf.writeUInt16BE(opLen, KEY + 28);
  buf.writeUInt16BE(frames.length, KEY + 30);
  buf.writeUInt32BE(body.length, KEY + 32);
  at = KEY + DATA_FIXED;
  for (const f of frames) {
    buf.writeUInt32BE(f.byteLength, at);
    at += 4;
  }
  at += buf.write(msg.g, at);
  at += buf.write(msg.ch, at);
  if (opLen) at += buf.write(op, at);
  at += body.copy(buf, at);
  for (let p = pad(at - KEY); p > 0; p--) buf[at++] = 0;
  putFrames(buf, at, frames);
  sign(key, buf, total, seq);
  return buf.subarray(KEY);
}

export const kindOf = (m: Buffer): number => m[4] ?? 0;
export const seqOf = (m: Buffer): number => (m.length >= SEQ_AT + 6 ? m.readUIntBE(SEQ_AT, 6) : -1);

/**
 * A data or abort message back as the protocol's (the tag already checked, or our own); views of
 * `m`, no copies. Undefined when its fields do not add up.
 */
export function decode(m: Buffer): { msg: CommMsg | CommAbortMsg; parts: Part[] } | undefined {
  const end = m.length - TAG;
  if (kindOf(m) === Kind.Abort) {
    try {
      const msg = JSON.parse(m.toString("utf8", SEQ_AT + 6, end)) as CommAbortMsg;
      return msg?.type === "comm_abort" && Array.isArray(msg.to) ? { msg, parts: [] } : undefined;
    } catch {
      return undefined;
    }
  }
  if (kindOf(m) !== Kind.Data || end < DATA_FIXED) return undefined;
  const flags = m[23] as number;
  const gLen = m.readUInt16BE(24);
  const chLen = m.readUInt16BE(26);
  const opLen = m.readUInt16BE(28);
  const n = m.readUInt16BE(30);
  const bodyLen = m.readUInt32BE(32);
  let at = DATA_FIXED + 4 * n;
  if (at + gLen + chLen + opLen + bodyLen > end) return undefined;
  const g = m.toString("utf8", at, (at += gLen));
  const ch = m.toString("utf8", at, (at += chLen));
  const op = m.toString("utf8", at, (at += opLen));
  const body = m.subarray(at, (at += bodyLen));
  at += pad(at);
  const frames: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const len = m.readUInt32BE(DATA_FIXED + 4 * i);
    if (at + len > end) return undefined;
    frames.push(m.subarray(at, at + len));
    at += len + pad(len);
  }
  if (at !== end) return undefined;
  const msg: CommMsg = { type: "comm", g, to: m.readUInt32BE(11), from: m.readUInt32BE(15), ch, pf: [n] };
  if (flags & HAS_META) msg.meta = flags & HAS_ROOT ? { op, root: m.readInt32BE(19) } : { op };
  return { msg, parts: [{ body, frames }] };
}
