import type { Part } from "../part.js";

/** The kinds of shared objects (design.md, "Shared state"). */
export const SHARED_KINDS = ["dict", "queue", "counter", "array", "lock", "semaphore", "event", "barrier"] as const;
export type SharedKind = (typeof SHARED_KINDS)[number];

/**
 * What an object is, sent with every call on it: the first call creates it so, a later one must
 * match what it is (kind, and the parameters given). An array's initial values are sent once, by
 * its `open` call, as the call's part.
 */
export interface OpenSpec {
  readonly kind: SharedKind;
  /** queue: most items it holds (0 or absent: no limit). */
  readonly maxsize?: number;
  /** semaphore: how many may hold it at once. */
  readonly permits?: number;
  /** barrier: how many callers each round waits for. */
  readonly parties?: number;
  /** array: its typed-array kind (`Float64Array`) and length, for one made zeroed. */
  readonly arrayKind?: string;
  readonly length?: number;
}

/** The scalar arguments of an operation; values travel as the call's parts. */
export interface SharedArgs {
  key?: string;
  index?: number;
  offset?: number;
  count?: number;
  /** The read-modify-write of `update` (`add`, `mul`, …). */
  update?: string;
  /** Milliseconds a blocking call may wait at the controller (absent: for ever). */
  timeout?: number;
  /** Queue `get`: keep the item for this caller until it acknowledges it. */
  ack?: boolean;
  /** The id of a taken item (`ack`) or of a held lock or permits (`release`). */
  token?: number;
}

/** A successful answer: header-sized data, and stored values as parts. */
export interface SharedAnswer {
  readonly value: unknown;
  readonly parts: readonly Part[];
}

/**
 * How a proxy reaches the controller: a client's session, or an engine's supervisor. It rejects
 * with the controller's error (`sharedStateError`), or with the error that ended the connection;
 * an aborted `signal` withdraws a waiting call (`SharedCancelledError`).
 */
export interface SharedTransport {
  call(
    name: string,
    spec: OpenSpec,
    op: string,
    args: SharedArgs,
    parts: readonly Part[],
    signal?: AbortSignal,
  ): Promise<SharedAnswer>;
}

/** Options of a call that may wait at the controller. */
export interface WaitOptions {
  /** Milliseconds to wait at most; past it the call fails with `SharedTimeoutError`. */
  timeout?: number;
  /** Aborting it withdraws the call (`SharedCancelledError`). */
  signal?: AbortSignal;
}
