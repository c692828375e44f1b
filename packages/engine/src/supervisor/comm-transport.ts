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
}

/**
 * Through the controller, over the engine's authenticated channel: every engine kind reaches it,
 * and the channel keeps order and retransmits. (Direct peer sockets, where a peer is reachable,
 * (`DirectTransport`) are the faster path; this one stays as their fallback.)
 */
export class RelayTransport implements CommTransport {
  readonly counts: CommPathCounts = { direct: 0, relayed: 0 };

  constructor(private readonly toController: (msg: CommOutMsg, parts: Part[]) => void) {}

  send(msg: CommOutMsg, parts: Part[]): void {
    this.counts.relayed++;
    this.toController(msg, parts);
  }
}
