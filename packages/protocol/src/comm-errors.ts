import { PtclusterError } from "./errors.js";

/**
 * Errors of engine-to-engine messages (`engine.comm`). Each names the group's call, the rank and
 * the operation, and says what to do.
 */

/** A `recv` or a collective did not complete within its `timeout`. */
export class CommTimeoutError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_COMM_TIMEOUT", message);
  }
}

/** Two members called different collectives at the same point (or the same one with different roots). */
export class CommMismatchError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_COMM_MISMATCH", message);
  }
}

/** A member of the group died (or its task ended) while others waited on it. */
export class CommPeerLostError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_COMM_PEER_LOST", message);
  }
}

/** A call was withdrawn: its `signal` aborted, or the task was cancelled. */
export class CommCancelledError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_COMM_CANCELLED", message);
  }
}

/** A call that cannot be made as given: a rank outside the group, a bad tag or root, a reduction of values it cannot combine. */
export class CommUsageError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_COMM_USAGE", message);
  }
}

const BY_CODE: Record<string, new (message: string) => PtclusterError> = {
  ERR_PTC_COMM_TIMEOUT: CommTimeoutError,
  ERR_PTC_COMM_MISMATCH: CommMismatchError,
  ERR_PTC_COMM_PEER_LOST: CommPeerLostError,
  ERR_PTC_COMM_CANCELLED: CommCancelledError,
  ERR_PTC_COMM_USAGE: CommUsageError,
};

/** The error class for a comm error's code (a plain `PtclusterError` for others). */
export function commError(code: string, message: string): PtclusterError {
  const Ctor = BY_CODE[code];
  return Ctor ? new Ctor(message) : new PtclusterError(code, message);
}
