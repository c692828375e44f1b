import { UnknownEngineError } from "@ptcluster/protocol";
import type { SchedulerDecision } from "./port.js";
import type { SchedulerView } from "./view.js";

/**
 * The direct scheduler: a task names its engine and goes there at once, or fails if no such
 * engine is registered (it is never queued, moved or retried).
 */
export function submitDirect(view: SchedulerView, task: number, engine: number, out: SchedulerDecision[]): void {
  const e = view.engines.get(engine);
  if (!e) {
    const err = new UnknownEngineError(engine, view.engineIds());
    out.push({ type: "fail", task, engine, code: err.code, message: err.message });
    return;
  }
  const p = { task, engine: -1, cancelRequested: false, lb: undefined };
  view.placements.set(task, p);
  view.place(p, e);
  out.push({ type: "dispatch", task, engine, movable: false });
}
