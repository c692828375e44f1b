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

/**
 * How a reduction combines two values: element-wise for typed arrays (same kind and length on
 * every rank), or a function of (lower ranks' value, higher ranks' value), assumed associative.
 */
export type ReduceOp = "sum" | "prod" | "min" | "max" | ((a: never, b: never) => unknown);

export interface RootedOptions extends CommCallOptions {
  /** The rank that sends (bcast, scatter) or receives (reduce, gather); default 0. */
  root?: number | undefined;
}

export interface AllreduceOptions extends CommCallOptions {
  /**
   * A typed array of the value's kind and length that receives the result and is returned, as
   * mpi4py's `comm.Allreduce(sendbuf, recvbuf)`: a loop of large allreduces then makes no new
   * array per call (a fresh multi-MiB array costs page faults and garbage collections). It may be
   * the value itself (MPI's `IN_PLACE`).
   */
  out?: ArrayBufferView | undefined;
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

  // Collectives: every rank of the call makes the same calls in the same order (a difference is a
  // `CommMismatchError` on every rank, never a hang).

  /** The root's value, on every rank. */
  bcast<T>(value: T, options?: RootedOptions): Promise<T>;
  /** The values of all ranks combined, on the root (undefined on the others). */
  reduce<T>(value: T, op: ReduceOp, options?: RootedOptions): Promise<T | undefined>;
  /** The values of all ranks combined, on every rank (large typed arrays by ring reduce-scatter + allgather). */
  allreduce<T>(value: T, op: ReduceOp, options?: AllreduceOptions): Promise<T>;
  /** Every rank's value, in rank order, on the root (undefined on the others). */
  gather<T>(value: T, options?: RootedOptions): Promise<T[] | undefined>;
  /** Every rank's value, in rank order, on every rank. */
  allgather<T>(value: T, options?: CommCallOptions): Promise<T[]>;
  /** The root gives `values[i]` to rank i (the others pass undefined). */
  scatter<T>(values: readonly T[] | undefined, options?: RootedOptions): Promise<T>;
  /** Each rank gives `values[i]` to rank i, and gets one value from every rank, in rank order. */
  alltoall<T>(values: readonly T[], options?: CommCallOptions): Promise<T[]>;
  /** Resolves once every rank has called it. */
  barrier(options?: CommCallOptions): Promise<void>;
}
