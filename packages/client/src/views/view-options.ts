import { InvalidOptionError } from "@ptcluster/protocol";
import { describeValue, nonNegativeInt, rejectUnknownKeys } from "../options.js";

/** Options a view applies to every call made through it (`view.with({...})`). */
export interface ViewOptions {
  /**
   * Values shipped by name with the function: `view.with({ scope: { threshold } }).apply((x) => x > threshold, 3)`.
   * They shadow engine globals for this function only.
   */
  scope?: Record<string, unknown>;
  /**
   * Run-time limit in ms, counted from the task's start on its engine (time queued behind other
   * tasks excluded); per item for `map`. A task past it sees `engine.signal` abort, is stopped by
   * force after a grace period (its engine's namespace is then reset), and fails with
   * `TaskTimeoutError`.
   */
  timeout?: number;
  /** Cancels the call's tasks: queued ones are dropped, running ones see `engine.signal` abort, then are stopped. */
  signal?: AbortSignal;
}

const VIEW_KEYS = new Set(["scope", "timeout", "signal"]);
const IDENT = /^[A-Za-z_$][\w$]*$/;

/** Checks `timeout` (a positive integer, ms) and `signal` (an AbortSignal), as every view takes them. */
export function checkTimeoutAndSignal(o: { timeout?: unknown; signal?: unknown }): void {
  if (o.timeout !== undefined && nonNegativeInt("timeout", o.timeout) === 0) {
    throw new InvalidOptionError("Expected `timeout` to be a positive integer (ms), got `0`");
  }
  if (o.signal !== undefined && Object.prototype.toString.call(o.signal) !== "[object AbortSignal]") {
    throw new InvalidOptionError(`Expected \`signal\` to be an AbortSignal, got ${describeValue(o.signal)}`);
  }
}

export function validateViewOptions(o: ViewOptions): ViewOptions {
  if (typeof o !== "object" || o === null)
    throw new InvalidOptionError(`Expected view options to be an object, got ${describeValue(o)}`);
  rejectUnknownKeys(o, VIEW_KEYS, "view");
  if (o.scope !== undefined) {
    if (typeof o.scope !== "object" || o.scope === null || Array.isArray(o.scope)) {
      throw new InvalidOptionError(
        `Expected \`scope\` to be an object of names to values, got ${describeValue(o.scope)}`,
      );
    }
    for (const k of Object.keys(o.scope)) {
      if (!IDENT.test(k))
        throw new InvalidOptionError(`Expected \`scope\` keys to be JavaScript identifiers, got \`${k}\``);
    }
  }
  checkTimeoutAndSignal(o);
  return o;
}
