import { AsyncLocalStorage } from "node:async_hooks";

/**
 * For tools that run user code and must cancel what it started, such as `ptcluster repl` (Ctrl-C
 * aborts the tasks of the line it interrupts, not those of earlier lines). Not needed by programs,
 * which hold their results and can `abort()` them.
 *
 * `withResultScope(onResult, fn)` runs `fn`, and hands `onResult` every result created in its async
 * context: by `fn` itself, by its awaited continuations, and by the timers and callbacks it sets
 * up. Results are `AsyncResult`s (`MapResult` included) and `imap` streams (`MapRun`); tell them
 * apart with `instanceof`. Scopes nest: a result goes to the innermost one only.
 */
export interface ScopedResult {
  abort(reason?: unknown): void;
}

const scope = new AsyncLocalStorage<(result: ScopedResult) => void>();

/** Runs `fn`, calling `onResult` with each result its async context creates (see above). */
export function withResultScope<T>(onResult: (result: ScopedResult) => void, fn: () => T): T {
  return scope.run(onResult, fn);
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
