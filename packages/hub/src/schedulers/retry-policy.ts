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
 * Where a retried task may go: among `withRoom`, the engines it has not thrown on. When none of
 * those has room but one of them is alive (`eligible`: the engines it may run on at all), it
 * waits for it rather than going back to an engine that just failed it (ipyparallel moves a
 * retry to another engine too). Only when it has thrown on every engine it may use does any do.
 */
export function avoidFailed<E extends { readonly id: number }>(
  withRoom: E[],
  eligible: Iterable<E>,
  b: RetryBudget | undefined,
): E[] {
  const failed = b?.failedOn;
  if (!failed) return withRoom;
  const fresh = withRoom.filter((e) => !failed.has(e.id));
  if (fresh.length > 0) return fresh;
  for (const e of eligible) if (!failed.has(e.id)) return [];
  return withRoom;
}

/** The message of a task failed for killing too many engines. */
export function poisonMessage(b: RetryBudget, engine: number): string {
  return `This task was running on ${b.deaths} engines that died (the last was engine ${engine}); it is failed as a poison task instead of being retried again.`;
}

/** The message of a task whose engine's process died of a native crash (`signal`) while it ran. */
export function crashMessage(engine: number, signal: string): string {
  return `Engine ${engine}'s process died of ${signal} (a native crash: a native addon, or a fatal error of Node) while running this task. The task is not run again unless its \`retries\` ask; the other tasks of that engine move to other engines.`;
}
