import type { CommAbortMsg, CommMsg, CommPathCounts, Part, PeerStateMsg } from "@ptcluster/protocol";

/** What an executor sends for `engine.comm`: a rank's message, or its group's abort. */
export type CommOutMsg = CommMsg | CommAbortMsg;
/** What reaches an executor for `engine.comm`: a message, a group's abort, an engine gone or back. */
export type CommIn = CommMsg | CommAbortMsg | PeerStateMsg;

/**
 * How the supervisor carries its executor's `engine.comm` messages to the other engines. Messages
 * between one pair of ranks on one channel must arrive in the order sent.
 */
export interface CommTransport {
  send(msg: CommOutMsg, parts: Part[]): void;
  /** Messages sent so far, by path (reported in the heartbeat's link report). */
  readonly counts: CommPathCounts;
  /** Bytes of the values of the messages sent on this transport's own path (`partBytes`). */
  readonly bytesSent: number;
}

/**
 * Through the controller, over the engine's authenticated channel: every engine kind reaches it,
 * and the channel keeps order and retransmits. (Direct peer sockets, where a peer is reachable,
 * (`DirectTransport`) are the faster path; this one stays as their fallback.)
 */
export class RelayTransport implements CommTransport {
  readonly counts: CommPathCounts = { direct: 0, relayed: 0 };
  bytesSent = 0;

  constructor(private readonly toController: (msg: CommOutMsg, parts: Part[]) => void) {}

  send(msg: CommOutMsg, parts: Part[]): void {
    this.counts.relayed++;
    this.bytesSent += partBytes(parts);
    this.toController(msg, parts);
  }
}

/** Bytes of a message's value, its body and frames: what the supervisors' paths count (`CommPathCounts`). */
export function partBytes(parts: readonly Part[]): number {
  let n = 0;
  for (const p of parts) {
    n += p.body.length;
    for (const f of p.frames) n += f.length;
  }
  return n;
}

/**
 * The heartbeat's `engine.comm` counts: the supervisor's transports (`comm` is the relay itself
 * where there is no direct path), its executors' own links, and the bytes the supervisor received.
 */
export function commReport(
  comm: CommTransport,
  relay: RelayTransport,
  links: { sent: number; bytesSent: number; bytesReceived: number },
  bytesReceived: number,
): CommPathCounts {
  const direct = comm === relay ? 0 : comm.counts.direct;
  const directBytes = comm === relay ? 0 : comm.bytesSent;
  return {
    direct: direct + links.sent,
    // Every message through the controller passes the relay transport (the direct one's too).
    relayed: relay.counts.relayed,
    executor: links.sent,
    bytesSent: directBytes + relay.bytesSent + links.bytesSent,
    bytesReceived: bytesReceived + links.bytesReceived,
  };
}
