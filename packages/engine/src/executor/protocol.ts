import type { EngineTask, TaskResult } from "@ptcluster/protocol";
import type { Packed } from "../shared/transfer.js";

/** Supervisor → executor thread. */
export type ToExecutor =
  | { type: "init"; engineId: number; host: string; uuid: string }
  /** Tasks to run, in order, at most `concurrency` at once (from `workerData`). */
  | { type: "tasks"; items: Array<{ task: EngineTask; data: Packed }> }
  /**
   * Drop these tasks if they have not started; abort the `engine.signal` of those running. One
   * message for all, handled at once: a running task that stops cannot let a dropped one start.
   */
  | { type: "cancel"; ids: number[]; reason: string }
  /** Hand back these tasks if they have not started (another engine is idle). */
  | { type: "reclaim"; ids: number[] }
  /** Drop the sources and compiled code of these functions (no one will run them again). */
  | { type: "forget"; fns: string[] };

/** Executor thread → supervisor. */
export type FromExecutor =
  | { type: "ready" }
  /** Finished tasks, batched: one message for all the results of one turn of the event loop. */
  | { type: "results"; items: Array<{ result: TaskResult; data: Packed }> }
  /** Cancelled before they started. */
  | { type: "dropped"; ids: number[] }
  /** Handed back unstarted, after a `reclaim`. */
  | { type: "reclaimed"; ids: number[] };

/** What the supervisor gives the executor thread at start. */
export interface ExecutorData {
  concurrency: number;
  /** Largest result the cluster accepts (bytes). */
  maxResultBytes: number;
}
