import { ClusterStartError, type StartValues } from "@ptcluster/protocol";
import { spawnDaemon } from "../controller/daemon.js";
import { prepareStart } from "../controller/prepare.js";
import { printSummary } from "../controller/summary.js";

/**
 * `ptcluster start`: checks the values, then runs the controller here (`--foreground`, and the
 * daemon a plain `start` spawns) or spawns it detached and prints what it reports.
 */
export async function start(v: StartValues): Promise<void> {
  const { values, paths } = prepareStart(v);
  if (values.foreground) {
    const { runController } = await import("../controller/run-controller.js");
    return runController(values, paths);
  }
  // The command line's controller outlives `start` (it is what `start` is for): never tied to it.
  const { summary, shortfall } = await spawnDaemon({ ...values, detached: true }, paths);
  if (shortfall === undefined || values.json) printSummary(summary, values.json);
  // Fewer engines than asked: the cluster runs (the message says so and how to stop it), but `start` did not do what it was asked.
  if (shortfall !== undefined) throw new ClusterStartError(shortfall);
}
