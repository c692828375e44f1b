/**
 * The boundary between engine.comm's collectives (`collectives.ts`, pure: algorithms over
 * point-to-point messages) and its transport (`group.ts`: messages between the ranks of one
 * DirectView call, through the supervisor and the controller, or a peer socket).
 *
 * A `Wire` is one rank's view of its group. `channel` separates message streams: the user's
 * `send`/`recv` use `u:<tag>`, each collective its own `c:<sequence number>`. Messages between one
 * pair of ranks on one channel arrive in the order sent.
 */

/** Options of every call that may wait. */
export interface CallOptions {
  /** Milliseconds to wait at most (`CommTimeoutError` past it). */
  timeout?: number | undefined;
  /** Aborting it withdraws the call (`CommCancelledError`). */
  signal?: AbortSignal | undefined;
}

/**
 * What a collective's message says about the collective that sent it: receivers compare it with
 * their own call at the same sequence number and fail with `CommMismatchError` on a difference.
 */
export interface CollectiveMeta {
  op: string;
  root?: number | undefined;
}

export interface Received {
  value: unknown;
  meta?: CollectiveMeta | undefined;
}

export interface Wire {
  readonly rank: number;
  readonly size: number;
  /**
   * Sends `value` (any structured-clone value; typed arrays travel as binary frames) to rank
   * `dest` on `channel`. Resolves once it is on its way (it does not wait for a matching `recv`).
   */
  send(dest: number, channel: string, value: unknown, meta?: CollectiveMeta): Promise<void>;
  /** The next message from rank `source` on `channel`. Rejects with the group's error once it is aborted, or a member is lost. */
  recv(source: number, channel: string, options?: CallOptions): Promise<Received>;
  /**
   * The first message on `channel` from any rank (the user's `recv` without a source), with the
   * rank it came from.
   */
  recvAny(channel: string, options?: CallOptions): Promise<Received & { source: number }>;
  /**
   * Hands every message on `channel` (those waiting first) to `handler` as it is delivered, in
   * order with this rank's other messages, until the returned function is called: a message
   * handled so cannot be overtaken by one that arrived after it (the call checks on rank 0).
   */
  watch(channel: string, handler: (source: number, value: unknown) => void): () => void;
  /**
   * The caller is done with `value`, which it received and nothing else holds (a chunk combined
   * into a collective's result): the transport may reuse its bytes.
   */
  release(value: unknown): void;
  /**
   * Fails every pending and later call of this group, on every member, with `error` (a mismatch
   * seen here: the others would otherwise wait for ever).
   */
  abort(error: { code: string; message: string }): void;
}
