import type { OpenSpec, SharedArgs } from "./wire.js";

/**
 * One operation on a shared object, from a client or an engine; its values are the message's
 * parts. `gen` (engines only): the executor generation making the call. Locks, permits and
 * unacknowledged items it takes belong to that executor, and are freed when it is replaced.
 */
export interface SharedCallMsg {
  type: "shared";
  rid: number;
  name: string;
  spec: OpenSpec;
  op: string;
  args: SharedArgs;
  gen?: number;
  /** Binary frames of each part (the wire's part layout). */
  pf?: number[];
}

/** Withdraw a waiting call (its `signal` aborted): it is answered as cancelled. */
export interface SharedWithdrawMsg {
  type: "shared_withdraw";
  rid: number;
  gen?: number;
}

/** The controller's answer to a `shared` call: a value (and stored values as parts), or an error. */
export interface SharedReplyMsg {
  type: "shared_reply";
  rid: number;
  ok: boolean;
  value?: unknown;
  error?: { code: string; message: string };
  pf?: number[];
  /** Engines only: the executor generation of the call (a reply for an executor since replaced is dropped). */
  gen?: number;
}
