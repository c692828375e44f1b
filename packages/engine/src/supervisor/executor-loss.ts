/** What a running task reports when its executor thread goes: the errors, by cause. */
export type LossError = { code: string; message: string };

/** The executor thread exited on its own (out of memory, or `process.exit` in user code). */
export function exitError(
  engine: number | string,
  code: number,
  outOfMemory: boolean,
  maxMemoryMb: number | undefined,
): LossError {
  return outOfMemory
    ? {
        code: "ERR_PTC_OUT_OF_MEMORY",
        message: `The task exhausted the memory of engine ${engine}'s executor${maxMemoryMb ? ` (limit ${maxMemoryMb} MB, set with --max-memory)` : ""}. The engine started a fresh executor; its namespace is empty.`,
      }
    : {
        code: "ERR_PTC_ENGINE_LOST",
        message: `Engine ${engine}'s executor thread exited (code ${code}) while running this task (did it call process.exit?). The engine started a fresh executor; its namespace is empty.`,
      };
}

/** The supervisor replaced the executor because another task on it did not stop. */
export const REPLACED: LossError = {
  code: "ERR_PTC_EXECUTOR_RESET",
  message:
    "The engine's executor was replaced (another task on it timed out or was cancelled) while this task ran; its namespace is empty again.",
};
