/**
 * Messages of `engine.comm` (engine-to-engine messages of one DirectView call), relayed by the
 * controller. The controller routes them by header alone: the value travels as one part, its
 * typed arrays as binary frames, never decoded on the way.
 */

/**
 * The group of a DirectView call, on each of its tasks: `g` is unique to the call (chosen by the
 * client), `ranks` the call's targets in the order given (rank i is engine `ranks[i]`).
 */
export interface CommGroup {
  g: string;
  ranks: number[];
}

/** What the user's or a collective's message says about itself (see `CollectiveMeta`). */
export interface CommMeta {
  op: string;
  root?: number | undefined;
}

/**
 * One message of group `g` from rank `from` on `ch`. Engine → controller: `to` is the engine id
 * it goes to; controller → engine: `to` is this engine. `pf`: frames of the one part.
 */
export interface CommMsg {
  type: "comm";
  g: string;
  to: number;
  from: number;
  ch: string;
  meta?: CommMeta;
  pf: number[];
  /** On a direct link: `[link id, sequence]`, so a copy resent by relay after the link failed is delivered once. */
  ps?: PathSeq;
}

/** A direct link's id (random per link) and a message's number on it, from 1. */
export type PathSeq = [string, number];

/**
 * A member failed the group (`wire.abort`: a mismatch it saw): every member's pending and later
 * calls of `g` fail with `error`. Engine → controller names the engines in `to`.
 */
export interface CommAbortMsg {
  type: "comm_abort";
  g: string;
  to: number[];
  error: { code: string; message: string };
  ps?: PathSeq;
}

/**
 * Controller → engines: engine `id` is gone (or a message to it found no engine): groups with it
 * fail with `CommPeerLostError`. `up`: it is registered again (its id is usable in new groups).
 */
export interface PeerStateMsg {
  type: "peer_state";
  id: number;
  up: boolean;
  reason: string;
}

// ---- direct peer sockets (docs/comm-transport.md) ------------------------------------------

/** Engine → controller: where does engine `id` take direct messages? */
export interface PeerLookupMsg {
  type: "peer_lookup";
  id: number;
}

/** Controller → engine: engine `id`'s peer endpoint `host:port` (absent: none known, use the relay). */
export interface PeerEndpointMsg {
  type: "peer_endpoint";
  id: number;
  endpoint?: string;
  /** Its CURVE server public key (Z85), in clusters with `--curve`. */
  key?: string;
}

/** Engine → a peer's endpoint, first on a new link: "are you engine `to`?" */
export interface PeerHelloMsg {
  type: "peer_hello";
  to: number;
}

/** A peer endpoint's answer to `peer_hello`: `ok` only when it is the engine asked for. */
export interface PeerHelloReplyMsg {
  type: "peer_hello_reply";
  ok: boolean;
  /**
   * `host:port` of the endpoint this engine's executor thread binds (its own TCP links, carrying
   * the same authenticated channel): peers' executors send there without either supervisor on the
   * way. Absent while the executor is being replaced, with CURVE, or where it could not bind.
   */
  exec?: string;
}

/** Messages an engine's `engine.comm` sent straight to a peer, and through the controller. */
export interface CommPathCounts {
  direct: number;
  relayed: number;
  /** Of the direct ones, those its executor sent on its own links (neither supervisor on the way). */
  executor?: number;
  /**
   * Bytes of `engine.comm` this engine sent and received, every path together: on its executor's
   * links every byte written and read (messages, hellos, acknowledgements); on the supervisors'
   * peer sockets and through the relay, the bytes of each message's value (body and frames: the
   * header and the channel's framing, about a hundred bytes a message, are not in it).
   */
  bytesSent?: number;
  bytesReceived?: number;
}
