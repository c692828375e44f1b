import { decodeBody, encodeBody } from "../codec/wire.js";
import type { Part } from "../messages.js";
import type { Message } from "../peer-messages.js";
import { bigBuffer } from "./buffer-pool.js";
import { KEY, NONCE, SMALL, TAG, sign, tagOver } from "./link-auth.js";
import { pad8 as pad, putFrames } from "./frame-layout.js";

/**
 * The bytes of a client's direct link to an engine (`duplex-link.ts`). As an executor link's
 * (`engine/src/peer-net/link-wire.ts`), every message is `u32 length of the rest | u8 kind | ...`,
 * big-endian, its last 16 bytes its tag; but both sides send data, and a data message carries
 * any protocol message as the `Channel` would (`encodeBody`: msgpack header, bodies, binary
 * frames), so nothing about tasks or results is encoded twice.
 *
 * - hello (client, first; under the client hello key): `to u32 | id length u8 | routing id | nonce 16 | tag`
 * - welcome (engine's answer): `ok u8 | nonce 16 | tag`
 * - data: `seq u48 | frames u16 | frame lengths u32… | 0-7 zeros | (frame | 0-7 zeros)… | tag`
 *   (frames 8-byte aligned from the message's start: a typed array is viewed where it lies)
 * - ack: `seq u48 | tag` (every data message up to `seq` arrived)
 */
export const enum DuplexKind {
  Hello = 16,
  Welcome = 17,
  Data = 18,
  Ack = 19,
}

const SEQ_AT = 5;

/** A message's room: `KEY` bytes for signing, then the message, its length field and kind filled in. */
function room(total: number, kind: DuplexKind): Buffer {
  const buf = total <= SMALL ? Buffer.allocUnsafe(KEY + total) : bigBuffer(KEY + total);
  buf.writeUInt32BE(total - 4, KEY);
  buf[KEY + 4] = kind;
  return buf;
}

export const kindOf = (m: Buffer): number => m[4] ?? 0;
export const seqOf = (m: Buffer): number => (m.length >= SEQ_AT + 6 ? m.readUIntBE(SEQ_AT, 6) : -1);

export function hello(key: Buffer, to: number, id: Buffer, nonce: Buffer): Buffer {
  const total = 4 + 1 + 4 + 1 + id.length + NONCE + TAG;
  const buf = room(total, DuplexKind.Hello);
  buf.writeUInt32BE(to >>> 0, KEY + 5);
  buf[KEY + 9] = id.length;
  id.copy(buf, KEY + 10);
  nonce.copy(buf, KEY + 10 + id.length);
  sign(key, buf, total, 0);
  return buf.subarray(KEY);
}

/** A hello's fields (its tag already checked); undefined when they do not add up. */
export function readHello(m: Buffer): { to: number; id: Buffer } | undefined {
  if (kindOf(m) !== DuplexKind.Hello || m.length < 10) return undefined;
  const n = m[9] as number;
  if (m.length !== 10 + n + NONCE + TAG || n === 0) return undefined;
  return { to: m.readUInt32BE(5), id: Buffer.from(m.subarray(10, 10 + n)) };
}

export const WELCOME_BYTES = 4 + 1 + 1 + NONCE + TAG;

export function welcome(key: Buffer, ok: boolean, nonce: Buffer): Buffer {
  const buf = room(WELCOME_BYTES, DuplexKind.Welcome);
  buf[KEY + 5] = ok ? 1 : 0;
  nonce.copy(buf, KEY + 6);
  sign(key, buf, WELCOME_BYTES, 0);
  return buf.subarray(KEY);
}

export function ack(key: Buffer, seq: number): Buffer {
  const total = 4 + 1 + 6 + TAG;
  const buf = room(total, DuplexKind.Ack);
  buf.writeUIntBE(seq, KEY + SEQ_AT, 6);
  sign(key, buf, total, seq);
  return buf.subarray(KEY);
}

/**
 * Frames from this size on are written where they lie (`encode`); smaller ones are copied next to
 * their neighbours, so a message of many small frames is still one piece, not one write each.
 */
const IN_PLACE = 16 * 1024;

/**
 * Signs a protocol message as data message `seq`: the pieces to write, in order. A small message
 * is one buffer. A larger one is tagged over its frames where they lie and written as
 * `[fields, frame, pad and small frames, frame, ..., tag]` (one `writev`): the bytes on the wire
 * are the same, but a 50 MiB value is not copied into a message buffer first (the copy into
 * fresh pages cost as much as the transfer itself between hosts). Like a ZeroMQ send, the frames
 * are read when the socket writes them: they are not to be changed before.
 */
export function encode(key: Buffer, seq: number, header: Message, parts: readonly Part[] | undefined): Buffer[] {
  const frames = encodeBody(header, parts);
  const fixed = 4 + 1 + 6 + 2 + 4 * frames.length;
  let total = fixed + pad(fixed);
  // The bytes that are not large frames: fields, pads, small frames, tag.
  let own = total + TAG;
  for (const f of frames) {
    total += f.byteLength + pad(f.byteLength);
    own += pad(f.byteLength) + (f.byteLength < IN_PLACE ? f.byteLength : 0);
  }
  total += TAG;
  if (total <= SMALL) {
    const buf = room(total, DuplexKind.Data);
    fields(buf, KEY, seq, frames);
    putFrames(buf, KEY + fixed + pad(fixed), frames);
    sign(key, buf, total, seq);
    return [buf.subarray(KEY)];
  }
  const buf = Buffer.allocUnsafe(own);
  buf.writeUInt32BE(total - 4, 0);
  buf[4] = DuplexKind.Data;
  let at = fields(buf, 0, seq, frames);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const f of frames) {
    if (f.byteLength >= IN_PLACE) {
      if (at > from) pieces.push(buf.subarray(from, at));
      pieces.push(f);
      from = at;
    } else {
      buf.set(f, at);
      at += f.byteLength;
    }
    for (let p = pad(f.byteLength); p > 0; p--) buf[at++] = 0;
  }
  pieces.push(buf.subarray(from, at));
  tagOver(key, pieces, seq).copy(buf, at);
  pieces[pieces.length - 1] = buf.subarray(from, at + TAG);
  return pieces;
}

/** Writes a data message's number, frame count and lengths and the zeros after them at `base`; returns where its frames start. */
function fields(buf: Buffer, base: number, seq: number, frames: readonly Uint8Array[]): number {
  buf.writeUIntBE(seq, base + SEQ_AT, 6);
  buf.writeUInt16BE(frames.length, base + 11);
  let at = base + 13;
  for (const f of frames) {
    buf.writeUInt32BE(f.byteLength, at);
    at += 4;
  }
  for (let p = pad(at - base); p > 0; p--) buf[at++] = 0;
  return at;
}

/**
 * A data message back as the protocol's (its tag already checked, or our own); views of `m`.
 * Undefined when its fields do not add up (`decodeBody` throws on a malformed header).
 */
export function decode(m: Buffer): { header: Message; parts: Part[] } | undefined {
  const end = m.length - TAG;
  if (kindOf(m) !== DuplexKind.Data || end < 13) return undefined;
  const n = m.readUInt16BE(11);
  const fixed = 13 + 4 * n;
  if (n === 0 || fixed > end) return undefined;
  let at = fixed + pad(fixed);
  const frames: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const len = m.readUInt32BE(13 + 4 * i);
    if (at + len > end) return undefined;
    frames.push(m.subarray(at, at + len));
    at += len + pad(len);
  }
  if (at !== end) return undefined;
  try {
    return decodeBody(frames, 0);
  } catch {
    return undefined;
  }
}
