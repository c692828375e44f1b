import { PtclusterError } from "@ptcluster/protocol";

/**
 * Where a task is in its life, from the controller's point of view.
 *
 * - `queued`: waiting in the load-balanced scheduler for an engine (a direct task never is).
 * - `assigned`: sent to `engine`, which holds it until it reports a result or hands it back
 *   unstarted. Whether it has started there is the engine's business (its heartbeats say which
 *   tasks run, for `rc.status()`); the controller's decisions do not depend on it.
 * - `cancelling`: assigned, and its client cancelled it: if it comes back unstarted or loses its
 *   engine it fails as cancelled, and it is never placed again.
 * - `done`, `failed`, `cancelled`: final; `engine` is the one it ran on or was meant for (-1: none).
 */
export type TaskState =
  | { readonly kind: "queued" }
  | { readonly kind: "assigned"; readonly engine: number }
  | { readonly kind: "cancelling"; readonly engine: number }
  | { readonly kind: "done"; readonly engine: number }
  | { readonly kind: "failed"; readonly engine: number; readonly code: string }
  | { readonly kind: "cancelled"; readonly engine: number };

export type TaskStateKind = TaskState["kind"];

/** A transition the state machine refuses: a bug in the controller, never a user's mistake. */
export class IllegalTaskTransitionError extends PtclusterError {
  constructor(
    readonly from: TaskStateKind,
    readonly to: TaskStateKind,
  ) {
    super(
      "ERR_PTC_TASK_STATE",
      `A task cannot go from \`${from}\` to \`${to}\`. This is a bug in the controller: please report it with the controller's log.`,
    );
  }
}

export const QUEUED: TaskState = { kind: "queued" };

function refuse(from: TaskState, to: TaskStateKind): never {
  throw new IllegalTaskTransitionError(from.kind, to);
}

/** The engine a task is on (assigned or cancelling), or -1. */
export function engineOf(s: TaskState): number {
  return s.kind === "assigned" || s.kind === "cancelling" ? s.engine : -1;
}

/** True while an engine holds the task (its result, release or death concerns it). */
export function isOn(s: TaskState, engine: number): boolean {
  return (s.kind === "assigned" || s.kind === "cancelling") && s.engine === engine;
}

export function isFinal(s: TaskState): boolean {
  return s.kind === "done" || s.kind === "failed" || s.kind === "cancelled";
}

/** queued → assigned: the scheduler placed it (a direct task is placed at once). */
export function assign(s: TaskState, engine: number): TaskState {
  if (s.kind !== "queued") refuse(s, "assigned");
  return { kind: "assigned", engine };
}

/** assigned → queued: handed back unstarted, retried, or its engine died. A cancelled task never goes back. */
export function requeue(s: TaskState): TaskState {
  if (s.kind !== "assigned") refuse(s, "queued");
  return QUEUED;
}

/** assigned → cancelling (idempotent): the engine is asked to cancel it. */
export function requestCancel(s: TaskState): TaskState {
  if (s.kind === "cancelling") return s;
  if (s.kind !== "assigned") refuse(s, "cancelling");
  return { kind: "cancelling", engine: s.engine };
}

/** assigned | cancelling → done: its engine reported a result (a success, or the task's own final error). */
export function complete(s: TaskState): TaskState {
  if (s.kind !== "assigned" && s.kind !== "cancelling") refuse(s, "done");
  return { kind: "done", engine: s.engine };
}

/**
 * Any live state → failed: the controller fails it (unknown or lost engine, poison task, a
 * source it no longer has). `engine` is reported with the failure.
 */
export function fail(s: TaskState, engine: number, code: string): TaskState {
  if (isFinal(s)) refuse(s, "failed");
  return { kind: "failed", engine, code };
}

/** queued | cancelling → cancelled: removed from the queue, or confirmed gone from its engine. */
export function cancel(s: TaskState, engine: number): TaskState {
  if (s.kind !== "queued" && s.kind !== "cancelling") refuse(s, "cancelled");
  return { kind: "cancelled", engine };
}
