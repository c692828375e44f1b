import type { ClientTask, EngineTask } from "@ptcluster/protocol";
import type { EngineEntry } from "../engines/engine-registry.js";
import type { FunctionShipping } from "./function-shipping.js";
import type { TaskRecord } from "./task-table.js";

/**
 * The message that carries task `t` (record `rec`) to `engine`, its function's source shipped
 * along if the engine has not seen it. Undefined when the controller does not know that source
 * (the task cannot be sent).
 */
export function engineTask(
  engine: EngineEntry,
  rec: TaskRecord,
  t: ClientTask,
  movable: boolean,
  shipping: FunctionShipping,
): EngineTask | undefined {
  const streamed = rec.streamed;
  // A body passed on as it comes cannot be handed back and sent elsewhere.
  if (streamed && !streamed.reusable) movable = false;
  const task: EngineTask = { id: rec.hubId, op: t.op };
  if (movable) task.movable = true;
  if (t.timeout !== undefined) task.timeout = t.timeout;
  if (t.fn) {
    task.fn = t.fn;
    if (!engine.knownFns.has(t.fn)) {
      const src = shipping.ship(engine, t.fn);
      if (src === undefined) return undefined;
      task.src = src;
      // A streamed task reaches the engine after its last fragment, so tasks sent after it may
      // come first (or it may never come, aborted): they carry the source too, until one sent whole does.
      if (streamed) engine.knownFns.delete(t.fn);
    }
  }
  if (t.scope) task.scope = t.scope;
  if (t.comm) task.comm = t.comm;
  if (t.stage) task.stage = t.stage;
  if (t.shm === true) task.shm = `c${rec.clientKey}`;
  if (t.dx) task.dx = `${rec.clientKey}:${rec.localId}`;
  return task;
}
