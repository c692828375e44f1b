import type { EngineTask, TaskResult } from "@ptcluster/protocol";

/** Supervisor → executor thread. */
export type ToExecutor =
  | { type: "init"; engineId: number; host: string; uuid: string }
  | { type: "task"; task: EngineTask; body: Uint8Array; frames: Uint8Array[] }
  | { type: "cancel"; id: number; reason: string };

/** Executor thread → supervisor. */
export type FromExecutor =
  | { type: "ready" }
  | { type: "result"; result: TaskResult; body: Uint8Array; frames: Uint8Array[] };
