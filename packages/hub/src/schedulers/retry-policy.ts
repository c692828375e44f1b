/**
 * What a load-balanced task may survive: failures of its own code (`retries`, each run again on
 * another engine where one is free) and deaths of the engines or executors running it
 * (`maxDeaths`: one more and it fails as a poison task rather than killing engine after engine).
 * Cancelled tasks are never run again.
 */
export interface RetryBudget {
  retriesLeft: number;
  deaths: number;
  readonly maxDeaths: number;
  /** Engines where it threw: avoided by its retries while another engine can take it. */
  failedOn: Set<number> | undefined;
}

export function retryBudget(retries: number, maxDeaths: number): RetryBudget {
  return { retriesLeft: retries, deaths: 0, maxDeaths, failedOn: undefined };
}

/** Its code threw on `engine`: true to run it again (the retry is spent), false to report the error. */
export function retryAfterError(b: RetryBudget, engine: number, cancelRequested: boolean): boolean {
  if (cancelRequested || b.retriesLeft <= 0) return false;
  b.retriesLeft--;
  (b.failedOn ??= new Set()).add(engine);
  return true;
}

/** Its engine or executor died under it: true to run it elsewhere, false when it has used its death budget. */
export function survivesDeath(b: RetryBudget, cancelRequested: boolean): boolean {
  if (cancelRequested) return false;
  b.deaths++;
  return b.deaths <= b.maxDeaths;
}

/**
 * Where a task may go among engines with room: those it has not thrown on, if any of them has
 * room; otherwise any (a retry waits for no particular engine).
 */
export function avoidFailed<E extends { readonly id: number }>(candidates: E[], b: RetryBudget | undefined): E[] {
  const failed = b?.failedOn;
  if (!failed || !candidates.some((e) => !failed.has(e.id))) return candidates;
  return candidates.filter((e) => !failed.has(e.id));
}

/** The message of a task failed for killing too many engines. */
export function poisonMessage(b: RetryBudget, engine: number): string {
  return `This task was running on ${b.deaths} engines that died (the last was engine ${engine}); it is failed as a poison task instead of being retried again.`;
}
