import { AsyncLocalStorage } from "node:async_hooks";

// Result scopes, for tools that run user code and must cancel what it started, such as
// `ptcluster repl` (Ctrl-C aborts the tasks of the line it interrupts, not those of earlier lines).
// Programs hold their results and can `abort()` them; they do not need this.

/**
 * What a scope is handed: an `AsyncResult` (`MapResult` included) or an `imap` stream (`MapRun`);
 * tell them apart with `instanceof`.
 */
export interface ScopedResult {
  abort(reason?: unknown): void;
}

const scope = new AsyncLocalStorage<(result: ScopedResult) => void>();

/**
 * Runs `fn`, and hands `onResult` every result created in its async context: by `fn` itself, by
 * its awaited continuations, and by the timers and callbacks it sets up. Scopes nest: a result goes
 * to the innermost one only.
 *
 * ```ts
 * import { withResultScope, type ScopedResult } from "@ptcluster/client/result-scope";
 * const started = new Set<ScopedResult>();
 * const run = withResultScope((r) => started.add(r), () => userCode(rc));
 * // later, to stop what userCode started (and nothing else):
 * for (const r of started) r.abort();
 * ```
 */
export function withResultScope<T>(onResult: (result: ScopedResult) => void, fn: () => T): T {
  return scope.run(onResult, fn);
}

/** True inside a scope (callers skip the cost of being abortable outside one). */
export function inResultScope(): boolean {
  return scope.getStore() !== undefined;
}

/**
 * A shared-state call made in a scope (`rc.shared…`): aborting it withdraws the call at the
 * controller, so a waiting `get` cancelled by Ctrl-C never takes an item no one will read.
 */
export class ScopedSharedCall implements ScopedResult {
  pending = true;
  readonly #controller = new AbortController();

  /** The signal the call is made with: the caller's, if any, and this scope's. */
  signal(own: AbortSignal | undefined): AbortSignal {
    return own ? AbortSignal.any([own, this.#controller.signal]) : this.#controller.signal;
  }

  abort(reason?: unknown): void {
    if (this.pending) this.#controller.abort(reason);
  }
}

/** @internal Called by every result as it is made; a no-op outside a scope. */
export function noteResult(result: ScopedResult): void {
  const onResult = scope.getStore();
  if (onResult === undefined) return;
  // A tool's callback must not break the call that made the result.
  try {
    onResult(result);
  } catch {
    /* the tool's own failure; the result stands */
  }
}
