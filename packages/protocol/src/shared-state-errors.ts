import { PtclusterError } from "./errors.js";

/**
 * Errors of shared state (`rc.shared`, `engine.shared`). The controller answers a failed
 * operation with a code and a message; {@link sharedStateError} turns them back into these
 * classes on the caller's side.
 */

/** A name was opened as another kind of object than the one it holds. */
export class SharedKindError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_SHARED_KIND", message);
  }
}

/** A blocking call (queue get or put, lock acquire, event or barrier wait) reached its `timeout`. */
export class SharedTimeoutError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_SHARED_TIMEOUT", message);
  }
}

/** A blocking call was withdrawn: its `signal` aborted, or the object was deleted while it waited. */
export class SharedCancelledError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_SHARED_CANCELLED", message);
  }
}

/** `put` on a closed queue. */
export class QueueClosedError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_QUEUE_CLOSED", message);
  }
}

/** A barrier's round was broken (a party timed out, was cancelled, or died) before every party arrived. */
export class BarrierBrokenError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_BARRIER_BROKEN", message);
  }
}

/** Storing this would take the controller's shared state past its memory limit (`--max-shared-mb`). */
export class SharedLimitError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_SHARED_LIMIT", message);
  }
}

/** An operation that cannot apply to the value or arguments given (not a number, index out of range, unknown op). */
export class SharedValueError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_SHARED_VALUE", message);
  }
}

/** `release` of a lock or semaphore with a token that does not hold it (released twice, or freed when its holder died). */
export class LockNotHeldError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_LOCK_NOT_HELD", message);
  }
}

const BY_CODE: Record<string, new (message: string) => PtclusterError> = {
  ERR_PTC_SHARED_KIND: SharedKindError,
  ERR_PTC_SHARED_TIMEOUT: SharedTimeoutError,
  ERR_PTC_SHARED_CANCELLED: SharedCancelledError,
  ERR_PTC_QUEUE_CLOSED: QueueClosedError,
  ERR_PTC_BARRIER_BROKEN: BarrierBrokenError,
  ERR_PTC_SHARED_LIMIT: SharedLimitError,
  ERR_PTC_SHARED_VALUE: SharedValueError,
  ERR_PTC_LOCK_NOT_HELD: LockNotHeldError,
};

/** The error class for a code the controller answered with (a plain `PtclusterError` for others). */
export function sharedStateError(code: string, message: string): PtclusterError {
  const Ctor = BY_CODE[code];
  return Ctor ? new Ctor(message) : new PtclusterError(code, message);
}
