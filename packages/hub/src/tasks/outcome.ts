import type { TaskResult } from "@ptcluster/protocol";
import type { TaskOutcome } from "../schedulers/port.js";

/**
 * How a result counts for retrying its task:
 * - a task that ended its own executor (`ERR_PTC_TASK_CRASHED`: `process.exit`, a crash) or went
 *   over its engine's memory limit (`ERR_PTC_OUT_OF_MEMORY`, heap or off-heap) failed by its own
 *   doing, like an error its code threw: run again (on another engine) only if `retries` asks. It is
 *   no engine death: the engine lives on with a fresh executor. (A memory failure may be worth a
 *   retry: what filled the executor may have been the namespace or a task running beside it.)
 * - a task that shared its executor with one forced to stop or crashing (`ERR_PTC_EXECUTOR_RESET`)
 *   did nothing wrong: like a task whose engine died from outside, it runs again elsewhere, within
 *   its death budget (`maxDeaths`).
 * - other failures of the system (timeout, cancellation) are final.
 */
export function outcomeOf(r: TaskResult): TaskOutcome {
  if (r.ok) return "ok";
  const code = r.sysError?.code;
  if (code === undefined || code === "ERR_PTC_TASK_CRASHED" || code === "ERR_PTC_OUT_OF_MEMORY") return "error";
  if (code === "ERR_PTC_EXECUTOR_RESET" || code === "ERR_PTC_ENGINE_LOST") return "lost";
  return "system";
}
