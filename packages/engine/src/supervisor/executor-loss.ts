import type { TaskResult } from "@ptcluster/protocol";

/** What a running task reports when its executor thread goes: the errors, by cause. */
export type LossError = { code: string; message: string };

/** How the executor thread ended on its own, as far as the supervisor saw it. */
export interface ExitCause {
  /** Its exit code. */
  code: number;
  /** It ran out of heap (its `resourceLimits`, or V8's default). */
  outOfMemory: boolean;
  /** The task that called `process.exit` or `process.abort`, when the executor could tell (it says so before exiting). */
  exitedBy?: number | undefined;
  /** What it called: `process.exit(1)`, `process.abort()`. */
  call?: string | undefined;
}

/** Why the executor went, for the log and the clients' `engine_reset` notice. */
export function exitReason(cause: ExitCause): string {
  const why = cause.outOfMemory
    ? " (out of memory)"
    : cause.exitedBy !== undefined
      ? ` (task ${cause.exitedBy} called ${cause.call ?? "process.exit"})`
      : "";
  return `the executor thread exited with code ${cause.code}${why}`;
}

const FRESH = "The engine started a fresh executor; its namespace is empty.";

/**
 * The error of a task running when the executor thread ended on its own: out of memory (every
 * running task: which one allocated cannot be told), or an exit. An exit is the task's own crash
 * (`TaskCrashedError`, like an error of its code: retried only if `retries` asks) for the task that
 * called `process.exit`, or for every running task when the culprit is unknown; a task that merely
 * shared the executor with the culprit is collateral (`REPLACED`: run again elsewhere).
 */
export function exitError(
  engine: number | string,
  task: number,
  cause: ExitCause,
  maxMemoryMb: number | undefined,
): LossError {
  if (cause.outOfMemory)
    return {
      code: "ERR_PTC_OUT_OF_MEMORY",
      message: `The task exhausted the heap of engine ${engine}'s executor${maxMemoryMb ? ` (limit ${maxMemoryMb} MB; raise it with \`ptcluster start --max-memory MB\`)` : ""}. ${FRESH}`,
    };
  if (cause.exitedBy !== undefined && cause.exitedBy !== task) return REPLACED;
  return {
    code: "ERR_PTC_TASK_CRASHED",
    message:
      cause.exitedBy === task
        ? `The task called ${cause.call ?? `process.exit(${cause.code})`}, which ends engine ${engine}'s executor. ${FRESH}`
        : `Engine ${engine}'s executor thread exited (code ${cause.code}) while running this task (did it call process.exit?). ${FRESH}`,
  };
}

/** A task running when the supervisor's memory watch found the executor over its limit. */
export function memoryError(engine: number | string, usedMb: number, maxMemoryMb: number): LossError {
  return {
    code: "ERR_PTC_OUT_OF_MEMORY",
    message: `The task's executor on engine ${engine} used ${usedMb} MB (heap and off-heap: Buffers, typed arrays), over its limit of ${maxMemoryMb} MB; it was stopped before the machine ran short. Raise the limit with \`ptcluster start --max-memory MB\` (or \`startCluster({ maxMemory })\`). ${FRESH}`,
  };
}

/** The supervisor replaced the executor because another task on it did not stop, crashed or used too much memory. */
export const REPLACED: LossError = {
  code: "ERR_PTC_EXECUTOR_RESET",
  message:
    "The engine's executor was replaced (another task on it timed out, was cancelled or crashed) while this task ran; its namespace is empty again.",
};

/**
 * A task posted ahead that had finished when its executor was replaced, its start and result
 * still unreported (a task after it held the thread): the result went with the executor. Not run
 * again, here or elsewhere (the controller does not retry this code): it has run.
 */
export const RAN_RESULT_LOST: LossError = {
  code: "ERR_PTC_RESULT_LOST",
  message:
    "The task ran, but the engine's executor was replaced (a task after it timed out, was cancelled, crashed or ran out of memory) before the task's result was sent: the result is lost. The task is not run again, since it may have had effects. The engine's namespace is empty again.",
};

/** The result of a task that failed with `sysError` (keeping what it printed, if it ran). */
export function failedResult(
  id: number,
  engine: number,
  started: number,
  sysError: { code: string; message: string },
  from?: TaskResult,
): TaskResult {
  const result: TaskResult = { id, ok: false, engine, started, completed: Date.now(), sysError };
  if (from?.stdout) result.stdout = from.stdout;
  if (from?.stderr) result.stderr = from.stderr;
  return result;
}
