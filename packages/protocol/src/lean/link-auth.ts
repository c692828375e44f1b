import { createCipheriv, hash, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Authentication of an executor link (docs/security.md, "Executor links"): each connection gets
 * two keys of its own, derived from the cluster key, both sides' fresh random nonces and the
 * hello; every message after the hello carries a 16-byte tag over all its bytes (its length
 * first) under the key of its direction. Within a connection, data messages are numbered and a
 * number must grow; another connection has other keys. So nothing is accepted without the
 * cluster key, and nothing recorded can be replayed, on that connection or another.
 *
 * Two constructions, chosen by the message's length (which the tag covers): up to `SMALL` bytes,
 * SHA-384 over `key | message` (a truncated SHA-2 hides its internal state, so no length
 * extension; 2 µs against 10 µs for a cipher object, which is most of a small message's cost);
 * above, ChaCha20-Poly1305's tag over the message as associated data, nonce = its number, which
 * authenticates 10 GB/s against SHA-384's 0.4 GB/s here.
 */
export const TAG = 16;
export const KEY = 32;
export const SMALL = 2_048;
export const NONCE = 16;

/**
 * Who dials: an executor (`engine.comm`) or a client (its DirectView tasks). Each role has keys
 * of its own (another HKDF label), so a hello or a message of one kind of link is never accepted
 * on the other.
 */
export type LinkRole = "executor" | "client";
const HELLO_INFO = {
  executor: Buffer.from("ptcluster executor link hello v1"),
  client: Buffer.from("ptcluster client link hello v1"),
};
const LINK_INFO = {
  executor: Buffer.from("ptcluster executor link v1"),
  client: Buffer.from("ptcluster client link v1"),
};

/** The key of the dialler's hello (fixed per cluster key: a hello is answered only to a key holder). */
export function helloKey(clusterKey: Buffer, role: LinkRole = "executor"): Buffer {
  return Buffer.from(hkdfSync("sha256", clusterKey, Buffer.alloc(0), HELLO_INFO[role], KEY));
}

/**
 * The connection's two keys (dialler → acceptor, acceptor → dialler) from the cluster key, the
 * hello's bytes (its nonce, link id and recipient: altering one on the way gives other keys) and
 * the acceptor's nonce.
 */
export function linkKeys(
  clusterKey: Buffer,
  hello: Buffer,
  nonceA: Buffer,
  role: LinkRole = "executor",
): { d2a: Buffer; a2d: Buffer } {
  const salt = Buffer.concat([hello, nonceA]);
  const k = Buffer.from(hkdfSync("sha256", clusterKey, salt, LINK_INFO[role], 2 * KEY));
  return { d2a: k.subarray(0, KEY), a2d: k.subarray(KEY) };
}

export const nonce = (): Buffer => randomBytes(NONCE);

/**
 * Signs a message in place. `buf` holds `KEY` bytes of room, then the message (`len` bytes, its
 * last `TAG` for the tag); `seq` is its number (the nonce of the large construction).
 */
export function sign(key: Buffer, buf: Buffer, len: number, seq: number): void {
  const end = KEY + len - TAG;
  if (len <= SMALL) {
    key.copy(buf, 0);
    hash("sha384", buf.subarray(0, end), "buffer").copy(buf, end, 0, TAG);
    return;
  }
  tagOf(key, buf.subarray(KEY, end), seq).copy(buf, end);
}

/**
 * Checks a received message's tag (`msg`: the whole message, tag last); `scratch` holds `KEY + SMALL`
 * bytes. `computed`: the tag a {@link streamTag} made of the message's bytes as they arrived.
 */
export function verify(key: Buffer, scratch: Buffer, msg: Buffer, seq: number, computed?: Buffer): boolean {
  const body = msg.length - TAG;
  if (body < 4) return false;
  let tag: Buffer;
  if (computed && msg.length > SMALL) tag = computed;
  else if (msg.length <= SMALL) {
    key.copy(scratch, 0);
    msg.copy(scratch, KEY, 0, body);
    tag = hash("sha384", scratch.subarray(0, KEY + body), "buffer").subarray(0, TAG);
  } else tag = tagOf(key, msg.subarray(0, body), seq);
  return timingSafeEqual(tag, msg.subarray(body));
}

/**
 * The large construction's tag of message `seq`, taken in as its bytes come (`update`, in order,
 * the tag's own bytes excluded): the receiver of a large message tags each read as it lands,
 * while the rest is on its way, instead of walking the whole message once it is in.
 */
export function streamTag(key: Buffer, seq: number): { update(bytes: Uint8Array): void; digest(): Buffer } {
  const c = cipherFor(key, seq);
  return {
    update: (bytes) => void (bytes.byteLength && c.setAAD(bytes, { plaintextLength: 0 })),
    digest: () => {
      c.final();
      return c.getAuthTag();
    },
  };
}

function cipherFor(key: Buffer, seq: number) {
  const iv = Buffer.alloc(12);
  iv.writeUIntBE(seq, 6, 6);
  return createCipheriv("chacha20-poly1305", key, iv, { authTagLength: TAG });
}

function tagOf(key: Buffer, data: Buffer, seq: number): Buffer {
  return tagOver(key, [data], seq);
}

/**
 * The large construction's tag over `pieces` in order, as over their concatenation (Poly1305
 * takes its associated data in several updates): a message is tagged over its frames where they
 * lie, without being copied into one buffer first (`duplex-wire.ts`'s `encode`).
 */
export function tagOver(key: Buffer, pieces: readonly Uint8Array[], seq: number): Buffer {
  const c = cipherFor(key, seq);
  for (const p of pieces) if (p.byteLength) c.setAAD(p, { plaintextLength: 0 });
  c.final();
  return c.getAuthTag();
}
