import { createCipheriv, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Frame authentication.
 *
 * Every message carries an auth frame: `session (16 bytes) | seq (8 bytes, big-endian) | tag (16 bytes)`.
 * The tag is a ChaCha20-Poly1305 tag over no plaintext, with every frame of the message as
 * associated data (binary frames included), under a key derived from the cluster key and the
 * sender's session: `HKDF-SHA256(clusterKey, salt = session)`. Each session numbers its messages,
 * and the nonce is that number, so no nonce ever repeats for one key. Poly1305 authenticates
 * about 10 GB/s here against 1.7 GB/s for HMAC-SHA256, which is what lets 50 MB pushes be
 * checked at every hop.
 *
 * The associated data also binds the channel (`c2h`, `h2e`, …) and, for messages a ROUTER sends,
 * the recipient's routing id, so a message cannot be replayed onto another socket or peer.
 */
export const SESSION_BYTES = 16;
export const AUTH_FRAME_BYTES = SESSION_BYTES + 8 + 16;
const TAG_BYTES = 16;
const HKDF_INFO = Buffer.from("ptcluster frame key v1");

export type ChannelLabel = "c2h" | "h2c" | "e2h" | "h2e" | "pub";

function deriveKey(clusterKey: Buffer, session: Uint8Array): Buffer {
  return Buffer.from(hkdfSync("sha256", clusterKey, session, HKDF_INFO, 32));
}

function computeTag(key: Buffer, seq: bigint, descriptor: Buffer, frames: readonly Uint8Array[]): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64BE(seq, 4);
  const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_BYTES });
  c.setAAD(descriptor, { plaintextLength: 0 });
  for (const f of frames) if (f.byteLength) c.setAAD(f, { plaintextLength: 0 });
  c.final();
  return c.getAuthTag();
}

/** Describes the frames (channel, recipient, session, seq and each length) so boundaries cannot shift. */
function describe(label: ChannelLabel, recipient: Uint8Array | undefined, authPrefix: Uint8Array, frames: readonly Uint8Array[]): Buffer {
  const rlen = recipient?.byteLength ?? 0;
  const d = Buffer.allocUnsafe(3 + 1 + rlen + 24 + 4 + frames.length * 8);
  let o = d.write(label, 0, "latin1");
  d[o++] = rlen;
  if (recipient) { d.set(recipient, o); o += rlen; }
  d.set(authPrefix.subarray(0, 24), o); o += 24;
  d.writeUInt32BE(frames.length, o); o += 4;
  for (const f of frames) { d.writeBigUInt64BE(BigInt(f.byteLength), o); o += 8; }
  return d;
}

/** Signs outgoing messages for one sending socket (one session, increasing sequence numbers). */
export class Signer {
  readonly session: Buffer;
  private readonly key: Buffer;
  private seq = 0n;
  constructor(clusterKey: Buffer, session: Buffer = randomBytes(SESSION_BYTES)) {
    this.session = session;
    this.key = deriveKey(clusterKey, session);
  }
  /** Returns the auth frame for `frames` sent on `label` (to `recipient`, for ROUTER sends). */
  sign(label: ChannelLabel, recipient: Uint8Array | undefined, frames: readonly Uint8Array[]): Buffer {
    const auth = Buffer.allocUnsafe(AUTH_FRAME_BYTES);
    this.session.copy(auth, 0);
    auth.writeBigUInt64BE(++this.seq, SESSION_BYTES);
    const tag = computeTag(this.key, this.seq, describe(label, recipient, auth, frames), frames);
    tag.copy(auth, SESSION_BYTES + 8);
    return auth;
  }
}

export type VerifyResult = "ok" | "malformed" | "bad-mac" | "replay";

interface SessionState { key: Buffer; lastSeq: bigint }

/**
 * Verifies incoming messages: the tag must match and the sequence number must be new for its
 * session. Only sessions that produced a valid message are remembered (bounded), so hostile
 * traffic costs one key derivation and one tag per message and no memory.
 */
export class Verifier {
  private readonly sessions = new Map<string, SessionState>();
  constructor(private readonly clusterKey: Buffer, private readonly maxSessions = 65_536) {}

  verify(label: ChannelLabel, recipient: Uint8Array | undefined, auth: Uint8Array, frames: readonly Uint8Array[]): VerifyResult {
    if (auth.byteLength !== AUTH_FRAME_BYTES) return "malformed";
    const a = Buffer.from(auth.buffer, auth.byteOffset, auth.byteLength);
    const sid = a.toString("latin1", 0, SESSION_BYTES);
    const seq = a.readBigUInt64BE(SESSION_BYTES);
    const known = this.sessions.get(sid);
    if (known && seq <= known.lastSeq) return "replay";
    const key = known?.key ?? deriveKey(this.clusterKey, a.subarray(0, SESSION_BYTES));
    const expected = computeTag(key, seq, describe(label, recipient, a, frames), frames);
    if (!timingSafeEqual(expected, a.subarray(SESSION_BYTES + 8))) return "bad-mac";
    if (known) {
      known.lastSeq = seq;
      // Keep the map in least-recently-used order, so eviction drops idle sessions, not busy ones.
      this.sessions.delete(sid);
      this.sessions.set(sid, known);
    } else {
      if (this.sessions.size >= this.maxSessions) {
        const oldest = this.sessions.keys().next().value;
        if (oldest !== undefined) this.sessions.delete(oldest);
      }
      this.sessions.set(sid, { key, lastSeq: seq });
    }
    return "ok";
  }
}

/** A new random cluster key (32 bytes). */
export function newClusterKey(): Buffer {
  return randomBytes(32);
}
