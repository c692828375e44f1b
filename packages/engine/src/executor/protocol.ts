import type { EngineTask, TaskResult } from "@ptcluster/protocol";
import type { Packed } from "../shared/transfer.js";

/** Supervisor → executor thread. */
export type ToExecutor =
  | { type: "init"; engineId: number; host: string; uuid: string }
  | { type: "task"; task: EngineTask; data: Packed }
  | { type: "cancel"; id: number; reason: string };

/** Executor thread → supervisor. */
export type FromExecutor =
  | { type: "ready" }
  | { type: "result"; result: TaskResult; data: Packed };
