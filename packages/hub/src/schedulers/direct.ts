import { EngineLostError, UnknownEngineError } from "@ptcluster/protocol";
import type { SchedulerDecision } from "./port.js";
import type { SchedulerView } from "./view.js";

/**
 * The direct scheduler: a task names its engine and goes there at once, or fails if no such
 * engine is registered (it is never queued, moved or retried). A task its client already sent
 * straight to the engine (`sent`) whose engine is gone by the time its header arrives was lost
 * with that engine (its launcher saw it die at once, before the header's next batch went out):
 * `EngineLostError`, as for a task the controller had heard of.
 */
export function submitDirect(
  view: SchedulerView,
  task: number,
  engine: number,
  sent: boolean,
  out: SchedulerDecision[],
): void {
  const e = view.engines.get(engine);
  if (!e) {
    const err = sent
      ? new EngineLostError(
          engine,
          `Engine ${engine} died while running this task (it was sent straight to the engine, which was gone before the controller heard of the task). Other engines are unaffected; re-run the task or check the engine's log.`,
        )
      : new UnknownEngineError(engine, view.engineIds());
    out.push({ type: "fail", task, engine, code: err.code, message: err.message });
    return;
  }
  const p = { task, engine: -1, cancelRequested: false, lb: undefined };
  view.placements.set(task, p);
  view.place(p, e);
  out.push({ type: "dispatch", task, engine, movable: false });
}
