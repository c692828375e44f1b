import { EngineLostError, UnknownEngineError } from "@ptcluster/protocol";
import type { SchedulerDecision } from "./port.js";
import type { SchedulerView } from "./view.js";

/**
 * The direct scheduler: a task names its engine and goes there at once, or fails if no such
 * engine is registered (it is never queued, moved or retried): with `EngineLostError` if the
 * engine is `gone` (it was registered when its client sent the task, and died before the task
 * arrived here: a launcher reports a local engine's death at once), else `UnknownEngineError`.
 */
export function submitDirect(
  view: SchedulerView,
  task: number,
  engine: number,
  gone: boolean,
  out: SchedulerDecision[],
): void {
  const e = view.engines.get(engine);
  if (!e) {
    const err = gone
      ? new EngineLostError(
          engine,
          `Engine ${engine} died before the controller could give it this task (or while running it, sent straight from the client). Other engines are unaffected; re-run the task or check the engine's log.`,
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
