import { createHash } from "node:crypto";
import { AUTH_FAILED, TAG } from "../codec/wire.js";
import { outgoing, type Outgoing } from "./send-window.js";

/**
 * Auth-failure notices. A peer whose messages fail their tag check has either a wrong key or a
 * message altered on the way; only the first is worth telling its user about, and only the
 * sender can tell them apart. So a ROUTER side tells the peer, unsigned (it cannot sign for a
 * key it does not share), with evidence: the auth frame it received and a digest of every frame.
 * The peer believes it only if that is exactly what it sent; a forged or garbled notice costs it
 * nothing but a log line.
 */

/** How often one peer is told (ms): a peer with a wrong key sends many messages. */
const NOTICE_INTERVAL_MS = 1000;
/** Peers remembered for the rate limit; the table is simply cleared beyond this (a flood of ids). */
const MAX_REMEMBERED = 10_000;

export class AuthFailureNotices {
  private readonly lastAt = new Map<string, number>();

  /**
   * The notice for a peer whose message `frames` (routing id first) failed its tag, or undefined
   * if that peer was told less than a second ago.
   */
  notice(to: Buffer, frames: readonly Buffer[], now = Date.now()): Outgoing | undefined {
    const key = to.toString("latin1");
    if ((this.lastAt.get(key) ?? 0) > now - NOTICE_INTERVAL_MS) return undefined;
    if (this.lastAt.size > MAX_REMEMBERED) this.lastAt.clear();
    this.lastAt.set(key, now);
    return outgoing([to, TAG, AUTH_FAILED, frames[2] ?? Buffer.alloc(0), digest(frames, 2)], 0, 0);
  }
}

/**
 * Whether a notice (`echo`: the auth frame the controller received; `received`: its digest of
 * what it received) is about a message we sent exactly as it was received: then our key is wrong.
 * `candidates` are our messages still unacknowledged or held (frames: marker, auth, body).
 */
export function noticeProvesWrongKey(
  echo: Buffer | undefined,
  received: Buffer | undefined,
  candidates: Iterable<Outgoing>,
): boolean {
  if (!echo || !received) return false;
  let sent: Outgoing | undefined;
  for (const out of candidates) if (out.frames[1]?.equals(echo)) sent = out;
  return sent !== undefined && received.equals(digest(sent.frames, 1));
}

/** SHA-256 of frames `from..` (auth frame and body): evidence of what a peer received. */
export function digest(frames: readonly Buffer[], from: number): Buffer {
  const h = createHash("sha256");
  for (let i = from; i < frames.length; i++) h.update(frames[i] as Buffer);
  return h.digest();
}
