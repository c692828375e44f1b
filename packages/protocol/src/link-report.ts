import type { CommPathCounts } from "./comm-messages.js";

/** Messages a socket refused, by reason. */
export interface DropCounts {
  /** Not a ptcluster message, or it does not parse. */
  malformed: number;
  /** The tag does not verify: wrong key, or altered on the way. */
  badMac: number;
  /** A sequence number already delivered: a duplicate or a replay (the two cannot be told apart). */
  replay: number;
  /** Could not be sent: the peer was not connected (it is sent again when it comes back). */
  unroutable: number;
  /** Arrived after a gap while too much was already waiting for it (it is sent again). */
  overflow: number;
}

/** What the test-only fault shim (`PTCLUSTER_TEST_FAULTS`) did to a socket's outgoing messages. */
export interface FaultCounts {
  dropped: number;
  duplicated: number;
  corrupted: number;
  delayed: number;
}

/** Counters of one socket's traffic. */
export interface LinkReport {
  sent: number;
  received: number;
  /** Messages sent again because no acknowledgement came in time. */
  retransmitted: number;
  /** Bytes of the messages sent (every frame, retransmissions and acknowledgements included). */
  bytesSent?: number;
  /** Bytes of the messages received and delivered (every frame). */
  bytesReceived?: number;
  dropped: DropCounts;
  /** Present only while fault injection is on. */
  faults?: FaultCounts;
  /** `engine.comm` messages this engine sent direct and through the controller (engines only). */
  comm?: CommPathCounts;
  /** The direct path of DirectView tasks (docs/architecture.md). */
  direct?: DirectCounts;
}

/**
 * DirectView tasks on the direct path. An engine counts the tasks that came straight from clients
 * and the results it sent straight back; a client the tasks it sent straight to engines and the
 * results that came straight back, the tasks for explicit engines it sent through the controller,
 * and the links that failed (refused, not answered, or no longer acknowledging).
 */
export interface DirectCounts {
  tasks: number;
  results: number;
  viaController?: number;
  failed?: number;
  /** A client's tasks sent on lean links (`lean` endpoints: plain TCP, no ZeroMQ), out of `tasks`. */
  lean?: number;
  /** A client's tasks sent on engines' executors' own links (the default; not with `PTCLUSTER_DIRECT=lean`), out of `lean`. */
  executor?: number;
  /** A client's bytes on its direct links to engines (not in the link report's own byte counts). */
  bytesSent?: number;
  bytesReceived?: number;
}
