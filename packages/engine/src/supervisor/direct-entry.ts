import type { ExecJournal } from "../shared/exec-journal.js";
import {
  TaskCancelledError,
  type DirectResultsMsg,
  type EngineTask,
  type Part,
  type TaskResult,
} from "@ptcluster/protocol";

/*
 * What `DirectTasks` (`direct-tasks.ts`) works with: its dependencies, its entries, its limits.
 */

export const CANCELLED_CODE = new TaskCancelledError().code;
/**
 * How often results sent straight to clients are checked for their acknowledgement (ms). The
 * controller hears of them from the clients first (`SubmitMsg.done`): this report is the safety
 * net, so it waits long enough to go in one message for many.
 */
export const ACK_CHECK_MS = 250;
/**
 * Ids the runner gives direct tasks until the controller's is known: above any the controller
 * gives (it counts from 1), exact in a float64 (the start table's), never negative (its "none").
 */
export const RID_BASE = 2 ** 40;
/** Keys of direct tasks already done, kept so that a late copy of one is not run again. */
export const DONE_KEEP = 10_000;

export interface DirectTaskDeps {
  /** Hands a task to the task runner (the controller's tasks go the same way). */
  enqueue(task: EngineTask, part: Part): void;
  /** Sends to a client's direct link; returns the message's `seq` on that link. */
  toClient(client: Buffer, msg: DirectResultsMsg, parts: Part[]): number;
  /** Whether the client acknowledged everything up to `seq` (undefined: its link is gone). */
  acknowledged(client: Buffer, seq: number): boolean | undefined;
  /** A result for the controller, in the engine's next `engine_results` batch. */
  report(result: TaskResult, part: Part): void;
  /** Cancels tasks in the runner (its ids). */
  cancel(rids: number[]): void;
  /** Tells the executor these keys are cancelled (and reported): it may have them from the client's own link. */
  cancelKeys(keys: string[]): boolean;
  /** The current executor's journal of starts. */
  journal(): ExecJournal | undefined;
  /** How long a cancelled task has to stop before its executor is replaced (ms). */
  graceMs(): number;
  /** A task the executor took from a client's own link started there (the runner holds it from now). */
  adopt(task: EngineTask, started: number): void;
  /** Keeps the source a task brings (the runner's `FunctionSources`). */
  learn(task: EngineTask): void;
  /** Its result went to the client from the executor (the runner forgets it). */
  sentByExecutor(rid: number): void;
}

/** One task that came straight from a client (`rid`: its id in the task runner). */
export interface Entry {
  key: string;
  rid: number;
  client: Buffer;
  localId: number;
  /** The controller's id, once its copy (`EngineTask.dx`) is here. */
  hubId?: number;
  /** Run from the controller's copy (resent through it): its result goes the controller's way only. */
  viaController?: boolean;
  /** Once finished: sent to the client as `seq`, kept until the client acknowledges it. */
  result?: TaskResult;
  part?: Part;
  seq?: number;
  /** The client's link failed before it acknowledged: the controller gets the whole result. */
  full?: boolean;
  /** Sent by the executor on the client's link to it, as `[link, seq]` (acknowledged: `execAcks`). */
  exec?: [number, number] | undefined;
}

export function splitKey(key: string): [string, number] {
  const at = key.lastIndexOf(":");
  return [key.slice(0, at), Number(key.slice(at + 1))];
}
