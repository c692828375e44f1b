/**
 * The user's side of `engine.comm` (point to point), as shipped code sees it. The collectives
 * extend it.
 */

/** Options of every `engine.comm` call that may wait. */
export interface CommCallOptions {
  /** Milliseconds to wait at most (`CommTimeoutError` past it). */
  timeout?: number | undefined;
  /** Aborting it withdraws the call (`CommCancelledError`). */
  signal?: AbortSignal | undefined;
}

/** A message's tag: a non-negative integer or a string (default 0). Messages of one tag never match a `recv` of another. */
export type CommTag = number | string;

export interface RecvOptions extends CommCallOptions {
  /** The rank to receive from; without it, the first message of the tag from any rank. */
  source?: number | undefined;
  tag?: CommTag | undefined;
}

/** A message with where it came from (`recvFrom`). */
export interface CommMessage {
  value: unknown;
  source: number;
  tag: CommTag;
}

/** `engine.comm` in a task of a DirectView call: this engine's rank in the call's targets, and messages between them. */
export interface EngineComm {
  /** This engine's index in the call's targets, in the order given. */
  readonly rank: number;
  /** How many targets the call has. */
  readonly size: number;
  /** Sends `value` to rank `dest`; resolves once it is on its way (it does not wait for the matching `recv`). */
  send(dest: number, value: unknown, options?: { tag?: CommTag }): Promise<void>;
  /** The next message of `tag` from `source` (any rank without one): its value. */
  recv(options?: RecvOptions): Promise<unknown>;
  /** As `recv`, with the rank it came from and its tag. */
  recvFrom(options?: RecvOptions): Promise<CommMessage>;
}
