import type { EngineTask, Part } from "@ptcluster/protocol";

/** Why the supervisor stopped a task, reported whatever the task does next. */
export interface Verdict {
  code: string;
  /** Message once the task has started, and before (when it never started: cancelled in time). */
  message: string;
  unstarted?: string;
}

/**
 * Where one task is on this engine. The supervisor keeps this for every task it holds; only the
 * executor's reports (started, result, dropped) move a task out of `posted` or `releasing`.
 *
 *   queued ──post──▶ posted ──started──▶ running ──result──▶ reported
 *     │  │            │   │                 │
 *     │  │   release  │   │ cancel          │ cancel, timeout
 *     │  │            ▼   ▼                 ▼
 *     │  │     releasing  stopping ──result or dropped──▶ verdict reported
 *     │  │       │ dropped: given back     └─ no stop within the grace period: executor replaced
 *     ▼  ▼       ▼ (started: running)
 *   cancelled, given back
 *
 * - `queued`: in the supervisor's queue, not handed to the executor: cancelled or given back
 *   (`release`) at once.
 * - `posted`: handed to the executor, which starts it when it has a free slot: at once, unless the
 *   supervisor posted it ahead (prefetch, while tasks are quick). `watch`, for a task with a
 *   timeout, looks in the start table in case its start report is held back.
 * - `releasing`: posted, then asked back for an idle engine, or, with `cancel`, because its client
 *   is gone: the executor drops it (then it goes back to the controller, or reports `cancel`)
 *   unless it has already started it (then it runs here).
 * - `running`: the executor reported its start (or the supervisor found it in the `StartTable`:
 *   a task that never yields holds its report back); its timeout counts from then.
 * - `stopping`: cancelled or timed out while in the executor, which drops it (not started) or
 *   aborts its `engine.signal`; its verdict is what gets reported. `started` is set if it ran.
 *
 * An executor that is replaced takes its `running` tasks with it (they fail); `posted` and
 * `releasing` ones go back to the front of the queue, `stopping` ones report their verdict.
 */
export type TaskState =
  | { kind: "queued" }
  | { kind: "posted"; watch: NodeJS.Timeout | undefined }
  | { kind: "releasing"; watch: NodeJS.Timeout | undefined; cancel?: Verdict }
  | { kind: "running"; started: number; timer: NodeJS.Timeout | undefined }
  | { kind: "stopping"; started: number | undefined; verdict: Verdict; killTimer: NodeJS.Timeout };

export interface TaskEntry {
  task: EngineTask;
  part: Part;
  state: TaskState;
}

export const CANCELLED: Verdict = {
  code: "ERR_PTC_TASK_CANCELLED",
  message: "The task was cancelled while running.",
  unstarted: "The task was cancelled before it started.",
};

export const CLIENT_GONE: Verdict = {
  code: "ERR_PTC_TASK_CANCELLED",
  message: "The task was cancelled before it started: its client went away.",
};

export const timedOut = (ms: number): Verdict => ({
  code: "ERR_PTC_TASK_TIMEOUT",
  message: `The task ran longer than its timeout of ${ms} ms and was stopped.`,
});

/** What to report for a task stopped with `verdict`. */
export const verdictError = (verdict: Verdict, started: boolean): { code: string; message: string } => ({
  code: verdict.code,
  message: started ? verdict.message : (verdict.unstarted ?? verdict.message),
});
